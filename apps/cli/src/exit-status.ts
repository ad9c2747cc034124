/**
 * How an error becomes a message and an exit code. Anything the user can act on prints
 * one line; only errors we did not expect (bugs) print a stack trace.
 *
 * The exit code is one lookup in the error table of @hoard/errors (docs/errors.md): what
 * the environment refused first (it may be wrapped in any error), then the error's code,
 * or for an answer of the media server the code in its JSON error body.
 */
import { errorCodeOf, exitCodeOf, isErrorCode } from '@hoard/errors';
import { describeEnvironmentProblem, environmentAdvice, findEnvironmentError, isEnvironmentErrno } from '@hoard/repository/store-errors';
import type { ServerError } from '@hoard/protocol/client';
import { EXIT_FAILURE, EXIT_USAGE } from './errors.js';

export function exitStatus(err: unknown): { code: number; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  // Disk full, read-only, no permission, bucket over quota: one line naming where and what
  // to do, whatever wraps it (a failed pack upload is a StoreWriteError around it).
  const environment = environmentProblem(err, message);
  if (environment !== undefined) return { code: EXIT_FAILURE, message: environment };
  if (isServerError(err)) return { code: serverExitCode(err), message: `server: ${message}` };
  // ServerUnreachableError carries its code (server_unreachable) like our other errors.
  const code = errorCodeOf(err);
  if (code !== undefined && code !== 'internal') return { code: exitCodeOf(code), message };
  // Not ours, and not a bug either: an errno of the CLI's own I/O (EIO, ENOENT...), and
  // a restore target that failed a write with one (RestoreWriteError keeps the errno); an abort.
  const errno = (err as NodeJS.ErrnoException | null | undefined)?.code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) return { code: EXIT_FAILURE, message };
  if (err instanceof Error && err.name === 'AbortError') return { code: EXIT_FAILURE, message };
  return {
    code: EXIT_FAILURE,
    message: `${err instanceof Error ? (err.stack ?? message) : message}\n(this looks like a bug in hoard; please report it with the command you ran)`,
  };
}

/**
 * The media server's answer, known by the name its class (packages/protocol/src/client.ts)
 * gives it rather than by instanceof: importing the class would load the client and the
 * API's schemas (TypeBox, 200 modules) for every usage error and failed local command.
 */
function isServerError(err: unknown): err is ServerError {
  return err instanceof Error && err.name === 'ServerError' && typeof (err as Partial<ServerError>).status === 'number';
}

/**
 * The exit code for the media server's answer: the `code` of its JSON error body. A
 * server from before the codes sends none: then its status says it (4xx means nothing was
 * done, except a refused token and an expired session, which are failures of the work).
 */
function serverExitCode(err: ServerError): number {
  const code = err.body.code;
  if (isErrorCode(code)) return exitCodeOf(code);
  return err.status >= 400 && err.status < 500 && ![401, 403, 410].includes(err.status) ? EXIT_USAGE : EXIT_FAILURE;
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
