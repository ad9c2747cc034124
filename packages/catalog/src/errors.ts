/**
 * Every error the catalog throws on purpose is a `CatalogError`; each case has its own
 * subclass so callers can branch on it, a stable `code` from @hoard/errors (which decides
 * the HTTP status and the CLI's exit code; several classes share one), and a message that
 * says what to do about it.
 */
import type { ErrorCode } from '@hoard/errors';

export class CatalogError extends Error {
  override readonly name: string = 'CatalogError';
  readonly code: ErrorCode = 'catalog_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The directory's LevelDB LOCK is held: by another process, or another open Catalog here. */
export class CatalogLockedError extends CatalogError {
  override readonly name = 'CatalogLockedError';
  override readonly code: ErrorCode = 'catalog_unavailable';
  constructor(
    readonly dir: string,
    options?: { cause?: unknown },
  ) {
    super(`catalog ${dir} is in use by another process (is a media server already running?)`, options);
  }
}

/** The catalog was written by a newer version of hoard than this one understands. */
export class CatalogSchemaError extends CatalogError {
  override readonly name = 'CatalogSchemaError';
  override readonly code: ErrorCode = 'catalog_unavailable';
  constructor(
    readonly dir: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `catalog ${dir} has schema version ${found}, but this hoard supports up to version ${supported}: ` +
        `upgrade hoard, or start the server on an empty data directory (the snapshots are read back from the bucket at start; docs/repair.md says what is not rebuilt)`,
    );
  }
}

/** The directory cannot be opened as a catalog, or holds something that is not one. */
export class CatalogOpenError extends CatalogError {
  override readonly name = 'CatalogOpenError';
  override readonly code: ErrorCode = 'catalog_unavailable';
  constructor(
    readonly dir: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open catalog ${dir}: ${reason}`, options);
  }
}

/** A method was called after close(). */
export class CatalogClosedError extends CatalogError {
  override readonly name = 'CatalogClosedError';
  override readonly code: ErrorCode = 'catalog_unavailable';
  constructor(readonly dir: string) {
    super(`catalog ${dir} is closed: open it again with Catalog.open()`);
  }
}

/** A record or argument does not have the shape the catalog stores. */
export class CatalogValidationError extends CatalogError {
  override readonly name: string = 'CatalogValidationError';
  override readonly code: ErrorCode = 'invalid_request';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** An agent or job name (or a session/run id) that cannot be used. */
export class InvalidNameError extends CatalogValidationError {
  override readonly name = 'InvalidNameError';
  override readonly code: ErrorCode = 'invalid_name';
  constructor(
    readonly kind: string,
    readonly value: string,
    rule: string,
  ) {
    super(kind, `invalid ${kind} ${JSON.stringify(value)}: ${rule}`);
  }
}

export class AgentExistsError extends CatalogError {
  override readonly name = 'AgentExistsError';
  override readonly code: ErrorCode = 'agent_exists';
  constructor(readonly agent: string) {
    super(`agent ${agent} already exists: revoke it first, or rotate its token instead`);
  }
}

export class AgentNotFoundError extends CatalogError {
  override readonly name = 'AgentNotFoundError';
  override readonly code: ErrorCode = 'agent_not_found';
  constructor(readonly agent: string) {
    super(`no agent named ${agent} in the catalog: add it first`);
  }
}

export class AgentRevokedError extends CatalogError {
  override readonly name = 'AgentRevokedError';
  override readonly code: ErrorCode = 'agent_revoked';
  constructor(
    readonly agent: string,
    readonly revokedAt: string,
  ) {
    super(`agent ${agent} was revoked at ${revokedAt}: add it again to give it a new token`);
  }
}

/** A token hash that is already an agent's or an admin's token (tokens must be unique). */
export class TokenInUseError extends CatalogError {
  override readonly name = 'TokenInUseError';
  override readonly code: ErrorCode = 'conflict';
  constructor(readonly holder: string) {
    super(`this token is already in use by ${holder}: generate a new random token`);
  }
}

export class JobNotFoundError extends CatalogError {
  override readonly name = 'JobNotFoundError';
  override readonly code: ErrorCode = 'job_not_found';
  constructor(readonly job: string) {
    super(`no job named ${job} in the catalog: define it first`);
  }
}

/** importRecords into a catalog that holds records already: an import never merges. */
export class CatalogNotEmptyError extends CatalogError {
  override readonly name = 'CatalogNotEmptyError';
  override readonly code: ErrorCode = 'conflict';
  constructor(dir: string, holds: string) {
    super(`catalog ${dir} holds ${holds} already: records are imported into an empty catalog only`);
  }
}
