/** `hoard stats --repo R [--json]` */
import { formatBytes } from '@hoard/chunker';
import { describeScope, repositoryStats, type RepositoryStats } from '@hoard/repository';
import { formatDedup, formatRatio } from '../dedup.js';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';

export interface StatsCommandOptions extends RepoOptions {
  json?: boolean;
}

/** The figures as --json prints them: a store's scope is {kind, job}, job null for the global store. */
export function statsJson(stats: RepositoryStats): RepositoryStats {
  return {
    ...stats,
    stores: stats.stores.map((s) => ({
      ...s,
      scope: { kind: s.scope.kind, job: s.scope.kind === 'job' ? s.scope.job : null } as RepositoryStats['stores'][number]['scope'],
    })),
  };
}

export async function runStats(options: StatsCommandOptions, out: (line: string) => void): Promise<void> {
  const repo = await openRepository(options, false);
  const stats = await repositoryStats(repo);
  if (options.json) {
    out(JSON.stringify({ repository: repo.location, encrypted: repo.encrypted, ...statsJson(stats) }));
    return;
  }
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
        formatDedup(s.logicalBytes, s.uniqueBytes),
        formatRatio(s.uniqueBytes, s.storedBytes),
      ]),
    ),
  );
}
