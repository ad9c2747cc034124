/**
 * Policy files: YAML or JSON text -> Policy[] (parsePolicyDocument) and back
 * (serializePolicies). A file holds one policy mapping, or `policies: [...]`, and a YAML
 * file may hold several `---`-separated documents of either kind. Problems carry the
 * file, line and column of the field they are about.
 */

import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, stringify, type Document } from 'yaml';
import type { PolicyDocument } from '../api/replies.js';
import { formatSourceSpec, parseSourceSpec } from '../source-spec.js';
import { formatPath, PolicyError, ProblemList, type PathSegment, type PolicyProblem } from './errors.js';
import { checkPolicy, type Policy, type RetentionRules } from './policy.js';

export type PolicyFormat = 'yaml' | 'json';

export interface ParsePolicyOptions {
  /** Default: from the file name (`.json` is JSON), else YAML (which also reads JSON). */
  format?: PolicyFormat;
  /** The file name, for messages. */
  file?: string;
}

interface Located {
  path: PathSegment[];
  message: string;
  offset?: number;
}

/** Parses and validates a policy file; throws PolicyError listing every problem found. */
export function parsePolicyDocument(text: string, options: ParsePolicyOptions = {}): Policy[] {
  const format: PolicyFormat = options.format ?? (options.file && /\.json$/i.test(options.file) ? 'json' : 'yaml');
  const lineCounter = new LineCounter();
  const problems: PolicyProblem[] = [];
  const position = (offset: number | undefined): { line?: number; column?: number } => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const report = (p: Located): void => {
    const problem: PolicyProblem = { path: formatPath(p.path), message: p.message, ...position(p.offset) };
    if (options.file !== undefined) problem.file = options.file;
    problems.push(problem);
  };
  const fail = (): never => {
    throw new PolicyError(problems);
  };
  if (typeof text !== 'string') {
    report({ path: [], message: 'a policy document must be text' });
    fail();
  }

  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch (err) {
      const m = /position (\d+)/.exec((err as Error).message);
      // Positions need the line counter filled: parse once for that.
      parseAllDocuments(text, { lineCounter });
      report({ path: [], message: `not valid JSON: ${(err as Error).message}`, offset: m ? Number(m[1]) : undefined });
      fail();
    }
  }

  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  let syntaxErrors = false;
  const linesReported = new Set<number>();
  for (const doc of docs) {
    for (const err of doc.errors) {
      syntaxErrors = true;
      // One message per line: an unquoted cron expression yields one error per "*".
      const line = lineCounter.linePos(err.pos[0]).line;
      if (linesReported.has(line)) continue;
      linesReported.add(line);
      let message = `${format === 'json' ? 'JSON' : 'YAML'} syntax: ${err.message.split('\n')[0]}`;
      if (/alias/i.test(err.message)) message += '; a value starting with * is read as a YAML alias: put cron expressions in quotes, e.g. full: "*/5 * * * *"';
      report({ path: [], message, offset: err.pos[0] });
    }
  }
  if (syntaxErrors) fail();

  const policies: Policy[] = [];
  const names = new Map<string, string>();
  let found = 0;
  for (const doc of docs) {
    if (doc.contents === null) continue;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    const list = new ProblemList();
    const entries: [unknown, PathSegment[]][] = [];
    if (value === null || value === undefined) continue;
    if (typeof value === 'object' && !Array.isArray(value) && 'policies' in value) {
      const o = value as Record<string, unknown>;
      for (const key of Object.keys(o))
        if (key !== 'policies') list.add([key], `a file with policies: holds nothing else; move ${JSON.stringify(key)} into a policy`);
      if (!Array.isArray(o.policies) || o.policies.length === 0) list.add(['policies'], 'must be a list of one or more policies');
      else o.policies.forEach((p, i) => entries.push([p, ['policies', i]]));
    } else if (Array.isArray(value)) {
      list.add([], 'a policy file holds one policy (a mapping with name, sources, schedule, ...) or policies: [...]; put this list under policies:');
    } else {
      entries.push([value, []]);
    }
    for (const [entry, path] of entries) {
      found++;
      const policy = checkPolicy(entry, path, list);
      const name = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).name : undefined;
      if (typeof name === 'string') {
        const where = formatPath([...path, 'name']);
        const first = names.get(name);
        if (first !== undefined)
          list.add([...path, 'name'], `policy ${JSON.stringify(name)} is defined twice (first at ${first || 'the top'}); names are unique`);
        else names.set(name, where);
      }
      if (policy) policies.push(policy);
    }
    for (const item of list.items) {
      report({ path: item.path, message: item.message, offset: locate(doc, item.path, item.message.startsWith('unknown key')) });
    }
  }
  if (found === 0 && problems.length === 0)
    report({ path: [], message: 'the document holds no policy; write one policy mapping (name, sources, schedule, ...) or policies: [...]' });
  if (problems.length > 0) fail();
  return policies;
}

/** The source offset of the node at `path` (or of the deepest part of it that exists). */
function locate(doc: Document, path: readonly PathSegment[], preferKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) return offset;
      if (last && preferKey) return rangeStart(pair.key) ?? offset;
      node = pair.value;
      offset = rangeStart(node) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      offset = rangeStart(node) ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? range[0] : undefined;
}

// --- serializing ----------------------------------------------------------------------------

export interface SerializePolicyOptions {
  format?: PolicyFormat;
  /** Replace URL passwords in source specs with `***` (for display; the result no longer round-trips). */
  redactSecrets?: boolean;
}

/** Retention rules with a policy file's keys. */
function retentionDocument(r: RetentionRules): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.keepLast !== undefined) out['keep-last'] = r.keepLast;
  if (r.keepHourly !== undefined) out['keep-hourly'] = r.keepHourly;
  if (r.keepDaily !== undefined) out['keep-daily'] = r.keepDaily;
  if (r.keepWeekly !== undefined) out['keep-weekly'] = r.keepWeekly;
  if (r.keepMonthly !== undefined) out['keep-monthly'] = r.keepMonthly;
  if (r.keepYearly !== undefined) out['keep-yearly'] = r.keepYearly;
  if (r.keepWithin !== undefined) out['keep-within'] = r.keepWithin.text;
  return out;
}

/** A policy as the mapping a policy file holds: kebab-case keys, defaults written out. */
export function policyToDocument(policy: Policy, options: { redactSecrets?: boolean } = {}): PolicyDocument {
  const doc: Record<string, unknown> = { name: policy.name };
  if (policy.description !== undefined) doc.description = policy.description;
  doc.sources = policy.sources.map((s) => {
    const out: Record<string, unknown> = {
      agents: [...s.agents],
      specs: s.specs.map((spec) => (options.redactSecrets ? formatSourceSpec(parseSourceSpec(spec)) : spec)),
    };
    if (s.hooks) out.hooks = { ...s.hooks };
    return out;
  });
  const schedule: Record<string, unknown> = { timezone: policy.schedule.timeZone, full: policy.schedule.full.expression };
  if (policy.schedule.incremental) schedule.incremental = policy.schedule.incremental.expression;
  doc.schedule = schedule;
  if (policy.retention) doc.retention = retentionDocument(policy.retention);
  doc.store = { scope: policy.store.scope, compression: policy.store.compression, encryption: policy.store.encryption };
  const limits: Record<string, unknown> = {};
  if (policy.limits.maxConcurrentJobsPerAgent !== undefined) limits['max-concurrent-jobs-per-agent'] = policy.limits.maxConcurrentJobsPerAgent;
  if (policy.limits.bandwidth) limits.bandwidth = policy.limits.bandwidth.text;
  if (policy.limits.runWindow) limits['run-window'] = policy.limits.runWindow.text;
  if (Object.keys(limits).length > 0) doc.limits = limits;
  doc.verify = {
    structure: policy.verify.structure ? policy.verify.structure.expression : 'off',
    'read-data': policy.verify.readData ? policy.verify.readData.expression : 'off',
    ...(policy.verify.readData ? { subset: `${policy.verify.subset}%` } : {}),
  };
  if (policy.alertAfter) doc['alert-after'] = policy.alertAfter.text;
  if (policy.copyTo !== undefined) doc['copy-to'] = policy.copyTo;
  if (policy.copyKeep) doc['copy-keep'] = retentionDocument(policy.copyKeep);
  if (policy.drill)
    doc.drill = {
      'postgres-url': options.redactSecrets ? formatSourceSpec(parseSourceSpec(policy.drill.postgresUrl)) : policy.drill.postgresUrl,
      query: policy.drill.query,
    };
  // Built key by key in the order a policy file lists them; the shape is api/replies.ts's PolicyDocument.
  return doc as PolicyDocument;
}

/** One policy prints as a policy mapping, several as `policies: [...]`. Ends with a newline. */
export function serializePolicies(policies: Policy | readonly Policy[], options: SerializePolicyOptions = {}): string {
  const list = Array.isArray(policies) ? (policies as readonly Policy[]) : [policies as Policy];
  const docs = list.map((p) => policyToDocument(p, options));
  const value = list.length === 1 ? docs[0] : { policies: docs };
  if (options.format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  return stringify(value, { lineWidth: 0 });
}
