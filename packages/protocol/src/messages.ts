/**
 * JSON messages of the HTTP API: their types (derived from the schemas in api/), the
 * error a request is answered with, and the name checks. The server validates every body
 * against its route's schema before a handler runs; what a schema cannot say is checked
 * by the handler (apps/media-server/src/routes/request-checks.ts).
 */

import { AGENT_NAME, HoardError, httpStatusOf, JOB_NAME, type ErrorCode } from '@hoard/errors';
import type { BeginSessionRequest, CommitRequest, CreateRunRequest, RestoreRunRequest, RunHooks, RunProgress } from './api/requests.js';
import type { SourceKind, SourceStat } from './api/common.js';
import type { TargetResult } from './api/replies.js';

// Request bodies are declared once, as schemas (api/requests.ts); their types are re-exported here.
export { AGENT_NAME, JOB_NAME } from '@hoard/errors';
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

/** Job and agent names by the rules every layer checks (@hoard/errors names.ts). */
export function checkJobName(value: unknown, field = 'job'): string {
  if (typeof value !== 'string' || !JOB_NAME.regex.test(value))
    throw new RequestError('invalid_name', `${field} must be ${JOB_NAME.words}; got ${JSON.stringify(value)}`);
  return value;
}

export function checkAgentName(value: unknown, field = 'agent'): string {
  if (typeof value !== 'string' || !AGENT_NAME.regex.test(value))
    throw new RequestError('invalid_name', `${field} must be ${AGENT_NAME.words}; got ${JSON.stringify(value)}`);
  return value;
}

/** An agent's report when it finishes a run. */
export interface FinishRunRequest {
  /** `cancelled`: the agent stopped because the progress answer asked it to. */
  state: 'succeeded' | 'failed' | 'cancelled';
  targets: TargetResult[];
  error?: string;
}

/** The dedup ratio's ceiling: what was (nearly) all known already reads as 1000. */
export const DEDUP_RATIO_CAP = 1000;

/**
 * Dedup as hoard reports it everywhere (API, CLI, docs/cli.md "dedup"): logical bytes /
 * the new unique bytes before compression, 2 decimals, 1 for an empty stream, at most
 * DEDUP_RATIO_CAP (a run that found everything known is not "3159125x"). Compression is
 * reported apart (bytesNew / bytesStored), never folded in here.
 */
export function dedupRatio(logicalBytes: number, bytesNew: number): number {
  if (logicalBytes === 0) return 1;
  return Math.min(DEDUP_RATIO_CAP, Math.round((logicalBytes / Math.max(1, bytesNew)) * 100) / 100);
}
