/**
 * JSON messages of the HTTP API (routes in docs/protocol.md) and their validation. Both
 * sides import these types; the server validates every body it reads with the parse*
 * functions, which throw RequestError (a 4xx with a message naming the field).
 */

import { HoardError, httpStatusOf, type ErrorCode } from '@hoard/errors';
import type { BeginSessionRequest, CommitRequest, CreateRunRequest, RestoreRunRequest, RunHooks, RunProgress } from './api/requests.js';
import type { SourceKind, SourceStat } from './api/common.js';
import type { TargetResult } from './api/replies.js';

// Request bodies are declared once, as schemas (api/requests.ts); their types are re-exported here.
export type { BeginSessionRequest, CommitRequest, CreateRunRequest, RestoreRunRequest, RunHooks, RunProgress, SourceKind, SourceStat };

// Reply records are declared once, as schemas (api/replies.ts); their types are re-exported here.
export type {
  BatchResponse,
  BeginSessionResponse,
  CommitResponse,
  RestoreResult,
  RestoreRunSpec,
  RunLeaseAnswer,
  RunProgressAnswer,
  RunState,
  RunView,
  SessionTotals,
  SnapshotSummary,
  TargetResult,
  WireChunker,
  WireStoreSecrets,
} from './api/replies.js';

export type ChunkingKind = 'vm-image' | 'db-dump' | 'file';

/**
 * An error the server answers a request with. Its code (@hoard/errors) decides the HTTP
 * status and the CLI's exit class; the message names what is wrong and what would be right.
 */
export class RequestError extends HoardError {
  override readonly name: string = 'RequestError';
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }

  get status(): number {
    return httpStatusOf(this.code);
  }
}

/** Job names: what snapshot keys allow (see the repository's validateJobName). */
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const AGENT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function checkJobName(value: unknown, field = 'job'): string {
  if (typeof value !== 'string' || !JOB_NAME.test(value)) {
    throw new RequestError('invalid_request', `${field} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkAgentName(value: unknown, field = 'agent'): string {
  if (typeof value !== 'string' || !AGENT_NAME.test(value)) {
    throw new RequestError('invalid_request', `${field} must be 1-63 characters of lower-case letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(value)}`);
  }
  return value;
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RequestError('invalid_request', `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function string(o: Record<string, unknown>, field: string, max = 4096): string {
  const v = o[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || v.includes('\0')) {
    throw new RequestError('invalid_request', `${field} must be a non-empty string of at most ${max} characters without NUL bytes`);
  }
  return v;
}

function count(o: Record<string, unknown>, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RequestError('invalid_request', `${field} must be a non-negative integer; got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(o: Record<string, unknown>, field: string, values: readonly T[]): T {
  const v = o[field];
  if (!values.includes(v as T)) throw new RequestError('invalid_request', `${field} must be one of ${values.join(', ')}; got ${JSON.stringify(v)}`);
  return v as T;
}

// --- sessions --------------------------------------------------------------------------

export function parseBeginSession(body: unknown): BeginSessionRequest {
  const o = object(body, 'the session request');
  const source = object(o.source, 'source');
  const run = o.run === undefined ? undefined : string(o, 'run', 64);
  return {
    job: checkJobName(o.job),
    source: { name: string(source, 'name'), kind: oneOf(source, 'kind', ['file', 'block-device', 'stream', 'directory'] as const) },
    chunking: oneOf(o, 'chunking', ['vm-image', 'db-dump', 'file'] as const),
    run,
  };
}

export function parseSourceStat(value: unknown): SourceStat {
  const o = object(value, 'sourceStat');
  const digits = (field: string, signed: boolean): string => {
    const v = o[field];
    if (typeof v !== 'string' || !(signed ? /^-?\d{1,20}$/ : /^\d{1,20}$/).test(v)) throw new RequestError('invalid_request', `sourceStat.${field} must be ${signed ? 'an' : 'a non-negative'} integer as a decimal string; got ${JSON.stringify(v)}`);
    return v;
  };
  return { size: count(o, 'size'), mtimeNs: digits('mtimeNs', true), ino: digits('ino', false), dev: digits('dev', false) };
}

export function parseCommit(body: unknown): CommitRequest {
  const o = object(body, 'the commit request');
  const streamHash = string(o, 'streamHash', 64);
  if (!/^[0-9a-f]{64}$/.test(streamHash)) throw new RequestError('invalid_request', 'streamHash must be 64 lower-case hex digits (BLAKE3-256)');
  const startedAt = string(o, 'startedAt', 40);
  if (Number.isNaN(Date.parse(startedAt))) throw new RequestError('invalid_request', `startedAt must be an ISO-8601 time; got ${JSON.stringify(startedAt)}`);
  const request: CommitRequest = { batches: count(o, 'batches'), chunks: count(o, 'chunks'), logicalBytes: count(o, 'logicalBytes'), streamHash, bytesRead: count(o, 'bytesRead'), startedAt };
  if (o.streamHashOver !== undefined) request.streamHashOver = oneOf(o, 'streamHashOver', ['chunks'] as const);
  if (o.sourceStat !== undefined) request.sourceStat = parseSourceStat(o.sourceStat);
  if (request.bytesRead > request.logicalBytes) throw new RequestError('invalid_request', `bytesRead (${request.bytesRead}) cannot exceed logicalBytes (${request.logicalBytes})`);
  return request;
}

// --- runs (jobs dispatched to agents) ---------------------------------------------------

export function parseRestoreRun(value: unknown): RestoreRunRequest {
  const o = object(value, 'restore');
  for (const key of Object.keys(o)) {
    if (!['snapshot', 'at', 'source', 'path', 'force', 'file'].includes(key)) throw new RequestError('invalid_request', `restore.${key} is not a restore option; use snapshot, at, source, path, force, file`);
  }
  const path = string(o, 'path', 4096);
  if (!path.startsWith('/')) throw new RequestError('invalid_request', `restore.path must be an absolute path on the agent's host; got ${JSON.stringify(path)}`);
  const out: RestoreRunRequest = { path };
  if (o.snapshot !== undefined) out.snapshot = string(o, 'snapshot', 64);
  if (o.at !== undefined) {
    const at = string(o, 'at', 40);
    if (Number.isNaN(Date.parse(at))) throw new RequestError('invalid_request', `restore.at must be an ISO-8601 time; got ${JSON.stringify(at)}`);
    out.at = at;
  }
  if (out.snapshot !== undefined && out.at !== undefined) throw new RequestError('invalid_request', 'restore: give snapshot or at, not both');
  if (o.source !== undefined) out.source = string(o, 'source');
  if (o.force !== undefined) {
    if (typeof o.force !== 'boolean') throw new RequestError('invalid_request', `restore.force must be true or false; got ${JSON.stringify(o.force)}`);
    if (o.force) out.force = true;
  }
  if (o.file !== undefined) out.file = string(o, 'file');
  return out;
}

function parseHooks(value: unknown): RunHooks | undefined {
  if (value === undefined) return undefined;
  const o = object(value, 'hooks');
  const hooks: RunHooks = {};
  for (const key of Object.keys(o)) {
    if (key !== 'pre' && key !== 'post') throw new RequestError('invalid_request', `hooks.${key} is not a hook; use hooks.pre and hooks.post`);
    hooks[key] = string(o, key, 4096);
  }
  return hooks;
}

export function parseCreateRun(body: unknown, checkSource: (spec: string) => void): CreateRunRequest & { sources: string[] } {
  const o = object(body, 'the run request');
  if (o.restore !== undefined) {
    if (o.sources !== undefined && !(Array.isArray(o.sources) && o.sources.length === 0)) throw new RequestError('invalid_request', 'a restore run has no sources; give restore or sources, not both');
    for (const key of ['store', 'hooks', 'full', 'bandwidth']) if (o[key] !== undefined) throw new RequestError('invalid_request', `${key} does not apply to a restore run`);
    return { agent: checkAgentName(o.agent), job: checkJobName(o.job), sources: [], restore: parseRestoreRun(o.restore) };
  }
  if (!Array.isArray(o.sources) || o.sources.length === 0 || o.sources.length > 64) throw new RequestError('invalid_request', 'sources must be a list of 1-64 source specs');
  const sources = o.sources.map((s, i) => {
    if (typeof s !== 'string') throw new RequestError('invalid_request', `sources[${i}] must be a string`);
    try {
      checkSource(s);
    } catch (err) {
      throw new RequestError('invalid_request', `sources[${i}]: ${(err as Error).message}`);
    }
    return s;
  });
  const store = o.store === undefined ? undefined : string(o, 'store', 64);
  if (o.full !== undefined && typeof o.full !== 'boolean') throw new RequestError('invalid_request', `full must be true or false; got ${JSON.stringify(o.full)}`);
  if (o.bandwidth !== undefined && !(typeof o.bandwidth === 'number' && Number.isSafeInteger(o.bandwidth) && o.bandwidth >= 1)) {
    throw new RequestError('invalid_request', `bandwidth must be a whole number of bytes per second >= 1; got ${JSON.stringify(o.bandwidth)}`);
  }
  return { agent: checkAgentName(o.agent), job: checkJobName(o.job), sources, store, hooks: parseHooks(o.hooks), ...(o.full ? { full: true } : {}), ...(o.bandwidth !== undefined ? { bandwidth: o.bandwidth as number } : {}) };
}

/** An agent's report when it finishes a run. */
export interface FinishRunRequest {
  /** `cancelled`: the agent stopped because the progress answer asked it to. */
  state: 'succeeded' | 'failed' | 'cancelled';
  targets: TargetResult[];
  error?: string;
}

export function parseFinishRun(body: unknown): FinishRunRequest {
  const o = object(body, 'the run result');
  const state = oneOf(o, 'state', ['succeeded', 'failed', 'cancelled'] as const);
  if (!Array.isArray(o.targets) || o.targets.length > 10_000) throw new RequestError('invalid_request', 'targets must be a list');
  const error = o.error === undefined ? undefined : string(o, 'error', 8192);
  return { state, targets: o.targets.map(parseTargetResult), error };
}

/**
 * The shape of one target of a finish report. The numbers an agent cannot be trusted with
 * (the snapshot and the session totals) are checked by the server against its own session
 * records, not here (docs/protocol.md, "What the server checks at finish").
 */
function parseTargetResult(value: unknown, i: number): TargetResult {
  const o = object(value, `targets[${i}]`);
  const at = (field: string): string => `targets[${i}].${field}`;
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 4096) throw new RequestError('invalid_request', `${at('name')} must be a non-empty string of at most 4096 characters`);
  if (typeof o.ok !== 'boolean') throw new RequestError('invalid_request', `${at('ok')} must be true or false`);
  if (typeof o.durationMs !== 'number' || !Number.isFinite(o.durationMs) || o.durationMs < 0) throw new RequestError('invalid_request', `${at('durationMs')} must be a number of milliseconds >= 0`);
  if (o.error !== undefined && (typeof o.error !== 'string' || o.error.length > 8192)) throw new RequestError('invalid_request', `${at('error')} must be a string of at most 8192 characters`);
  if (o.snapshot !== undefined) {
    const snapshot = object(o.snapshot, at('snapshot'));
    if (typeof snapshot.id !== 'string' || !/^[0-9a-f]{16}$/.test(snapshot.id)) throw new RequestError('invalid_request', `${at('snapshot.id')} must be a snapshot id (16 hex digits)`);
  }
  for (const field of ['totals', 'files', 'image', 'restored']) {
    if (o[field] !== undefined) object(o[field], at(field));
  }
  return o as unknown as TargetResult;
}

export function parseRunProgress(body: unknown): RunProgress {
  const o = object(body, 'the progress report');
  return { target: string(o, 'target'), bytesRead: count(o, 'bytesRead'), bytesSent: count(o, 'bytesSent'), bytesNew: count(o, 'bytesNew'), bytesTotal: o.bytesTotal === undefined ? undefined : count(o, 'bytesTotal') };
}

/** Dedup ratio as hoard reports it: logical bytes read / bytes newly stored (>= 1). */
export function dedupRatio(bytesRead: number, bytesStored: number): number {
  if (bytesRead === 0) return 1;
  return Math.round((bytesRead / Math.max(1, bytesStored)) * 100) / 100;
}
