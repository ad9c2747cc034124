/**
 * `hoard policy apply|create|update -f FILE`, `show NAME`, `list`, `delete NAME`: backup
 * policies on the media server (docs/policies.md). The file is sent as written and
 * validated by the server, which reports every problem with its place in the file.
 */
import { readFile } from 'node:fs/promises';
import type { ErrorCode } from '@hoard/errors';
import type { PolicyView } from '@hoard/protocol';
import { replySchemas } from '@hoard/protocol/api';
import { ServerError } from '@hoard/protocol/client';
import { UsageError } from '../errors.js';
import { withNulls } from '../json-output.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { printPolicyChanges, type PolicyChanges } from './policy-changes.js';
import { renderTable } from '../table.js';
import { zonedTime } from '../time.js';

export type PolicyWriteMode = 'apply' | 'create' | 'update';

/** The policy file failed validation: exit 2, every problem listed. */
export class PolicyFileError extends UsageError {
  override readonly code: ErrorCode = 'invalid_policy';
}

async function readPolicyFile(file: string | undefined): Promise<{ text: string; format?: 'json' | 'yaml'; name: string }> {
  if (!file) throw new UsageError('-f FILE is required: a policy file (YAML or JSON), or - for standard input');
  if (file === '-') {
    const parts: Buffer[] = [];
    for await (const p of process.stdin) parts.push(p as Buffer);
    return { text: Buffer.concat(parts).toString('utf8'), name: 'stdin' };
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read policy file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
  }
  return { text, format: file.endsWith('.json') ? 'json' : undefined, name: file };
}

export async function runPolicyWrite(
  mode: PolicyWriteMode,
  options: ServerOptions & { file?: string; json?: boolean; dryRun?: boolean },
  out: (line: string) => void,
): Promise<void> {
  const { text, format, name } = await readPolicyFile(options.file);
  const client = await serverClient(options);
  let result: PolicyChanges;
  try {
    result = await client.api.applyPolicies({ body: { document: text, format, mode, file: name, ...(options.dryRun ? { dryRun: true } : {}) } });
  } catch (err) {
    const problems = err instanceof ServerError ? (err.body.problems as { path: string; message: string; line?: number }[] | undefined) : undefined;
    if (problems && problems.length > 0) {
      throw new PolicyFileError(
        `${name}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was stored:\n${problems.map((p) => `  ${p.line !== undefined ? `line ${p.line}: ` : ''}${p.path}: ${p.message}`).join('\n')}`,
      );
    }
    throw err;
  }
  printPolicyChanges(result, { dryRun: options.dryRun === true, json: options.json === true, file: name }, out);
}

/** A policy as --json prints it: null for what the server left out; `document` as the policy file has it (its kebab-case keys, ready for `policy apply`). */
const policyJson = (p: PolicyView): Record<string, unknown> => ({ ...withNulls(replySchemas.PolicyView, p), document: p.document });

export async function runPolicyList(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { policies } = await client.api.listPolicies();
  if (options.json) return out(JSON.stringify(policies.map(policyJson)));
  if (policies.length === 0) return out('no policies yet (`hoard policy apply -f FILE`)');
  out(
    renderTable(
      ['policy', 'jobs', 'next run', 'kind'],
      policies.map((p) => [
        p.name,
        p.jobs.map((j) => j.job).join(', '),
        p.nextRuns[0] ? zonedTime(p.nextRuns[0].at, p.timeZone) : '-',
        p.nextRuns[0]?.kind ?? '-',
      ]),
    ),
  );
}

export async function runPolicyShow(name: string, options: ServerOptions & { json?: boolean; next?: string }, out: (line: string) => void): Promise<void> {
  const next = options.next === undefined ? 5 : Number(options.next);
  if (!Number.isInteger(next) || next < 1 || next > 100) throw new UsageError(`--next ${options.next}: give a whole number from 1 to 100`);
  const client = await serverClient(options);
  const policy = await client.api.getPolicy({ params: { name }, query: { next } });
  if (options.json) return out(JSON.stringify(policyJson(policy)));
  out((policy.yaml ?? '').trimEnd());
  out('');
  out(`jobs: ${policy.jobs.map((j) => `${j.job} (agent ${j.agent})`).join(', ')}`);
  out(`next ${policy.nextRuns.length} runs${policy.timeZone ? ` (the schedule's time zone: ${policy.timeZone})` : ''}:`);
  for (const r of policy.nextRuns) out(`  ${zonedTime(r.at, policy.timeZone)}  ${r.kind}`);
}

export async function runPolicyDelete(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const result = await client.api.deletePolicy({ params: { name } });
  out(options.json ? JSON.stringify(result) : `policy ${result.name} deleted; its jobs, snapshots and history stay`);
}
