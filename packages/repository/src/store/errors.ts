/** Errors from object stores. Each names the store location, the operation and the key. */
import type { ErrorCode } from '@hoard/errors';

export type StoreOperation = 'put' | 'get' | 'head' | 'list' | 'delete';

export class ObjectStoreError extends Error {
  override name = 'ObjectStoreError';
  /** EnvironmentError replaces it with its errno or S3 code (callers answer storage_refused for it). */
  readonly code: ErrorCode | EnvironmentCode = 'storage_unavailable';
  constructor(
    readonly location: string,
    readonly operation: StoreOperation,
    readonly key: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}${key ? ` ${key}` : ''} in ${location} failed: ${reason}`, options);
  }
}

/**
 * The object does not exist. Callers that expect absence catch it by class; one that
 * reaches the user is an object the repository needs and lost: damage, never "not found".
 */
export class ObjectNotFoundError extends ObjectStoreError {
  override name = 'ObjectNotFoundError';
  override readonly code: ErrorCode = 'data_damaged';
  constructor(location: string, key: string) {
    super(location, 'get', key, 'no such object');
  }
}

/** A key that could escape the store or is otherwise malformed (caller bug or hostile input). */
export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
  readonly code: ErrorCode = 'invalid_request';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid object key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** A byte range that does not lie inside the object: the object is shorter than the index says (damage). */
export class RangeOutOfBoundsError extends ObjectStoreError {
  override name = 'RangeOutOfBoundsError';
  override readonly code: ErrorCode = 'data_damaged';
  constructor(location: string, key: string, offset: number, length: number, size: number) {
    super(location, 'get', key, `range ${offset}+${length} is outside the object (${size} bytes)`);
  }
}

/**
 * What the environment refused, as opposed to a fault of hoard or of the data: the file
 * system is full or over quota, hoard may not write there, the file system is mounted
 * read-only, or the bucket is over its quota or refuses access. errno codes for local
 * files, the S3 error code for buckets.
 */

export type EnvironmentCode = 'ENOSPC' | 'EDQUOT' | 'EACCES' | 'EPERM' | 'EROFS' | 'QuotaExceeded' | 'AccessDenied';

const ERRNO_ENVIRONMENT = new Set<string>(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS']);

/** True for the errno codes an EnvironmentError stands for. */
export function isEnvironmentErrno(code: unknown): code is 'ENOSPC' | 'EDQUOT' | 'EACCES' | 'EPERM' | 'EROFS' {
  return typeof code === 'string' && ERRNO_ENVIRONMENT.has(code);
}

/** What to do about an environment problem (the second half of the one-line message). */
export function environmentAdvice(code: EnvironmentCode): string {
  switch (code) {
    case 'ENOSPC':
      return 'free space there or use a disk with room';
    case 'EDQUOT':
      return 'raise the quota of the user running hoard or free space there';
    case 'EACCES':
    case 'EPERM':
      return "run hoard as a user that may write there, or change the directory's owner or mode";
    case 'EROFS':
      return 'remount it read-write or use another location';
    case 'QuotaExceeded':
      return "raise the bucket's or the user's quota, or forget snapshots and run `hoard gc`";
    case 'AccessDenied':
      return 'check the access key, and that its user or policy may write to this bucket';
  }
}

/**
 * One line saying what the environment refused at `path` (a directory or file) or in
 * `bucket`, and what to do about it. Shared by the stores and by the CLI for its own files.
 */
export function describeEnvironmentProblem(code: EnvironmentCode, where: { path?: string; bucket?: string }): string {
  const path = where.path ?? '(unknown path)';
  const bucket = where.bucket ?? '(unknown bucket)';
  const what = {
    ENOSPC: `no space left on the file system of ${path}`,
    EDQUOT: `disk quota exceeded on the file system of ${path}`,
    EACCES: `permission denied on ${path}`,
    EPERM: `permission denied on ${path}`,
    EROFS: `${path} is on a read-only file system`,
    QuotaExceeded: `bucket ${bucket} is over its quota`,
    AccessDenied: `access denied to bucket ${bucket}`,
  }[code];
  return `${what} (${code}): ${environmentAdvice(code)}`;
}

/**
 * An object store operation failed because of its environment (see EnvironmentCode): not
 * a bug and not damage. `path` is the file-system path involved (fs stores), `bucket` the
 * bucket (S3 stores). The message is one line that names it and says what to do.
 */
export class EnvironmentError extends ObjectStoreError {
  override name = 'EnvironmentError';
  readonly path: string | undefined;
  readonly bucket: string | undefined;
  constructor(
    location: string,
    operation: StoreOperation,
    key: string,
    override readonly code: EnvironmentCode,
    where: { path?: string; bucket?: string; reason?: string },
    options?: { cause?: unknown },
  ) {
    super(location, operation, key, where.reason ?? describeEnvironmentProblem(code, where), options);
    this.path = where.path;
    this.bucket = where.bucket;
  }
}

/**
 * The EnvironmentError behind `err` (itself, or one of its causes: a failed pack upload is
 * wrapped in the backup's own error), or undefined.
 */
export function findEnvironmentError(err: unknown): EnvironmentError | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    if (e instanceof EnvironmentError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
