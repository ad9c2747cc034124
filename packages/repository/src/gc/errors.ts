/** Errors of garbage collection and of the commit check that keeps backups safe from it. */
import type { ErrorCode } from '@hoard/errors';
import { RepositoryError } from '../repo/errors.js';

export class GcError extends RepositoryError {
  override name = 'GcError';
}

/** GC met damaged or missing metadata (a segment, manifest or page) and refuses to run: exit 3. */
export class GcDamagedError extends GcError {
  override name = 'GcDamagedError';
  override readonly code: ErrorCode = 'data_damaged';
}

/** Another `gc` holds the repository's GC lock (or died holding it). */
export class GcLockedError extends GcError {
  override name = 'GcLockedError';
  override readonly code: ErrorCode = 'gc_locked';
}

/**
 * A backup referenced a pack or chunk-list page that garbage collection condemned (or
 * already deleted) and it is too late to revive it safely. Nothing stays committed; the
 * backup can simply run again (it will store the chunks anew).
 */
export class GcConflictError extends GcError {
  override name = 'GcConflictError';
  override readonly code: ErrorCode = 'gc_conflict';
}
