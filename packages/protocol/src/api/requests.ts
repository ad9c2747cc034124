/**
 * Request bodies of the API as TypeBox schemas; each TypeScript type of the same name is
 * derived from its schema. The server validates every JSON body against these before a
 * handler sees it; checks a schema cannot say (a source spec parses, bytesRead is at most
 * logicalBytes) are in messages.ts's parse functions.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AgentName, Bytes, Count, JobName, SourceKind, SourceStat } from './common.js';

const optional = Type.Optional;
const Text = (max: number) =>
  Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000]*$', description: `a non-empty string of at most ${max} characters without NUL bytes` });

export const SourceSpecText = Type.String({ minLength: 1, maxLength: 4096, description: 'a source spec (docs/sources.md)' });

export const RunHooks = Type.Object({ pre: optional(Text(8192)), post: optional(Text(8192)) }, { additionalProperties: false });
export type RunHooks = Static<typeof RunHooks>;

export const RestoreRunRequest = Type.Object(
  {
    snapshot: optional(Type.String({ minLength: 4, maxLength: 64, description: 'a snapshot id or a unique prefix of 4+ hex digits' })),
    at: optional(Type.String({ maxLength: 64, description: 'ISO-8601: the newest snapshot that started at or before it' })),
    source: optional(Text(4096)),
    path: optional(Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description: "an absolute path on the agent's host (or give database)" })),
    database: optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          "a dump snapshot into this database, reached from the agent's host: postgres://, postgresql://, mysql:// or mariadb:// without a password (the agent's ~/.pgpass, PGPASSWORD, ~/.my.cnf or MYSQL_PWD supply it)",
      }),
    ),
    force: optional(Type.Boolean()),
    file: optional(Text(4096)),
  },
  { additionalProperties: false },
);
export type RestoreRunRequest = Static<typeof RestoreRunRequest>;

export const CreateRunRequest = Type.Object({
  agent: AgentName,
  job: JobName,
  /** Absent or empty for a restore run. */
  sources: optional(Type.Array(SourceSpecText, { maxItems: 64 })),
  store: optional(Type.String({ minLength: 1, maxLength: 64 })),
  hooks: optional(RunHooks),
  full: optional(Type.Boolean()),
  bandwidth: optional(Type.Integer({ minimum: 1, description: 'bytes per second' })),
  restore: optional(RestoreRunRequest),
});
export type CreateRunRequest = Static<typeof CreateRunRequest>;

export const RunProgress = Type.Object({ target: Text(4096), bytesRead: Bytes, bytesTotal: optional(Bytes), bytesSent: Bytes, bytesNew: Bytes });
export type RunProgress = Static<typeof RunProgress>;

export const BeginSessionRequest = Type.Object({
  job: JobName,
  source: Type.Object({ name: Text(4096), kind: SourceKind }),
  chunking: Type.Union([Type.Literal('vm-image'), Type.Literal('db-dump'), Type.Literal('file')]),
  run: optional(Type.String({ minLength: 1, maxLength: 64 })),
});
export type BeginSessionRequest = Static<typeof BeginSessionRequest>;

export const CommitRequest = Type.Object({
  batches: Count,
  chunks: Count,
  logicalBytes: Bytes,
  streamHash: Type.String({ pattern: '^[0-9a-f]{64}$', description: '64 lower-case hex digits (BLAKE3-256)' }),
  streamHashOver: optional(Type.Literal('chunks')),
  bytesRead: Bytes,
  startedAt: Type.String({ minLength: 1, maxLength: 40 }),
  sourceStat: optional(SourceStat),
});
export type CommitRequest = Static<typeof CommitRequest>;
