/**
 * An object read from the store that is not what its kind promises (damaged, truncated,
 * of another format or version). Each kind has its own subclass so callers can tell a
 * bad pack from a bad manifest; all name the object and what is wrong.
 */

import type { ErrorCode } from '@hoard/errors';

export abstract class ObjectFormatError extends Error {
  readonly code: ErrorCode = 'data_damaged';
  constructor(
    readonly kind: string,
    readonly object: string,
    readonly reason: string,
  ) {
    super(`${kind} ${object} is damaged or not a ${kind}: ${reason}`);
  }
}
