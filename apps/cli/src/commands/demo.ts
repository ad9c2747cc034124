/**
 * `hoard demo`: a real backup series and a point-in-time restore, on data it makes itself.
 * Creates a repository in a temporary directory, backs up 4 days of a generated VM image
 * (job `vm`) and 4 days of a generated SQL dump (job `db`), then restores the dump as it
 * was on day 2 by time (`--at`) and checks it byte for byte against the generator.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoSeries, type DataSeries } from '@hoard/bench-data';
import { backup, FileSink, FsObjectStore, Repository, repositoryStats, restore, type SourceKind } from '@hoard/repository';
import { dedupFactor, formatDedup, formatRatio } from '../dedup.js';
import { statsJson } from './stats.js';

const MiB = 1 << 20;

export interface DemoDay {
  job: string;
  day: number;
  snapshot: string;
  logicalBytes: number;
  newBytes: number;
  storedBytes: number;
  zeroBytes: number;
  cumulativeLogicalBytes: number;
  cumulativeNewBytes: number;
  cumulativeStoredBytes: number;
  /** cumulativeLogicalBytes / cumulativeNewBytes (dedup.ts); null while nothing was new. */
  cumulativeDedupRatio: number | null;
  seconds: number;
}

export interface DemoRestore {
  job: string;
  at: string;
  snapshot: string;
  bytes: number;
  seconds: number;
  identical: boolean;
}

async function sha256(stream: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const piece of stream) h.update(piece);
  return h.digest('hex');
}

export async function runDemo(options: { json: boolean; keep?: boolean; out: (s: string) => void }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-demo-'));
  try {
    const repo = await Repository.init(await FsObjectStore.open(join(dir, 'repo'), { create: true }));
    const { vm, dump } = demoSeries();
    const plan: Array<[DataSeries, string, SourceKind, string]> = [
      [vm, 'vm', 'file', 'web-01.img'],
      [dump, 'db', 'stream', 'pg_dump shop'],
    ];
    const days: DemoDay[] = [];
    const started = new Map<string, string[]>();
    if (!options.json) {
      options.out(
        `hoard demo: backing up ${vm.days} days of a ${vm.dayBytes(0) / MiB} MiB VM image and of a ~${Math.round(dump.dayBytes(0) / MiB)} MiB SQL dump into ${repo.location}\n`,
      );
      options.out('job  day  snapshot          size MiB  new MiB  stored MiB  zero MiB  dedup so far  seconds');
    }
    for (const [series, job, kind, name] of plan) {
      let logical = 0;
      let fresh = 0;
      let stored = 0;
      for (let day = 0; day < series.days; day++) {
        const result = await backup(repo, { stream: series.day(day), name, kind, expectedBytes: series.dayBytes(day) }, { job });
        logical += result.bytesRead;
        fresh += result.bytesNew;
        stored += result.bytesStored;
        started.set(job, [...(started.get(job) ?? []), result.snapshot.meta.startedAt]);
        const row: DemoDay = {
          job,
          day,
          snapshot: result.snapshot.id,
          logicalBytes: result.bytesRead,
          newBytes: result.bytesNew,
          storedBytes: result.bytesStored,
          zeroBytes: result.bytesZero,
          cumulativeLogicalBytes: logical,
          cumulativeNewBytes: fresh,
          cumulativeStoredBytes: stored,
          cumulativeDedupRatio: dedupFactor(logical, fresh),
          seconds: result.durationMs / 1000,
        };
        days.push(row);
        if (!options.json) {
          options.out(
            [
              job.padEnd(3),
              String(day).padStart(4),
              row.snapshot.padEnd(16),
              (row.logicalBytes / MiB).toFixed(1).padStart(9),
              (row.newBytes / MiB).toFixed(1).padStart(7),
              (row.storedBytes / MiB).toFixed(1).padStart(10),
              (row.zeroBytes / MiB).toFixed(1).padStart(8),
              formatDedup(logical, fresh).padStart(12),
              row.seconds.toFixed(2).padStart(7),
            ].join('  '),
          );
        }
      }
    }

    // Point in time: "the database as it was just after the day-2 backup started".
    const at = new Date(Date.parse(started.get('db')![1]) + 1);
    const snapshot = await repo.findSnapshot('db', { at });
    const target = join(dir, 'db-restored.sql');
    const restored = await restore(repo, snapshot, await FileSink.create(target));
    const identical = (await sha256([await readFile(target)])) === (await sha256(dump.day(1)));
    const pit: DemoRestore = {
      job: 'db',
      at: at.toISOString(),
      snapshot: snapshot.id,
      bytes: restored.bytesWritten,
      seconds: restored.durationMs / 1000,
      identical,
    };
    const stats = await repositoryStats(repo);
    if (options.json) {
      options.out(JSON.stringify({ repository: options.keep ? repo.location : null, days, restore: pit, stats: statsJson(stats) }, null, 2));
    } else {
      options.out(
        `\nrestore --at ${pit.at}: snapshot ${pit.snapshot} (day 1 of db), ${(pit.bytes / MiB).toFixed(1)} MiB in ${pit.seconds.toFixed(2)} s, ` +
          `${identical ? 'byte-identical to the day-1 dump' : 'DIFFERENT from the day-1 dump'}`,
      );
      for (const s of stats.stores) {
        options.out(
          `store ${s.name}: ${(s.logicalBytes / MiB).toFixed(0)} MiB backed up, ${(s.storedBytes / MiB).toFixed(1)} MiB stored in ${s.packs} packs ` +
            `(dedup ${formatDedup(s.logicalBytes, s.uniqueBytes)}, compression ${formatRatio(s.uniqueBytes, s.storedBytes)})`,
        );
      }
      if (options.keep) options.out(`\nthe repository is kept at ${repo.location}; try: hoard snapshots --repo ${join(dir, 'repo')}`);
    }
    if (!identical) throw new Error('the point-in-time restore did not match the source');
  } finally {
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}
