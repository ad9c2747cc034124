/**
 * Which fields a reply record has, as plain data: the part of its TypeBox schema that a
 * `--json` printer needs to write every field, absent ones as null (the CLI's withNulls),
 * without loading TypeBox (route-heads.ts says why). Each shape is the schema's
 * `properties` / `items` nesting with everything else left out (a nullable record as the
 * record); test/client-tables.test.ts checks it against the schema in replies.ts.
 */

/** A record's fields (`properties`), an array's element (`items`), or a plain value (neither). */
export interface RecordShape {
  readonly properties?: Readonly<Record<string, RecordShape>>;
  readonly items?: RecordShape;
}

const LEAF: RecordShape = {};
const record = (properties: Record<string, RecordShape>): RecordShape => ({ properties });
const list = (items: RecordShape): RecordShape => ({ items });

/** replySchemas.RunView: what `hoard run --json` and `hoard job run --json` print. */
export const RUN_VIEW_SHAPE: RecordShape = record({
  id: LEAF,
  agent: LEAF,
  job: LEAF,
  sources: list(LEAF),
  state: LEAF,
  hooks: record({
    pre: LEAF,
    post: LEAF,
  }),
  full: LEAF,
  bandwidth: LEAF,
  maxConcurrentRuns: LEAF,
  restore: record({
    snapshot: LEAF,
    source: LEAF,
    kind: LEAF,
    startedAt: LEAF,
    logicalBytes: LEAF,
    path: LEAF,
    database: LEAF,
    force: LEAF,
    file: LEAF,
  }),
  createdAt: LEAF,
  startedAt: LEAF,
  finishedAt: LEAF,
  error: LEAF,
  targets: list(
    record({
      name: LEAF,
      ok: LEAF,
      snapshot: record({
        id: LEAF,
        key: LEAF,
        job: LEAF,
        source: record({
          name: LEAF,
          kind: LEAF,
        }),
        startedAt: LEAF,
        finishedAt: LEAF,
        logicalBytes: LEAF,
        store: LEAF,
      }),
      totals: record({
        bytesRead: LEAF,
        bytesSent: LEAF,
        bytesNew: LEAF,
        bytesStored: LEAF,
        chunks: LEAF,
        chunksNew: LEAF,
      }),
      dedupRatio: LEAF,
      files: record({
        read: LEAF,
        unchanged: LEAF,
        bytesUnchanged: LEAF,
        skipped: LEAF,
      }),
      restored: record({
        snapshot: LEAF,
        path: LEAF,
        bytes: LEAF,
        wrote: LEAF,
        device: LEAF,
        files: LEAF,
        directories: LEAF,
        symlinks: LEAF,
      }),
      image: record({
        unchanged: LEAF,
        bytesUnchanged: LEAF,
        previous: LEAF,
      }),
      error: LEAF,
      durationMs: LEAF,
    }),
  ),
  discovered: list(LEAF),
  manual: LEAF,
  progress: record({
    target: LEAF,
    bytesRead: LEAF,
    bytesTotal: LEAF,
    bytesSent: LEAF,
    bytesNew: LEAF,
  }),
  cancelRequestedAt: LEAF,
  leaseExpiresAt: LEAF,
  leaseRenewedAt: LEAF,
  leaseMs: LEAF,
});
