export { Catalog, SCHEMA_VERSION, type ReplaceResult } from './catalog.js';
export {
  AgentExistsError,
  AgentNotFoundError,
  AgentRevokedError,
  CatalogClosedError,
  CatalogError,
  CatalogLockedError,
  CatalogOpenError,
  CatalogSchemaError,
  CatalogValidationError,
  InvalidNameError,
  JobNotFoundError,
  TokenInUseError,
} from './errors.js';
export type {
  AdminTokenRecord,
  AgentContact,
  AgentRecord,
  JobInput,
  JobRecord,
  PolicyRecord,
  RunQuery,
  RunRecord,
  RunState,
  SchemaRecord,
  SessionInput,
  SessionQuery,
  SessionRecord,
  SessionState,
  SnapshotQuery,
  SnapshotRecord,
} from './records.js';
export { AGENT_NAME_RULE, JOB_NAME_RULE } from './validate.js';
