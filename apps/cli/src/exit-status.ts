/**
 * How an error becomes a message and an exit code. Anything the user can act on prints
 * one line; only errors we did not expect (bugs) print a stack trace.
 */
import { ChunkerParameterError } from '@hoard/chunker';
import {
  ArchiveEntryNotFoundError,
  ArchiveTargetExistsError,
  BlobCorruptError,
  describeEnvironmentProblem,
  environmentAdvice,
  findEnvironmentError,
  IntegrityError,
  isEnvironmentErrno,
  InvalidJobNameError,
  InvalidStoreNameError,
  KeyFileFormatError,
  ObjectFormatError,
  ObjectStoreError,
  RepositoryError,
  RepositoryNotFoundError,
  S3ConfigError,
  SnapshotNotFoundError,
  StoreScopeError,
  UnknownStoreError,
  WrongPassphraseError,
} from '@hoard/repository';
import { ServerError, ServerUnreachableError } from '@hoard/protocol';
import { EXIT_DAMAGED, EXIT_FAILURE, EXIT_USAGE, UsageError } from './errors.js';

export function exitStatus(err: unknown): { code: number; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  // Disk full, read-only, no permission, bucket over quota: one line naming where and what
  // to do, whatever wraps it (a failed pack upload is a StoreWriteError around it).
  const environment = environmentProblem(err, message);
  if (environment !== undefined) return { code: EXIT_FAILURE, message: environment };
  if (err instanceof ServerError) {
    // The server names what is wrong; 4xx means nothing was done.
    if (/stored data is damaged/.test(message)) return { code: EXIT_DAMAGED, message: `server: ${message}` };
    // A refused token or an expired session is a failure of the work, not of the command line.
    const usage = err.status >= 400 && err.status < 500 && ![401, 403, 410].includes(err.status);
    return { code: usage ? EXIT_USAGE : EXIT_FAILURE, message: `server: ${message}` };
  }
  if (err instanceof ServerUnreachableError || (err instanceof Error && (err.name === 'RunFailedError' || err.name === 'BackupFailedError' || err.name === 'RestoreFailedError' || err.name === 'StoreWriteError'))) return { code: EXIT_FAILURE, message };
  if (
    err instanceof UsageError || (err instanceof Error && err.name === 'ServerConfigError') ||
    err instanceof ChunkerParameterError ||
    err instanceof InvalidJobNameError ||
    err instanceof InvalidStoreNameError ||
    err instanceof RepositoryNotFoundError ||
    err instanceof SnapshotNotFoundError ||
    err instanceof ArchiveEntryNotFoundError ||
    err instanceof ArchiveTargetExistsError ||
    err instanceof StoreScopeError ||
    err instanceof UnknownStoreError ||
    err instanceof S3ConfigError
  ) {
    return { code: EXIT_USAGE, message };
  }
  if (err instanceof IntegrityError || err instanceof ObjectFormatError || err instanceof BlobCorruptError || (err instanceof Error && (err.name === 'RestoreDamagedError' || err.name === 'GcDamagedError'))) return { code: EXIT_DAMAGED, message };
  if (err instanceof RepositoryError || err instanceof WrongPassphraseError || err instanceof KeyFileFormatError || err instanceof ObjectStoreError) {
    return { code: EXIT_FAILURE, message };
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return { code: EXIT_FAILURE, message };
  if (err instanceof Error && err.name === 'AbortError') return { code: EXIT_FAILURE, message };
  return { code: EXIT_FAILURE, message: `${err instanceof Error ? (err.stack ?? message) : message}\n(this looks like a bug in hoard; please report it with the command you ran)` };
}

/**
 * The environment problem behind `err` as one line: an EnvironmentError from a store, or
 * an errno error of the CLI's own files (ENOSPC, EDQUOT, EACCES, EPERM, EROFS) with its path.
 */
function environmentProblem(err: unknown, message: string): string | undefined {
  const store = findEnvironmentError(err);
  if (store) return store.message;
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const { code, path } = e as NodeJS.ErrnoException;
    if (isEnvironmentErrno(code)) {
      if (path !== undefined) return describeEnvironmentProblem(code, { path });
      // No path (a write to an open file): the outermost message says what was being done.
      const first = message.split('\n')[0];
      return `${first}${first.includes(code) ? '' : ` (${code})`}: ${environmentAdvice(code)}`;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
