/**
 * Schemas of the records the API answers with. The TypeScript types of these records are
 * derived from them (Static), so the server, the client and the OpenAPI document share
 * one declaration. Each schema describes what the server sends today, field by field:
 * objects are closed (`additionalProperties: false`) so a test catches an answer that
 * drifted from its schema; a field that may be left out is optional, one that is sent as
 * `null` says so. Byte counts are bytes, durations milliseconds, times ISO-8601 UTC.
 */
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';
import { AgentName, Bytes, Count, IsoTime, JobName, PolicyName, RecordId, SnapshotId, SourceKind, SourceStat } from './common.js';
import { RunHooks as RunHooksBody, RunProgress as RunProgressBody } from './requests.js';

const optional = Type.Optional;
/** A closed object: a field the schema does not name is drift. */
const record = <T extends TProperties>(properties: T, options: { title?: string; description?: string } = {}) =>
  Type.Object(properties, { ...options, additionalProperties: false });
const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Ms = (description: string) => Type.Integer({ minimum: 0, description: `${description} (milliseconds)` });
const Text = Type.String();
/** A store's id: 16 random bytes, lower-case hex (as in pack trailers and manifests). */
const StoreId = Type.String({ pattern: '^[0-9a-f]+$', description: "the fingerprint store's id (hex)" });
/** A ratio of bytes to bytes (dedup, compression): 2 decimals. */
const Ratio = (description: string) => Type.Number({ minimum: 0, description });

export const RunState = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
export type RunState = Static<typeof RunState>;

const BackupKind = Type.Union([Type.Literal('full'), Type.Literal('incremental')]);

// --- snapshots and sessions -----------------------------------------------------------

export const SnapshotSummary = record(
  {
    id: SnapshotId,
    key: Type.String({ description: "the manifest's object key in the bucket" }),
    job: JobName,
    source: record({ name: Text, kind: SourceKind }),
    startedAt: IsoTime,
    finishedAt: IsoTime,
    logicalBytes: Type.Integer({ minimum: 0, description: 'length of the source stream (bytes)' }),
    store: StoreId,
  },
  { title: 'SnapshotSummary', description: 'A committed snapshot' },
);
export type SnapshotSummary = Static<typeof SnapshotSummary>;

export const SessionTotals = record(
  {
    bytesRead: Type.Integer({ minimum: 0, description: 'bytes read from the source (the logical stream)' }),
    bytesSent: Type.Integer({ minimum: 0, description: 'bytes of request bodies the server read for this session (fingerprints, references, blobs)' }),
    bytesNew: Type.Integer({ minimum: 0, description: 'raw bytes of the chunks the store did not have' }),
    bytesStored: Type.Integer({ minimum: 0, description: 'bytes the new blobs take in packs (compressed, encrypted)' }),
    chunks: Count,
    chunksNew: Type.Integer({ minimum: 0, description: 'chunks the store did not have' }),
  },
  { title: 'SessionTotals' },
);
export type SessionTotals = Static<typeof SessionTotals>;

/** Store secrets travel to an authorised agent so it can encrypt and fingerprint (base64). */
export const WireStoreSecrets = record(
  {
    dataKey: Type.String({ contentEncoding: 'base64', description: 'the key blobs are encrypted with (base64)' }),
    fingerprintKey: Type.String({ contentEncoding: 'base64', description: 'the BLAKE3 key of fingerprints and the stream hash (base64)' }),
  },
  { title: 'WireStoreSecrets' },
);
export type WireStoreSecrets = Static<typeof WireStoreSecrets>;

/** A chunker spec as JSON (@hoard/chunker's ChunkerSpec; chunker-wire.ts). */
export const WireChunker = Type.Union(
  [
    record({
      kind: Type.Literal('fastcdc'),
      variant: optional(Type.Union([Type.Literal('2016'), Type.Literal('2020')])),
      avgSize: Type.Integer({ minimum: 1, description: 'target average chunk size (bytes)' }),
      minSize: optional(Type.Integer({ minimum: 1, description: 'bytes; default avgSize / 4' })),
      maxSize: optional(Type.Integer({ minimum: 1, description: 'bytes; default min(avgSize * 4, 16 MiB)' })),
      normalization: optional(Type.Integer({ minimum: 0, maximum: 3 })),
      seed: optional(
        Type.Union(
          [
            record({ base64: Type.String({ contentEncoding: 'base64' }) }),
            record({ bigint: Type.String({ pattern: '^\\d+$', description: 'a 64-bit integer in decimal' }) }),
          ],
          { description: "an encrypted store's secret gear-table seed" },
        ),
      ),
    }),
    record({ kind: Type.Literal('fixed'), size: Type.Integer({ minimum: 1, description: 'block size (bytes)' }) }),
  ],
  { title: 'WireChunker' },
);
export type WireChunker = Static<typeof WireChunker>;

/** A compression setting as text (the repository's parseCompression reads it). */
const Compression = (description: string) =>
  Type.String({ pattern: '^(zstd(:([1-9]|1[0-9]))?|lz4|none)$', description: `zstd[:LEVEL] (LEVEL 1-19), lz4 or none: ${description}` });

export const BeginSessionResponse = record(
  {
    session: Type.String({ pattern: '^[0-9a-f]{32}$', description: "the session's id" }),
    store: record(
      {
        id: StoreId,
        name: Text,
        encrypted: Type.Boolean(),
        secrets: optional(WireStoreSecrets),
        compression: optional(Compression('how the agent compresses new blobs for this store; absent from older servers: lz4')),
      },
      { description: 'the fingerprint store the session writes to; secrets only when it is encrypted' },
    ),
    chunker: WireChunker,
    maxChunk: Type.Integer({ minimum: 1, description: "the chunker's largest chunk (bytes)" }),
    limits: record({
      queryFingerprints: Type.Integer({ minimum: 1, description: 'fingerprints per missing query at most' }),
      batchChunks: Type.Integer({ minimum: 1, description: 'chunk references per batch at most' }),
      batchBytes: Type.Integer({ minimum: 1, description: 'bytes of blobs per batch at most' }),
    }),
    idleTimeoutMs: Ms('the session expires when idle this long'),
    parent: nullable(Type.String({ description: "the manifest key of this job and source's previous snapshot" })),
    parentSnapshot: optional(
      record(
        {
          id: SnapshotId,
          kind: SourceKind,
          logicalBytes: Bytes,
          sameStore: Type.Boolean({ description: "whether it is in this session's store (then its chunks may be referred to again)" }),
          sourceStat: optional(SourceStat),
        },
        { description: 'the previous snapshot described for reuse (GET /v1/jobs/J/snapshots/ID/chunks); absent when there is none' },
      ),
    ),
  },
  { title: 'BeginSessionResponse' },
);
export type BeginSessionResponse = Static<typeof BeginSessionResponse>;

export const BatchResponse = record(
  {
    seq: Count,
    duplicate: Type.Boolean({ description: 'the batch had been applied before (a retry after a lost answer): nothing was applied again' }),
    blobsStored: Type.Integer({ minimum: 0, description: 'blobs of the batch the store did not have' }),
    blobsDuplicate: Type.Integer({ minimum: 0, description: 'blobs of the batch the store had already (another session sent them meanwhile)' }),
  },
  { title: 'BatchResponse' },
);
export type BatchResponse = Static<typeof BatchResponse>;

export const CommitResponse = record(
  {
    snapshot: SnapshotSummary,
    totals: SessionTotals,
    dedupRatio: Ratio('logical bytes / new bytes before compression, 2 decimals, at most 1000 (1 for an empty stream)'),
  },
  { title: 'CommitResponse' },
);
export type CommitResponse = Static<typeof CommitResponse>;

export const SessionRecord = record(
  {
    id: RecordId,
    agent: Type.String({ description: "the agent's name, or `admin` for a session an admin token opened" }),
    job: JobName,
    source: Type.String({ description: 'the source name' }),
    store: StoreId,
    startedAt: IsoTime,
    finishedAt: optional(IsoTime),
    state: Type.Union([Type.Literal('running'), Type.Literal('committed'), Type.Literal('failed'), Type.Literal('expired')]),
    ...SessionTotals.properties,
    dedupRatio: Ratio('bytesRead / new bytes before compression, 2 decimals, at most 1000'),
    durationMs: optional(Ms('finishedAt - startedAt')),
    error: optional(Text),
    snapshot: optional(SnapshotId),
  },
  { title: 'SessionRecord', description: 'A backup session (one source streamed by one agent)' },
);
export type SessionRecord = Static<typeof SessionRecord>;

export const SnapshotRecord = record(
  {
    job: JobName,
    id: SnapshotId,
    key: Type.String({ description: "the manifest's object key in the bucket" }),
    source: record({ name: Text, kind: SourceKind }),
    startedAt: IsoTime,
    finishedAt: IsoTime,
    logicalBytes: Bytes,
    store: StoreId,
    sessionId: optional(Type.String({ description: 'the backup session that wrote it, when this server knows (not recorded in the bucket)' })),
    protected: optional(
      Type.Boolean({ description: 'in lists: whether prune keeps it whatever the rules say (a marker in the bucket, protected/<job>/<id>)' }),
    ),
  },
  { title: 'SnapshotRecord', description: 'A committed snapshot, as its manifest describes it' },
);
export type SnapshotRecord = Static<typeof SnapshotRecord>;

// --- runs -------------------------------------------------------------------------------

/** The run's hooks as the server hands them out (the request's schema, closed). */
const RunHooksView = record(RunHooksBody.properties, { description: 'commands the agent runs before and after the sources (bash -o pipefail -c)' });
/** An agent's latest progress report (the request's schema, closed). */
const RunProgressView = record(RunProgressBody.properties, { description: "the agent's latest progress report on the target it is reading" });

/** A restore run as queued: the snapshot is pinned when the run is created. */
export const RestoreRunSpec = record(
  {
    snapshot: Type.String({ pattern: '^[0-9a-f]{16}$', description: "the snapshot's full id (resolved from snapshot/at/source when the run was queued)" }),
    source: Text,
    kind: SourceKind,
    startedAt: IsoTime,
    logicalBytes: Bytes,
    path: Type.String({ description: "the absolute path on the agent's host to write to; for a database restore, the database URL" }),
    database: optional(Type.String({ description: 'a database restore: the database URL (no password) the agent restores the dump into' })),
    force: optional(Type.Boolean({ description: 'replace an existing file; sent only as true (absent: refuse)' })),
    file: optional(Type.String({ description: 'one file of a directory snapshot, relative to the backed-up directory' })),
  },
  { title: 'RestoreRunSpec' },
);
export type RestoreRunSpec = Static<typeof RestoreRunSpec>;

/** An agent's report of a restore run (the run's one target). */
export const RestoreResult = record(
  {
    snapshot: Text,
    path: Text,
    bytes: Type.Integer({ minimum: 0, description: "bytes written (the files' contents for a tree)" }),
    wrote: Type.Union([Type.Literal('stream'), Type.Literal('tree'), Type.Literal('file'), Type.Literal('database')], {
      description: '`stream`: a file or device; `tree`: a directory snapshot as a tree; `file`: one file of it; `database`: a dump into a database',
    }),
    device: optional(Type.Boolean({ description: 'the path was a block device' })),
    files: optional(Count),
    directories: optional(Count),
    symlinks: optional(Count),
  },
  { title: 'RestoreResult' },
);
export type RestoreResult = Static<typeof RestoreResult>;

export const TargetResult = record(
  {
    name: Text,
    ok: Type.Boolean(),
    snapshot: optional(SnapshotSummary),
    totals: optional(SessionTotals),
    dedupRatio: optional(Ratio('logical bytes / new bytes before compression, 2 decimals, at most 1000')),
    files: optional(
      record(
        {
          read: Count,
          unchanged: Type.Integer({ minimum: 0, description: 'files unchanged since the previous snapshot (referred to, not read)' }),
          bytesUnchanged: Type.Integer({ minimum: 0, description: 'bytes of the unchanged files (not read)' }),
          skipped: Type.Integer({ minimum: 0, description: 'entries skipped (sockets, unreadable files)' }),
        },
        { description: 'directory sources: files read, unchanged and skipped' },
      ),
    ),
    restored: optional(RestoreResult),
    image: optional(
      record(
        {
          unchanged: Type.Boolean({
            description: "size, mtime and inode matched the previous snapshot's: its chunks were referred to instead of reading the image",
          }),
          bytesUnchanged: Type.Integer({ minimum: 0, description: 'bytes not read' }),
          previous: optional(Type.String({ description: 'the snapshot whose chunks were referred to' })),
        },
        { description: 'image sources (file:, vm: images; not block devices)' },
      ),
    ),
    error: optional(Text),
    durationMs: Type.Number({ minimum: 0, description: 'milliseconds, as the agent measured them' }),
  },
  {
    title: 'TargetResult',
    description: "One target (source) of a run: the agent's report, with the snapshot and byte counts taken from the server's own session records",
  },
);
export type TargetResult = Static<typeof TargetResult>;

export const RunView = record(
  {
    id: RecordId,
    agent: AgentName,
    job: JobName,
    sources: Type.Array(Type.String({ description: 'a source spec (docs/sources.md)' }), { description: 'empty for a restore run' }),
    state: RunState,
    hooks: optional(RunHooksView),
    full: optional(Type.Boolean({ description: 'read everything again; sent only as true (absent: incremental)' })),
    bandwidth: optional(
      Type.Integer({ minimum: 1, description: "upload cap for this run in bytes per second (the policy's limits.bandwidth); absent: no cap" }),
    ),
    maxConcurrentRuns: optional(
      Type.Integer({
        minimum: 1,
        description:
          'in the claim answer (GET /v1/agent/work) only: how many runs this agent may run at once (the smallest max-concurrent-jobs-per-agent of the policies naming it, default 1)',
      }),
    ),
    restore: optional(RestoreRunSpec),
    createdAt: IsoTime,
    startedAt: optional(IsoTime),
    finishedAt: optional(IsoTime),
    error: optional(Text),
    targets: Type.Array(TargetResult, { description: 'empty until the run finished' }),
    discovered: Type.Array(Type.String(), { description: 'targets this job had never backed up before this run (e.g. a new VM)' }),
    manual: optional(
      Type.Boolean({ description: 'sent only as true: started by hand (hoard run, hoard job run), not by a schedule; manual runs do not prune' }),
    ),
    progress: optional(RunProgressView),
    cancelRequestedAt: optional(IsoTime),
    leaseExpiresAt: optional(IsoTime),
    leaseRenewedAt: optional(IsoTime),
    leaseMs: optional(Ms("in the claim answer only: the server's lease duration; the agent renews every quarter of it")),
  },
  { title: 'RunView', description: 'A run: a backup (or restore) queued for one agent' },
);
export type RunView = Static<typeof RunView>;

export const RunLeaseAnswer = record(
  {
    ok: Type.Literal(true),
    leaseExpiresAt: IsoTime,
    leaseMs: Ms("the server's lease duration; renew every quarter of it"),
    cancel: optional(Type.Boolean({ description: 'an admin cancelled the run: stop it and finish it as cancelled; sent only as true' })),
  },
  { title: 'RunLeaseAnswer' },
);
export type RunLeaseAnswer = Static<typeof RunLeaseAnswer>;

export const RunProgressAnswer = record(
  {
    ok: Type.Literal(true),
    cancel: optional(Type.Boolean({ description: 'an admin cancelled the run: stop it and finish it as cancelled; sent only as true' })),
  },
  { title: 'RunProgressAnswer' },
);
export type RunProgressAnswer = Static<typeof RunProgressAnswer>;

// --- agents and policies ------------------------------------------------------------------

export const AgentView = record(
  {
    name: AgentName,
    createdAt: IsoTime,
    revokedAt: optional(IsoTime),
    lastSeenAt: optional(IsoTime),
    hostname: optional(Type.String({ description: 'as the agent said at its last hello' })),
    version: optional(Type.String({ description: 'as the agent said at its last hello' })),
  },
  { title: 'AgentView', description: 'An agent (never its token, nor the token hash)' },
);
export type AgentView = Static<typeof AgentView>;

const Keep = (rule: string) => optional(Type.Integer({ minimum: 0, description: `keep the newest snapshot of each of the last N ${rule}` }));

/** A policy in its canonical document form (docs/policies.md): kebab-case keys, defaults written out. */
/** Retention rules as a policy file writes them (`retention`, `copy-keep`). */
const RetentionDocument = record({
  'keep-last': optional(Type.Integer({ minimum: 0, description: 'keep the N newest snapshots' })),
  'keep-hourly': Keep('hours'),
  'keep-daily': Keep('days'),
  'keep-weekly': Keep('weeks'),
  'keep-monthly': Keep('months'),
  'keep-yearly': Keep('years'),
  'keep-within': optional(Type.String({ description: 'keep every snapshot this recent, e.g. `2m` or `14d`' })),
});

export const PolicyDocument = record(
  {
    name: PolicyName,
    description: optional(Text),
    sources: Type.Array(
      record({
        agents: Type.Array(AgentName),
        specs: Type.Array(Type.String({ description: 'a source spec; URL passwords shown as ***' })),
        hooks: optional(RunHooksView),
      }),
    ),
    schedule: record({
      timezone: Type.String({ description: 'an IANA time zone' }),
      full: Type.String({ description: 'a cron expression or calendar word' }),
      incremental: optional(Type.String({ description: 'a cron expression or calendar word' })),
    }),
    retention: optional(RetentionDocument),
    store: record({
      scope: Type.Union([Type.Literal('global'), Type.Literal('job')]),
      compression: Compression('as written in the policy'),
      encryption: Type.Boolean(),
    }),
    limits: optional(
      record({
        'max-concurrent-jobs-per-agent': optional(Type.Integer({ minimum: 1 })),
        bandwidth: optional(Type.String({ description: 'as written, e.g. `50MiB/s`' })),
        'run-window': optional(Type.String({ description: 'as written, e.g. `22:00-06:00`' })),
      }),
    ),
    verify: record({
      structure: Type.String({ description: 'a cron expression or calendar word, or `off`' }),
      'read-data': Type.String({ description: 'a cron expression or calendar word, or `off`' }),
      subset: optional(Type.String({ pattern: '%$', description: 'the share of pack data each read-data check reads, e.g. `10%`' })),
    }),
    'copy-to': optional(Type.String({ description: "a copy target of the server's config: each successful run's snapshots are copied there" })),
    'copy-keep': optional(RetentionDocument),
    'alert-after': optional(Type.String({ description: 'a job-overdue notification when a job has no successful backup for this long, e.g. `26h`' })),
    drill: optional(
      record({
        'postgres-url': Type.String({ description: 'the PostgreSQL server the restore drill creates its scratch database on; a password shown as ***' }),
        query: Type.String({ description: 'SQL run in the restored scratch database; it must succeed and return at least one row' }),
      }),
    ),
  },
  { title: 'PolicyDocument' },
);
export type PolicyDocument = Static<typeof PolicyDocument>;

export const PolicyView = record(
  {
    name: PolicyName,
    updatedAt: IsoTime,
    jobs: Type.Array(record({ agent: AgentName, job: JobName }), { description: 'one job per agent the policy names' }),
    timeZone: Type.String({ description: "the policy's time zone (IANA), in which its schedule is written: show nextRuns in it" }),
    nextRuns: Type.Array(record({ at: IsoTime, kind: BackupKind }), {
      description: 'the next scheduled runs (1 in the list, `next` of one policy), as UTC instants',
    }),
    document: PolicyDocument,
    yaml: optional(Type.String({ description: 'GET /v1/policies/NAME only: the policy as YAML, secrets redacted' })),
  },
  { title: 'PolicyView' },
);
export type PolicyView = Static<typeof PolicyView>;

// --- jobs ---------------------------------------------------------------------------------

export const JobSummary = record(
  {
    job: JobName,
    agent: nullable(AgentName),
    policy: nullable(PolicyName),
    store: Type.String({ description: 'the name of the fingerprint store the job writes to (`global`, or a store of its own)' }),
    sources: Type.Array(Type.String({ description: 'a source spec' })),
    lastRun: nullable(
      record({ id: RecordId, state: RunState, at: Type.String({ description: 'when it finished, else started, else was queued (ISO-8601)' }) }),
    ),
    lastSuccess: nullable(record({ id: RecordId, at: IsoTime })),
    nextRun: nullable(record({ at: IsoTime, kind: BackupKind })),
    snapshots: Type.Integer({ minimum: 0, description: 'snapshots kept' }),
    newestSnapshot: nullable(record({ id: SnapshotId, startedAt: IsoTime, logicalBytes: Bytes })),
  },
  { title: 'JobSummary' },
);
export type JobSummary = Static<typeof JobSummary>;

export const HistoryKind = Type.Union(
  [
    Type.Literal('full'),
    Type.Literal('incremental'),
    Type.Literal('manual'),
    Type.Literal('verify'),
    Type.Literal('prune'),
    Type.Literal('gc'),
    Type.Literal('copy'),
    Type.Literal('drill'),
  ],
  {
    description: "runs: `full` or `incremental` (a policy's schedule) or `manual` (an admin's run); tasks: their kind",
  },
);
export type HistoryKind = Static<typeof HistoryKind>;

export const HistoryEntry = record(
  {
    type: Type.Union([Type.Literal('run'), Type.Literal('task')]),
    id: RecordId,
    kind: HistoryKind,
    full: optional(Type.Boolean({ description: 'runs only: the run read everything again' })),
    state: Type.Union(RunState.anyOf, { description: 'a run state; a task is running, succeeded or failed' }),
    startedAt: Type.String({ description: 'when it started (a run that never started: when it was queued); ISO-8601' }),
    finishedAt: nullable(IsoTime),
    durationMs: nullable(Type.Integer({ description: 'milliseconds' })),
    bytesRead: nullable(Bytes),
    bytesNew: nullable(Bytes),
    bytesStored: nullable(Bytes),
    dedupRatio: nullable(Ratio("logical bytes of the run's snapshots / new bytes before compression, 2 decimals, at most 1000; null for tasks")),
    snapshots: Type.Array(SnapshotId),
    error: nullable(Text),
    summary: nullable(Type.String({ description: 'tasks: one line of what it found or did' })),
  },
  { title: 'HistoryEntry' },
);
export type HistoryEntry = Static<typeof HistoryEntry>;

// --- the server's reports -------------------------------------------------------------------

export const StoreReport = record(
  {
    name: Text,
    id: StoreId,
    scope: Type.String({ description: '`global`, or `job:NAME` for a store of one job' }),
    encrypted: Type.Boolean(),
    entries: Type.Integer({ minimum: 0, description: 'fingerprints in the in-memory index' }),
    memoryBytes: Type.Integer({ minimum: 0, description: 'bytes the in-memory index takes' }),
    lookups: Type.Integer({ minimum: 0, description: 'fingerprint lookups since the server started' }),
    lookupsPerSecond: Type.Integer({ minimum: 0, description: 'lookups per second over the last few seconds' }),
    packsWritten: Type.Integer({ minimum: 0, description: 'packs this server process wrote since it started' }),
    storedBytes: Type.Integer({ minimum: 0, description: 'bytes of the packs this server process wrote since it started' }),
  },
  { title: 'StoreReport' },
);
export type StoreReport = Static<typeof StoreReport>;

const Trend = record(
  {
    bytesPerDay: Type.Integer({ description: 'growth of stored bytes per day (least squares over the daily points; negative when shrinking)' }),
    r2: Type.Number({ description: 'coefficient of determination of the fit, 0..1' }),
    days: Type.Integer({ minimum: 0, description: 'days of history the line was fitted to' }),
  },
  { description: 'the growth trend; null with fewer than two days of history' },
);

export const CapacityReport = record(
  {
    generatedAt: IsoTime,
    jobs: Type.Array(
      record({
        job: JobName,
        agent: nullable(AgentName),
        policy: nullable(PolicyName),
        store: Type.String({ description: 'the name of the store the job writes to' }),
        lastSuccess: nullable(record({ run: RecordId, at: IsoTime })),
        lastFailure: nullable(record({ run: RecordId, at: IsoTime, error: nullable(Text) })),
        snapshotsKept: Count,
        logicalBytesKept: Type.Integer({ minimum: 0, description: "sum of the kept snapshots' logical bytes" }),
        newestLogicalBytes: Type.Integer({ minimum: 0, description: 'logical bytes of the newest snapshot' }),
        storedBytesWritten: Type.Integer({ minimum: 0, description: "bytes the job's sessions added to its store (GC may have freed some since)" }),
        dedupFactor: nullable(Ratio('logicalBytesKept / storedBytesWritten, 2 decimals; null when nothing was stored')),
        classic: record(
          {
            inputs: record({
              base: Type.Integer({ minimum: 0, description: 'logical bytes of the newest full backup' }),
              fullsKept: Count,
              incremental: Type.Integer({ minimum: 0, description: 'mean logical bytes new per incremental run' }),
              incrementalsPerFull: Type.Number({ minimum: 0, description: 'incremental backups kept per full kept' }),
              growth: Type.Number({ minimum: -1, description: "annual growth rate of the full backup's size (0.1 = 10 % a year)" }),
              years: Type.Number({ minimum: 0, description: 'planning horizon (years)' }),
              compression: Type.Number({ minimum: 0, description: 'stored bytes per new byte (< 1 compresses)' }),
            }),
            bytes: Type.Integer({ description: "the classic formula's estimate (bytes)" }),
          },
          { description: 'the classic planning formula with inputs measured from this job' },
        ),
      }),
    ),
    stores: Type.Array(
      record({
        name: Text,
        id: StoreId,
        scope: Type.String({ description: '`global` or `job:NAME`' }),
        snapshots: Count,
        logicalBytes: Bytes,
        uniqueBytes: Type.Integer({ minimum: 0, description: 'raw bytes of the distinct chunks' }),
        storedBytes: Type.Integer({ minimum: 0, description: 'bytes in packs (measured from the index segments)' }),
        dedupFactor: Ratio('logicalBytes / uniqueBytes, 2 decimals'),
        compressionRatio: Ratio('uniqueBytes / storedBytes, 2 decimals'),
        trend: nullable(Trend),
      }),
    ),
    capacity: record({
      storedBytes: Type.Integer({ minimum: 0, description: "every store's stored bytes (measured)" }),
      logicalBytes: Bytes,
      dedupFactor: Ratio('2 decimals'),
      trendDays: Type.Integer({ minimum: 1, description: 'days of history the trend looks at' }),
      history: Type.Array(
        record({
          day: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'UTC day' }),
          at: Type.Integer({ description: 'the end of that day, or now for today (milliseconds since the epoch)' }),
          cumulative: Type.Integer({ minimum: 0, description: 'bytes stored by every session up to `at`' }),
        }),
      ),
      trend: nullable(Trend),
      quotaBytes: nullable(Bytes),
      fill: record({
        status: Type.Union([Type.Literal('full'), Type.Literal('date'), Type.Literal('never'), Type.Literal('no-trend'), Type.Literal('no-quota')]),
        at: nullable(IsoTime),
        days: nullable(Type.Number({ minimum: 0, description: 'days from now, 1 decimal' })),
      }),
      growthYears: Type.Number({ minimum: 0 }),
      classicBytes: Type.Integer({ description: "sum of the jobs' classic estimates (bytes)" }),
      classicOverMeasured: nullable(Type.Number({ minimum: 0, description: 'classicBytes / storedBytes, 2 decimals' })),
    }),
  },
  { title: 'CapacityReport' },
);
export type CapacityReport = Static<typeof CapacityReport>;

// --- maintenance ----------------------------------------------------------------------------

const Counted = (description: string) => Type.Integer({ minimum: 0, description });

export const GcReport = record(
  {
    dryRun: Type.Boolean(),
    startedAt: IsoTime,
    graceMs: Ms('how old a dead object must be before it is condemned, and how long a condemned one is kept'),
    repackThreshold: Type.Number({ minimum: 0, maximum: 1, description: 'a pack is repacked when more than this share of its stored bytes is dead' }),
    snapshots: Count,
    packs: record({
      total: Counted('packs in the bucket at the start'),
      condemned: Counted('condemned by this run: nothing refers to them (a later run deletes them)'),
      repacked: Counted('old packs whose live blobs were copied into new ones (condemned too)'),
      written: Counted('new packs written by repacking'),
      deleted: Counted('condemned earlier and deleted now'),
      revived: Counted('condemned earlier and referred to again: indexed again'),
      waiting: Counted('condemned and still within their grace period'),
    }),
    pages: record({ total: Count, live: Count, condemned: Count, deleted: Count, waiting: Count }, { description: 'chunk-list pages' }),
    segments: record({ read: Count, written: Count, deleted: Count }, { description: 'index segments' }),
    blobs: record({ live: Count, dead: Count }),
    bytes: record(
      {
        before: Counted('stored bytes of all packs at the start'),
        after: Counted('... at the end (projected in a dry run)'),
        deleted: Bytes,
        written: Bytes,
        live: Counted('stored bytes of referenced blobs in indexed packs'),
        dead: Bytes,
      },
      { description: 'stored bytes' },
    ),
    locked: Type.Optional(
      record(
        {
          packs: Counted('dead or mostly dead packs kept because S3 Object Lock still protects them or their index segments'),
          pages: Counted('dead chunk-list pages kept because S3 Object Lock still protects them'),
          firstUnlock: Type.Optional(IsoTime),
          lastUnlock: Type.Optional(IsoTime),
          extended: Type.Optional(Counted('referenced packs and pages whose lock this run extended (at most every quarter of the lock period)')),
        },
        { description: 'kept by S3 Object Lock: a gc after lastUnlock can remove them all (0 without Object Lock)' },
      ),
    ),
    missingChunks: Counted('chunk references no pack holds: snapshots already damaged (run verify)'),
    skipped: Type.Array(record({ pack: Text, problem: Text }), { description: 'packs not repacked because of damage (kept as they are)' }),
    durationMs: Ms('how long the run took'),
  },
  { title: 'GcReport' },
);
export type GcReport = Static<typeof GcReport>;

export const VerifyReport = record(
  {
    snapshots: Count,
    pages: Counted('chunk-list page references checked'),
    segments: Count,
    packs: Counted('packs named by the segments checked (trailer against segment)'),
    packsRead: Counted('packs whose data was read (readData)'),
    blobsChecked: Count,
    bytesRead: Counted('bytes of pack data read (readData)'),
    findings: Type.Array(
      record({
        snapshot: optional(Type.String({ description: 'manifest key of the affected snapshot, when the problem concerns one' })),
        object: Type.String({ description: 'key of the damaged or missing object' }),
        offset: optional(Type.Integer({ minimum: 0, description: 'byte offset: in the pack for blobs and trailer entries, in the stream for chunks' })),
        problem: Text,
      }),
    ),
    unreferencedPacks: Type.Array(Type.String(), {
      description: 'packs no index segment names: left by interrupted (or running) backups; not an error, GC removes them',
    }),
    notes: Type.Array(Type.String(), { description: 'what was and was not checked' }),
    ok: Type.Boolean(),
  },
  { title: 'VerifyReport' },
);
export type VerifyReport = Static<typeof VerifyReport>;

/** One job's prune by its policy's retention, as POST /v1/prune answers it. */
export const PruneResult = record(
  {
    policy: PolicyName,
    job: JobName,
    dryRun: Type.Boolean(),
    kept: Count,
    forgotten: Count,
    snapshots: Type.Array(
      record({
        id: SnapshotId,
        source: Text,
        startedAt: IsoTime,
        keep: Type.Boolean(),
        reasons: Type.Array(Type.String(), { description: 'the rules that keep it (`daily 2026-11-20`, `last`, `protected`, ...); empty when forgotten' }),
      }),
      { description: 'every snapshot considered, newest first within each source' },
    ),
  },
  { title: 'PruneResult' },
);
export type PruneResult = Static<typeof PruneResult>;

// --- the agent's finish report -----------------------------------------------------------

/**
 * An agent's report at the end of its run (POST /v1/runs/ID/finish): the target records a
 * run view shows, so it lives with them (requests.ts cannot import this module: it imports
 * requests.ts).
 */
export const FinishRunBody = Type.Object({
  state: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]),
  // The record the run view shows (closed: an agent cannot store fields of its own);
  // snapshots and byte counts are checked against the server's session records.
  targets: Type.Array(TargetResult, { maxItems: 10_000 }),
  error: optional(Type.String({ maxLength: 8192 })),
});
