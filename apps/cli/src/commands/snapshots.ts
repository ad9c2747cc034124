/** `hoard snapshots --repo R [--job J] [--source S] [--since T] [--until T] [--json]` (with --server: remote.ts) */
import { formatBytes } from '@hoard/chunker';
import { validateJobName } from '@hoard/repository/manifest';
import type { RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';
import { localTime, parseTime } from '../time.js';

export interface SnapshotsCommandOptions extends RepoOptions {
  job?: string;
  /** Only snapshots of this source name. */
  source?: string;
  /** Only snapshots that started at or after this time. */
  since?: string;
  /** Only snapshots that started before this time. */
  until?: string;
  json?: boolean;
}

/** Resolves to false when a manifest is damaged (listed without it, exit 3). */
export async function runSnapshots(options: SnapshotsCommandOptions, out: (line: string) => void): Promise<boolean> {
  if (options.job !== undefined) validateJobName(options.job);
  // The server's semantics (its catalog's [since, until)): since inclusive, until exclusive, by start time.
  const since = options.since !== undefined ? parseTime(options.since, '--since').getTime() : undefined;
  const until = options.until !== undefined ? parseTime(options.until, '--until').getTime() : undefined;
  // The repository's modules load here, not with this file: `snapshots --server` prints with snapshotTable too.
  const { openRepository } = await import('../repo-location.js');
  const repo = await openRepository(options, false);
  const marked = await repo.protectedSnapshots(options.job);
  let damaged = 0;
  const snapshots = (
    await repo.snapshots(options.job, {
      onDamaged: (_key, err) => {
        damaged++;
        process.stderr.write(`hoard: warning: ${err.message}; it is not listed (exit 3; \`hoard repair\` lists what is lost)\n`);
      },
    })
  ).filter((s) => {
    const t = Date.parse(s.meta.startedAt);
    return (options.source === undefined || s.meta.source.name === options.source) && (since === undefined || t >= since) && (until === undefined || t < until);
  });
  if (options.json) {
    out(
      JSON.stringify(
        snapshots.map((s) =>
          snapshotJson({
            id: s.id,
            key: s.key,
            job: s.meta.job,
            source: s.meta.source,
            startedAt: s.meta.startedAt,
            finishedAt: s.meta.finishedAt,
            logicalBytes: s.meta.logicalBytes,
            store: s.meta.store,
            chunks: s.meta.chunkCount,
            streamHash: s.meta.streamHash,
            parent: s.meta.parent,
            protected: marked.has(s.key),
          }),
        ),
      ),
    );
    return damaged === 0;
  }
  if (snapshots.length === 0) {
    const filtered = options.source !== undefined || since !== undefined || until !== undefined;
    out(
      filtered
        ? 'no snapshots match'
        : options.job
          ? `job ${options.job} has no snapshots${damaged > 0 ? ' that can be read' : ''}`
          : damaged > 0
            ? 'no readable snapshots'
            : 'no snapshots yet',
    );
    return damaged === 0;
  }
  out(
    snapshotTable(
      snapshots.map((s) => ({
        id: s.id,
        job: s.meta.job,
        startedAt: s.meta.startedAt,
        logicalBytes: s.meta.logicalBytes,
        source: s.meta.source,
        protected: marked.has(s.key),
      })),
    ),
  );
  return damaged === 0;
}

/** The snapshot list as a table, with --repo and --server alike; `protected` null: not known (a server from before protection in lists). */
export function snapshotTable(
  rows: { id: string; job: string; startedAt: string; logicalBytes: number; source: { name: string; kind: string }; protected: boolean | null }[],
): string {
  return renderTable(
    ['id', 'job', 'started (local)', 'size', 'protected', 'source'],
    rows.map((s) => [
      s.id,
      s.job,
      localTime(s.startedAt),
      formatBytes(s.logicalBytes),
      s.protected === null ? '?' : s.protected ? 'yes' : '-',
      `${s.source.name} (${s.source.kind})`,
    ]),
  );
}

/**
 * One snapshot in `hoard snapshots --json`, with --repo and with --server alike: what the
 * server's catalog does not hold (chunks, streamHash, parent) is null there; `protected`
 * is null from a server that does not say.
 */
export function snapshotJson(s: {
  id: string;
  key: string;
  job: string;
  source: { name: string; kind: string };
  startedAt: string;
  finishedAt: string;
  logicalBytes: number;
  store: string;
  chunks?: number;
  streamHash?: string;
  parent?: string | null;
  protected?: boolean;
}): Record<string, unknown> {
  return {
    id: s.id,
    key: s.key,
    job: s.job,
    source: { name: s.source.name, kind: s.source.kind },
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    logicalBytes: s.logicalBytes,
    store: s.store,
    chunks: s.chunks ?? null,
    streamHash: s.streamHash ?? null,
    parent: s.parent ?? null,
    protected: s.protected ?? null,
  };
}
