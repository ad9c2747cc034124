/**
 * A stored blob that does not decode to what its pack trailer promises. The repository
 * layer adds the snapshot, object and offset (invariant 4: a mismatch is named, never
 * silent); here we say which check failed.
 */

import type { ErrorCode } from '@hoard/errors';

export type BlobCheck = 'checksum' | 'authentication' | 'decompression' | 'length' | 'fingerprint';

export class BlobCorruptError extends Error {
  override readonly name = 'BlobCorruptError';
  readonly code: ErrorCode = 'data_damaged';
  constructor(
    readonly check: BlobCheck,
    readonly detail: string,
  ) {
    super(`blob failed its ${check} check: ${detail}`);
  }
}

export class BlobCodecConfigError extends Error {
  override readonly name = 'BlobCodecConfigError';
  readonly code: ErrorCode = 'internal';
}
