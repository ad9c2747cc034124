/**
 * Exit codes of the `hoard` command (documented in docs/cli.md):
 *   0  success
 *   1  the work failed (I/O error, corrupt data, a bug)
 *   2  usage error: bad option, bad value (nothing was done)
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A mistake the user can fix: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
