/** Errors of garbage collection and of the commit check that keeps backups safe from it. */
import { RepositoryError } from '../repo/errors.js';

export class GcError extends RepositoryError {
  override name = 'GcError';
}

/** Another `gc` holds the repository's GC lock (or died holding it). */
export class GcLockedError extends GcError {
  override name = 'GcLockedError';
}

/**
 * A backup referenced a pack or chunk-list page that garbage collection condemned (or
 * already deleted) and it is too late to revive it safely. Nothing stays committed; the
 * backup can simply run again (it will store the chunks anew).
 */
export class GcConflictError extends GcError {
  override name = 'GcConflictError';
}
