/**
 * The backup-validity report (`hoard report validity`, GET /v1/reports/validity;
 * docs/cli.md, "report validity"): per job, what was planned, run and kept over a period,
 * the last good snapshot, retention compliance, verify coverage and the restore drills,
 * and the repository's stored bytes over time with the capacity forecast. Declared once:
 * the server builds it, the CLI renders it (JSON, HTML, PDF).
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';

const optional = Type.Optional;
const record = <T extends TProperties>(properties: T, options: { title?: string; description?: string } = {}) =>
  Type.Object(properties, { ...options, additionalProperties: false });
const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Number> | ReturnType<typeof Type.Integer>>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const Count = Type.Integer({ minimum: 0 });
const Time = Type.String({ description: 'ISO-8601 UTC' });

export const DayState = Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('mixed'), Type.Literal('missed'), Type.Literal('none')], {
  description: 'ok: runs that day all succeeded; failed: none succeeded; mixed: some did; missed: a run was planned and none ran; none: nothing planned or run',
});
export type DayState = Static<typeof DayState>;

export const RetentionCheck = record({
  rule: Type.String({ description: 'e.g. keep-daily 7' }),
  /** The snapshots the policy's retention keeps for this rule (planRetention over every snapshot the job made). */
  expected: Count,
  /** Of those, the ones that exist. */
  present: Count,
  ok: Type.Boolean(),
  /** Ids of snapshots the rule keeps that do not exist (pruned wrongly or lost), at most 10. */
  missing: optional(Type.Array(Type.String())),
});
export type RetentionCheck = Static<typeof RetentionCheck>;

/** The database part of a drill (a policy's `drill:`): the dump restored into a scratch database, the query run there. */
export const DrillDatabase = record({
  /** postgres://host:port, no user or password. */
  server: Type.String(),
  /** The scratch database (created and dropped by the drill). */
  database: Type.String(),
  /** pg_restore (custom-format dump) or psql (plain SQL). */
  tool: Type.String(),
  query: Type.String(),
  /** Rows the query returned; null when the drill failed before the query ran. */
  rows: Nullable(Type.Integer({ minimum: 0 })),
  /** The first row, as psql prints it unaligned (at most 200 characters). */
  firstRow: Nullable(Type.String()),
});
export type DrillDatabase = Static<typeof DrillDatabase>;

export const DrillSummary = record({
  at: Time,
  ok: Type.Boolean(),
  snapshot: Nullable(Type.String()),
  bytes: Nullable(Type.Integer({ minimum: 0 })),
  ms: Nullable(Type.Integer({ minimum: 0 })),
  error: Nullable(Type.String()),
  /** With a policy `drill:`: the scratch-database restore and query; absent for a restore into nothing. */
  database: optional(DrillDatabase),
});
export type DrillSummary = Static<typeof DrillSummary>;

/** One store over the period, from its sessions (the charts of the HTML/PDF report). */
export const StoreHistory = record({
  name: Type.String(),
  id: Type.String(),
  /** Now, measured in the bucket. */
  storedBytes: Count,
  dedupFactor: Type.Number({ minimum: 0 }),
  /** Growth of stored bytes per day over the last 30 days (least squares); null with less than two days of history. */
  bytesPerDay: Nullable(Type.Number()),
  /**
   * At the end of each day of the period from the store's first session: stored bytes written
   * so far, and dedup so far (logical bytes read / new bytes, docs/cli.md "dedup"; null before
   * anything new was written).
   */
  history: Type.Array(record({ day: Type.String(), storedBytes: Count, dedupFactor: Nullable(Type.Number({ minimum: 0 })) })),
});
export type StoreHistory = Static<typeof StoreHistory>;

export const JobValidity = record({
  job: Type.String(),
  policy: Nullable(Type.String()),
  agent: Nullable(Type.String()),
  /** Scheduled fire times in the period (a job without a policy plans nothing). */
  planned: Count,
  runs: Count,
  succeeded: Count,
  failed: Count,
  cancelled: Count,
  /** succeeded / runs; null without runs. */
  successRate: Nullable(Type.Number({ minimum: 0, maximum: 1 })),
  lastGood: Type.Union([record({ snapshot: Type.String(), at: Time, logicalBytes: Count }), Type.Null()]),
  snapshotsKept: Count,
  /** One entry per UTC day of the period, oldest first. */
  days: Type.Array(record({ day: Type.String({ description: 'YYYY-MM-DD (UTC)' }), state: DayState })),
  retention: Type.Array(RetentionCheck),
  verify: record({
    runs: Count,
    lastAt: Nullable(Type.String()),
    lastOk: Type.Union([Type.Boolean(), Type.Null()]),
    findings: Count,
  }),
  drills: record({ runs: Count, failed: Count, last: Type.Union([DrillSummary, Type.Null()]) }),
  /** Everything the report checks holds for the job. */
  ok: Type.Boolean(),
  /** Why not, one line each. */
  problems: Type.Array(Type.String()),
});
export type JobValidity = Static<typeof JobValidity>;

export const ValidityReport = record(
  {
    generatedAt: Time,
    since: Time,
    until: Time,
    server: Type.String(),
    jobs: Type.Array(JobValidity),
    storage: record({
      storedBytes: Count,
      logicalBytes: Count,
      dedupFactor: Type.Number({ minimum: 0 }),
      /** Stored bytes at the end of each day of the period that had sessions, from the session records. */
      history: Type.Array(record({ day: Type.String(), storedBytes: Count })),
      quotaBytes: Nullable(Type.Integer({ minimum: 0 })),
      fillAt: Nullable(Type.String()),
      fillDays: Nullable(Type.Number()),
      bytesPerDay: Nullable(Type.Number()),
      /** Per fingerprint store: its stored bytes and dedup day by day over the period, and its growth trend for the forecast. */
      stores: optional(Type.Array(StoreHistory)),
    }),
    ok: Type.Boolean(),
  },
  { title: 'ValidityReport' },
);
export type ValidityReport = Static<typeof ValidityReport>;

/** A drill's outcome as POST /v1/reports/drills answers it: the job, and the summary without its time. */
export const DrillReply = record({
  drills: Type.Array(record({ job: Type.String(), ...Type.Omit(DrillSummary, ['at']).properties })),
});
export type DrillReply = Static<typeof DrillReply>;

export const ValidityQuery = Type.Object({
  since: optional(Type.String({ pattern: '^[1-9][0-9]{0,3}d$', description: 'the period: a number of days back from now, e.g. 90d (default 90d)' })),
});
