/**
 * A policy document checked the way applying it would check it, without storing it: for
 * the console's policy editor, which shows each problem at its line and a diff of what
 * would change before the admin applies.
 *
 * Two kinds of problem: the document's own (syntax, keys, values: parsePolicyDocument
 * locates them), and the server's (an agent that does not exist, a copy target the
 * config lacks, a job name too long); the latter are located at the first place the
 * document names the thing.
 */
import type { Catalog } from '@hoard/catalog';
import type { ErrorCode } from '@hoard/errors';
import { parsePolicyDocument, PolicyError, policyToDocument, serializePolicies, validatePolicy, type Policy, type PolicyCheckProblem } from '@hoard/protocol';
import { isPair, isScalar, LineCounter, parseAllDocuments, visit } from 'yaml';
import { policyJobName } from './policy-scheduler.js';

/** A problem only the server can see, with what in the document it is about. */
export interface ServerPolicyProblem {
  code: ErrorCode;
  message: string;
  /** The scalar value (an agent name) or the key (`copy-to`) the problem is about. */
  value?: string;
  key?: string;
}

export interface PolicyContext {
  catalog: Catalog;
  copyTargets: readonly string[];
}

/** What in these policies the server refuses (the checks of applying them, before any write). */
export async function serverPolicyProblems(policies: readonly Policy[], context: PolicyContext): Promise<ServerPolicyProblem[]> {
  const problems: ServerPolicyProblem[] = [];
  for (const policy of policies) {
    for (const agent of policy.sources.flatMap((s) => s.agents)) {
      const record = await context.catalog.getAgent(agent);
      if (!record || record.revokedAt)
        problems.push({ code: 'agent_not_found', message: `policy ${policy.name}: no agent ${agent} (\`hoard agent add ${agent}\` creates it)`, value: agent });
      const job = policyJobName(policy, agent);
      if (job.length > 128)
        problems.push({
          code: 'invalid_name',
          message: `policy ${policy.name}: job name ${job} is longer than 128 characters; use a shorter policy name`,
          value: policy.name,
        });
    }
    if (policy.copyTo !== undefined && !context.copyTargets.includes(policy.copyTo)) {
      const known = context.copyTargets;
      problems.push({
        code: 'invalid_policy',
        message: `policy ${policy.name}: copy-to ${policy.copyTo} is no copy target of the server config (${known.length > 0 ? `copyTargets: ${known.join(', ')}` : 'it has no copyTargets'}; docs/sync.md)`,
        key: 'copy-to',
      });
    }
  }
  return problems;
}

export interface PolicyCheck {
  ok: boolean;
  problems: PolicyCheckProblem[];
  policies: { name: string; action: 'created' | 'updated' | 'unchanged'; diff: DiffLine[] }[];
}

export async function checkPolicyDocument(text: string, format: 'yaml' | 'json' | undefined, context: PolicyContext): Promise<PolicyCheck> {
  let policies: Policy[];
  try {
    policies = parsePolicyDocument(text, { format });
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    return { ok: false, problems: err.problems.map(({ path, message, line, column }) => ({ path, message, line, column })), policies: [] };
  }
  const masked: ServerPolicyProblem[] = policies.flatMap((policy) =>
    policy.sources
      .flatMap((source) => source.specs)
      .filter((spec) => spec.includes(':***@'))
      .map((spec) => ({
        code: 'invalid_policy' as const,
        message: `policy ${policy.name}: ${spec} has its password masked as *** (as the server shows it); type the real password, or applying stores ***`,
        value: spec,
      })),
  );
  const problems: PolicyCheckProblem[] = [...masked, ...(await serverPolicyProblems(policies, context))].map((p) => ({
    path: '',
    message: p.message,
    ...locateInText(text, p),
  }));
  const out: PolicyCheck['policies'] = [];
  for (const policy of policies) {
    const before = await context.catalog.getPolicy(policy.name);
    const document = policyToDocument(policy);
    const action = !before ? 'created' : JSON.stringify(before.document) === JSON.stringify(document) ? 'unchanged' : 'updated';
    const old = before ? serializePolicies(validatePolicy(before.document), { redactSecrets: true }) : '';
    out.push({ name: policy.name, action, diff: lineDiff(old, serializePolicies(policy, { redactSecrets: true })) });
  }
  return { ok: problems.length === 0, problems, policies: out };
}

/** Line and column of the first scalar equal to `value`, or of the key `key`. */
function locateInText(text: string, p: ServerPolicyProblem): { line?: number; column?: number } {
  const lineCounter = new LineCounter();
  let offset: number | undefined;
  for (const doc of parseAllDocuments(text, { lineCounter })) {
    if (!('contents' in doc)) continue;
    visit(doc, {
      Pair(_, pair) {
        if (offset !== undefined) return visit.BREAK;
        if (p.key !== undefined && isPair(pair) && isScalar(pair.key) && pair.key.value === p.key) offset = pair.key.range?.[0];
      },
      Scalar(key, node) {
        if (offset !== undefined) return visit.BREAK;
        if (p.value !== undefined && key !== 'key' && node.value === p.value) offset = node.range?.[0];
      },
    });
    if (offset !== undefined) break;
  }
  if (offset === undefined) return {};
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

export interface DiffLine {
  op: ' ' | '+' | '-';
  text: string;
}

/** A line diff (longest common subsequence): policies are a few dozen lines. */
export function lineDiff(before: string, after: string): DiffLine[] {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: a[i++]! });
    else out.push({ op: '+', text: b[j++]! });
  }
  while (i < n) out.push({ op: '-', text: a[i++]! });
  while (j < m) out.push({ op: '+', text: b[j++]! });
  return out;
}
