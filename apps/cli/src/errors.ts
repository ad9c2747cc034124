/**
 * Exit codes of the `hoard` command (documented in docs/cli.md):
 *   0  success
 *   1  the work failed (I/O error, unreachable storage, wrong passphrase, a bug)
 *   2  usage error: bad option or value, a name that does not exist (nothing was done)
 *   3  data problem: verify found damage, or restored data failed its checks
 */
import { EXIT_CODES, type ErrorCode } from '@hoard/errors';

export const EXIT_OK = 0;
/** The exit classes of @hoard/errors, whose table gives each error code one of them. */
export const EXIT_FAILURE = EXIT_CODES.failure;
export const EXIT_USAGE = EXIT_CODES.usage;
export const EXIT_DAMAGED = EXIT_CODES.damaged;

/** A mistake the user can fix: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code: ErrorCode = 'invalid_arguments';
}
