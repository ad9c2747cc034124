/**
 * How an error becomes a message and an exit code. Anything the user can act on prints
 * one line; only errors we did not expect (bugs) print a stack trace.
 */
import { ChunkerParameterError } from '@hoard/chunker';
import {
  ArchiveEntryNotFoundError,
  ArchiveTargetExistsError,
  BlobCorruptError,
  IntegrityError,
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
  if (err instanceof ServerError) {
    // The server names what is wrong; 4xx means nothing was done.
    if (/stored data is damaged/.test(message)) return { code: EXIT_DAMAGED, message: `server: ${message}` };
    // A refused token or an expired session is a failure of the work, not of the command line.
    const usage = err.status >= 400 && err.status < 500 && ![401, 403, 410].includes(err.status);
    return { code: usage ? EXIT_USAGE : EXIT_FAILURE, message: `server: ${message}` };
  }
  if (err instanceof ServerUnreachableError || (err instanceof Error && (err.name === 'RunFailedError' || err.name === 'BackupFailedError' || err.name === 'RestoreFailedError'))) return { code: EXIT_FAILURE, message };
  if (
    err instanceof UsageError ||
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
