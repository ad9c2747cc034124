/**
 * Errors of the repository layer. Each says what is wrong and what would be right, so the
 * CLI can print the message as it is (no stack trace for a user's mistake).
 */

import type { ErrorCode } from '@hoard/errors';
import { ObjectFormatError } from '../format-error.js';

/** Base class: anything the user can act on (wrong path, wrong id, wrong passphrase). */
export class RepositoryError extends Error {
  override name = 'RepositoryError';
  readonly code: ErrorCode = 'repository_error';
}

export class RepositoryNotFoundError extends RepositoryError {
  override name = 'RepositoryNotFoundError';
  override readonly code: ErrorCode = 'repository_not_found';
  constructor(readonly location: string) {
    super(`no hoard repository at ${location} (create one with \`hoard init --repo ${location}\`, or check --repo)`);
  }
}

export class RepositoryExistsError extends RepositoryError {
  override name = 'RepositoryExistsError';
  override readonly code: ErrorCode = 'repository_exists';
  constructor(readonly location: string) {
    super(`${location} already holds a hoard repository; init never overwrites one`);
  }
}

export class PassphraseRequiredError extends RepositoryError {
  override name = 'PassphraseRequiredError';
  override readonly code: ErrorCode = 'passphrase_required';
  constructor(readonly location: string) {
    super(`the repository at ${location} is encrypted: give its passphrase (HOARD_PASSPHRASE, --passphrase-file, or type it on a terminal)`);
  }
}

export class SnapshotNotFoundError extends RepositoryError {
  override name = 'SnapshotNotFoundError';
  override readonly code: ErrorCode = 'snapshot_not_found';
}

export class StoreScopeError extends RepositoryError {
  override name = 'StoreScopeError';
  override readonly code: ErrorCode = 'invalid_storage';
}

export class UnknownStoreError extends RepositoryError {
  override name = 'UnknownStoreError';
  override readonly code: ErrorCode = 'invalid_storage';
}

/** The source ended or failed before the backup could commit; nothing was committed. */
export class SourceError extends RepositoryError {
  override name = 'SourceError';
  override readonly code: ErrorCode = 'source_failed';
}

/**
 * Restored or verified data that does not match what was committed (invariant 4). Names
 * the snapshot, the logical offset in the stream and the object that holds the bytes.
 */
export class IntegrityError extends Error {
  override name = 'IntegrityError';
  readonly code: ErrorCode = 'data_damaged';
  constructor(
    readonly snapshot: string,
    readonly object: string,
    readonly offset: number | undefined,
    readonly reason: string,
  ) {
    super(`snapshot ${snapshot}: ${offset === undefined ? '' : `bytes at offset ${offset}, `}object ${object}: ${reason}`);
  }
}

/**
 * Repository metadata that is damaged or missing where a command needs it: a snapshot
 * manifest that does not decode, a store record a snapshot names that is not there. Exit 3
 * in the CLI, like every other damage (ObjectFormatError), never "not found".
 */
export class MetadataDamagedError extends ObjectFormatError {
  override readonly name = 'MetadataDamagedError';
  constructor(kind: string, object: string, reason: string, message: string) {
    super(kind, object, reason);
    this.message = message;
  }
}
