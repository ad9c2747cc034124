/**
 * Every deliberate error of hoard has a stable code. This table is the one place that says
 * what a code means to each surface: the HTTP status the media server answers with, and
 * the exit class of the `hoard` command. docs/errors.md is this table in prose; a test
 * keeps the two in step.
 *
 * Codes are API: scripts and the console branch on them, so a code is never renamed or
 * reused for another meaning (add a new one instead). Messages may change; codes may not.
 *
 * An error "has" a code when it carries a string `code` property found in this table;
 * packages that must not depend on this one (the chunker) declare the literal themselves
 * and a test checks it is listed here.
 */

/**
 * How the `hoard` command ends on an error of this code (docs/cli.md, "Exit codes"):
 * usage 2 (nothing was done: fix the command), failure 1 (the work failed: retry may
 * help), damaged 3 (stored or restored data failed its checks).
 */
export type ExitClass = 'usage' | 'failure' | 'damaged';

export const EXIT_CODES: Readonly<Record<ExitClass, number>> = { failure: 1, usage: 2, damaged: 3 };

export interface ErrorCodeInfo {
  /** The media server's answer status for an error of this code. */
  readonly status: number;
  readonly exit: ExitClass;
  /** One line for docs/errors.md. */
  readonly meaning: string;
}

export const ERROR_CODES = {
  // --- requests: what the client sent --------------------------------------------------
  invalid_request: { status: 400, exit: 'usage', meaning: 'a field of the request is missing, of the wrong type or out of range; the message names it' },
  invalid_arguments: {
    status: 400,
    exit: 'usage',
    meaning: 'a command-line option or argument is missing, malformed or contradicts another; the message says which',
  },
  invalid_name: { status: 400, exit: 'usage', meaning: 'a job, agent, store or policy name breaks its naming rule' },
  invalid_policy: { status: 400, exit: 'usage', meaning: 'a policy document does not validate; the message names the policy, field and line' },
  invalid_source: { status: 400, exit: 'usage', meaning: 'a source specification (file:, vm:, postgres:, ...) is malformed' },
  invalid_schedule: { status: 400, exit: 'usage', meaning: 'a cron expression, calendar word or time zone is not valid' },
  invalid_retention: { status: 400, exit: 'usage', meaning: 'retention rules are contradictory or out of range' },
  invalid_chunker: { status: 400, exit: 'usage', meaning: 'chunker parameters are out of range' },
  invalid_config: { status: 400, exit: 'usage', meaning: 'a configuration file has an unknown key or a bad value; the message names the file and key' },
  invalid_storage: { status: 400, exit: 'usage', meaning: 'a storage location or a store name is malformed, unknown or not allowed for this job' },
  invalid_target: {
    status: 400,
    exit: 'usage',
    meaning: 'a restore target cannot be used: its directory is missing, it is a directory where a file is wanted, or a device is too small',
  },
  unsupported_media_type: { status: 415, exit: 'usage', meaning: 'the request body has the wrong Content-Type' },
  body_too_large: { status: 413, exit: 'usage', meaning: "the request body is over the call's limit" },
  range_not_satisfiable: { status: 416, exit: 'usage', meaning: 'a byte range lies outside the snapshot' },
  method_not_allowed: { status: 405, exit: 'usage', meaning: 'the path exists but not with this HTTP method' },
  // --- who is asking -------------------------------------------------------------------
  unauthenticated: { status: 401, exit: 'failure', meaning: 'no token, or a token the server does not know (revoked, mistyped)' },
  forbidden: { status: 403, exit: 'failure', meaning: "the token's role or agent may not do this" },
  agent_revoked: { status: 400, exit: 'usage', meaning: 'the agent was revoked; add it again to give it a new token' },
  // --- what the request names ------------------------------------------------------------
  not_found: { status: 404, exit: 'usage', meaning: 'no such route or object' },
  job_not_found: { status: 404, exit: 'usage', meaning: 'no job of that name' },
  agent_not_found: { status: 404, exit: 'usage', meaning: 'no agent of that name (or it was revoked)' },
  policy_not_found: { status: 404, exit: 'usage', meaning: 'no policy of that name' },
  snapshot_not_found: { status: 404, exit: 'usage', meaning: 'no snapshot matches the id, prefix or time' },
  run_not_found: { status: 404, exit: 'usage', meaning: 'no run of that id' },
  session_not_found: { status: 404, exit: 'usage', meaning: 'no backup session of that id' },
  repository_not_found: { status: 404, exit: 'usage', meaning: 'no repository at the location (hoard init creates one)' },
  archive_entry_not_found: { status: 404, exit: 'usage', meaning: 'no file or directory of that path in the snapshot' },
  // --- state ----------------------------------------------------------------------------
  conflict: { status: 409, exit: 'usage', meaning: 'the request contradicts the current state; the message says which' },
  agent_exists: { status: 409, exit: 'usage', meaning: 'an agent of that name exists' },
  policy_exists: { status: 409, exit: 'usage', meaning: 'a policy of that name exists (create refuses to replace it)' },
  repository_exists: { status: 409, exit: 'usage', meaning: 'a repository exists at the location' },
  target_exists: { status: 409, exit: 'usage', meaning: 'the restore target exists and would be overwritten' },
  snapshot_protected: { status: 409, exit: 'usage', meaning: 'the snapshot is protected; unprotect it first' },
  run_not_running: { status: 409, exit: 'failure', meaning: 'the run already ended (failed, cancelled, its lease passed)' },
  gc_locked: { status: 409, exit: 'failure', meaning: 'another GC or repair holds the lock' },
  gc_conflict: { status: 409, exit: 'failure', meaning: 'GC met a concurrent change and stopped without deleting' },
  upload_rejected: { status: 422, exit: 'failure', meaning: 'an uploaded batch does not match its own header or fingerprints; nothing of it was stored' },
  request_timeout: { status: 408, exit: 'failure', meaning: 'an upload stalled: no bytes for the session idle time' },
  chunks_lost: { status: 503, exit: 'failure', meaning: 'chunks a snapshot needs could not be stored; nothing was committed, run the backup again' },
  session_gone: { status: 410, exit: 'failure', meaning: 'the backup session ended (expired, aborted or committed)' },
  catalog_unavailable: {
    status: 503,
    exit: 'failure',
    meaning: "the media server's catalog cannot be used: another process holds it, it is closed, it is not a catalog, or a newer hoard wrote it",
  },
  // --- the environment and the data ------------------------------------------------------
  storage_refused: { status: 507, exit: 'failure', meaning: 'the disk or bucket refused: full, over quota, read-only or no permission' },
  storage_unavailable: { status: 502, exit: 'failure', meaning: 'the object store failed or is unreachable' },
  data_damaged: { status: 500, exit: 'damaged', meaning: 'stored data failed its checks; the message names the object' },
  repository_error: {
    status: 500,
    exit: 'failure',
    meaning:
      'the repository refused an operation (a range outside the snapshot, a pack size out of range, a GC list this build does not understand); the message says which',
  },
  wrong_passphrase: { status: 401, exit: 'failure', meaning: "the passphrase does not open the repository's key" },
  passphrase_required: { status: 401, exit: 'failure', meaning: 'the repository is encrypted and no passphrase was given' },
  key_file_invalid: {
    status: 500,
    exit: 'failure',
    meaning: 'a key file is of an unsupported version or has invalid fields, or the passphrase for a new one is empty',
  },
  server_unreachable: { status: 502, exit: 'failure', meaning: 'no answer from the media server (refused, reset, DNS, TLS)' },
  bad_answer: {
    status: 502,
    exit: 'failure',
    meaning: 'the server answered with something this client cannot read (client and server of different versions?)',
  },
  server_stopping: { status: 503, exit: 'failure', meaning: 'the media server is shutting down; retry against the new process' },
  // --- sources and the programs they run (the agent's, or the hoard command's own) --------
  source_not_found: { status: 404, exit: 'usage', meaning: 'the path, device, libvirt domain or disk image a source names does not exist' },
  source_unsupported: {
    status: 400,
    exit: 'usage',
    meaning: 'what a source names exists but cannot be read as that kind of source (a directory given to file:, a named pipe)',
  },
  source_failed: {
    status: 500,
    exit: 'failure',
    meaning: 'a source stopped before its end: a dump or command exited non-zero, a read failed, qemu-nbd stopped, or it was closed; nothing was committed',
  },
  source_changed: { status: 409, exit: 'failure', meaning: 'a source grew or shrank while it was read; nothing was committed' },
  tool_missing: { status: 500, exit: 'failure', meaning: 'a program hoard needs (qemu-nbd, pg_dump, virsh, psql, ...) is not installed or not on PATH' },
  notification_failed: {
    status: 502,
    exit: 'failure',
    meaning: 'a notification target did not take the event (mail server, webhook or command); the message says why',
  },
  // --- the work as a whole -------------------------------------------------------------
  work_failed: { status: 500, exit: 'failure', meaning: 'a backup, restore or run failed; the message says where' },
  internal: { status: 500, exit: 'failure', meaning: 'an error hoard did not expect: a bug; please report it' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * The code of an error: its own `code` when the table lists it (Node's errno codes such as
 * ENOSPC are not listed, so they never pass for one of ours), else undefined.
 */
export function errorCodeOf(err: unknown): ErrorCode | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return isErrorCode(code) ? code : undefined;
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

export function exitCodeOf(code: ErrorCode): number {
  return EXIT_CODES[ERROR_CODES[code].exit];
}

/** Base of hoard's error classes that are not bound to an older hierarchy. */
export class HoardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra JSON fields for an error body (e.g. the snapshot a replayed commit made). */
    readonly details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
