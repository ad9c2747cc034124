/** `hoard stats --repo R [--json]` */
import { formatBytes } from '@hoard/chunker';
import { describeScope, repositoryStats } from '@hoard/repository';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';

export interface StatsCommandOptions extends RepoOptions {
  json?: boolean;
}

export async function runStats(options: StatsCommandOptions, out: (line: string) => void): Promise<void> {
  const repo = await openRepository(options, false);
  const stats = await repositoryStats(repo);
  if (options.json) {
    out(JSON.stringify({ repository: repo.location, encrypted: repo.encrypted, ...stats }));
    return;
  }
  const ratio = (v: number) => (Number.isFinite(v) && v > 0 ? `${v.toFixed(2)}x` : '-');
  out(`repository ${repo.config.id} at ${repo.location}${repo.encrypted ? ' (encrypted)' : ''}`);
  out(
    renderTable(
      ['store', 'scope', 'snapshots', 'logical', 'unique', 'stored', 'chunks', 'packs', 'dedup', 'compression'],
      stats.stores.map((s) => [
        s.name,
        describeScope(s.scope),
        String(s.snapshots),
        formatBytes(s.logicalBytes),
        formatBytes(s.uniqueBytes),
        formatBytes(s.storedBytes),
        String(s.chunks),
        String(s.packs),
        ratio(s.dedupFactor),
        ratio(s.compressionRatio),
      ]),
    ),
  );
}
