/**
 * Schemas shared by several routes: names, ids, times. Each naming rule is written here
 * once; the patterns are the ones snapshot keys allow (docs/format.md).
 */
import { AGENT_NAME, JOB_NAME } from '@hoard/errors';
import { Type, type Static } from '@sinclair/typebox';

export const JobName = Type.String({ pattern: JOB_NAME.pattern, description: JOB_NAME.words });
export const AgentName = Type.String({ pattern: AGENT_NAME.pattern, description: AGENT_NAME.words });
export const PolicyName = Type.String({ minLength: 1, maxLength: 128 });
export const RecordId = Type.String({ pattern: JOB_NAME.pattern, description: 'an id: ' + JOB_NAME.words });
export const SnapshotId = Type.String({ pattern: '^[0-9a-f]{16}$', description: 'a snapshot id: 16 hex digits' });
/** An ISO-8601 time as the server writes it (UTC, milliseconds). */
export const IsoTime = Type.String({ description: 'an ISO-8601 time' });
/** A time a client gives: ISO-8601 (a date alone means its midnight UTC). */
export const READ_TIME = Type.String({ minLength: 4, maxLength: 64, description: 'an ISO-8601 time' });
export const Count = Type.Integer({ minimum: 0, description: 'a non-negative integer' });
export const Bytes = Type.Integer({ minimum: 0, description: 'a number of bytes (0 or more)' });

/**
 * The stat of an image file (docs/format.md, manifest `sourceStat`): size in bytes,
 * modification time in nanoseconds since the epoch, inode and device; the 64-bit ones
 * as decimal strings (they exceed 2^53).
 */
export const SourceStat = Type.Object({
  size: Bytes,
  mtimeNs: Type.String({ pattern: '^-?\\d{1,20}$' }),
  ino: Type.String({ pattern: '^\\d{1,20}$' }),
  dev: Type.String({ pattern: '^\\d{1,20}$' }),
});
export type SourceStat = Static<typeof SourceStat>;

export const SourceKind = Type.Union([Type.Literal('file'), Type.Literal('block-device'), Type.Literal('stream'), Type.Literal('directory')]);
export type SourceKind = Static<typeof SourceKind>;

/** `?wait=SECONDS` of the long polls (capped at 60 s by the server). */
export const WaitQuery = Type.Object({ wait: Type.Optional(Type.Number({ minimum: 0, description: 'seconds to wait for a change (at most 60)' })) });

export const JobParams = Type.Object({ job: JobName });
export const IdParams = Type.Object({ id: RecordId });

/** The JSON body of every error answer (docs/errors.md). */
export const ErrorBody = Type.Object(
  {
    code: Type.String({ description: 'a stable code from docs/errors.md' }),
    message: Type.String(),
    status: Type.Integer(),
    error: Type.String({ description: 'the message again, for agents older than the error codes' }),
  },
  { additionalProperties: true },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const Ok = Type.Object({ ok: Type.Literal(true) });
