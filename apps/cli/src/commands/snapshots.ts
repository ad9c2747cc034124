/** `hoard snapshots --repo R [--job J] [--json]` */
import { formatBytes } from '@hoard/chunker';
import { validateJobName } from '@hoard/repository';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';

export interface SnapshotsCommandOptions extends RepoOptions {
  job?: string;
  json?: boolean;
}

export async function runSnapshots(options: SnapshotsCommandOptions, out: (line: string) => void): Promise<void> {
  if (options.job !== undefined) validateJobName(options.job);
  const repo = await openRepository(options, false);
  const snapshots = await repo.snapshots(options.job, {
    onDamaged: (key, err) => process.stderr.write(`hoard: warning: ${err.message}; it is not listed (run \`hoard verify\`)\n`),
  });
  if (options.json) {
    out(
      JSON.stringify(
        snapshots.map((s) => ({
          id: s.id,
          key: s.key,
          job: s.meta.job,
          source: s.meta.source,
          started_at: s.meta.startedAt,
          finished_at: s.meta.finishedAt,
          logical_bytes: s.meta.logicalBytes,
          chunks: s.meta.chunkCount,
          stream_hash: s.meta.streamHash,
          parent: s.meta.parent,
          store: s.meta.store,
        })),
      ),
    );
    return;
  }
  if (snapshots.length === 0) {
    out(options.job ? `job ${options.job} has no snapshots` : 'no snapshots yet');
    return;
  }
  out(
    renderTable(
      ['id', 'job', 'started (local)', 'size', 'source'],
      snapshots.map((s) => [s.id, s.meta.job, localTime(s.meta.startedAt), formatBytes(s.meta.logicalBytes), `${s.meta.source.name} (${s.meta.source.kind})`]),
    ),
  );
}

export function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
