/**
 * Exit codes of the `hoard` command (documented in docs/cli.md):
 *   0  success
 *   1  the work failed (I/O error, unreachable storage, wrong passphrase, a bug)
 *   2  usage error: bad option or value, a name that does not exist (nothing was done)
 *   3  data problem: verify found damage, or restored data failed its checks
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_DAMAGED = 3;

/** A mistake the user can fix: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
