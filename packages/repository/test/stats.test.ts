import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsObjectStore, Repository, backup, listAll, repositoryStats, type BackupResult } from '../dist/index.js';
import { generate, pieces } from './fixtures/test-data.mjs';

const SCRYPT = { N: 1024, r: 8, p: 1 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-stats-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function backUp(repo: Repository, seed: number, size: number, job: string, store?: string): Promise<BackupResult> {
  const data = generate(seed, size);
  return backup(repo, { stream: pieces(data), name: `disk-${seed}`, kind: 'file', expectedBytes: size }, { job, store, workers: 1 });
}

const sum = (results: BackupResult[], field: 'bytesRead' | 'bytesNew' | 'bytesStored' | 'chunksNew' | 'packs') => results.reduce((n, r) => n + r[field], 0);

describe('repositoryStats', () => {
  for (const encrypted of [false, true]) {
    it(`matches what the backups reported, per store and in total${encrypted ? ' (encrypted, opened without the passphrase)' : ''}`, async () => {
      const passphrase = encrypted ? 'stats passphrase' : undefined;
      const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
      const repo = await Repository.init(objects, { passphrase, packBytes: 4 << 20, scryptCost: SCRYPT });
      const global = [
        await backUp(repo, 1, 9 << 20, 'vm'),
        await backUp(repo, 1, 9 << 20, 'vm'), // unchanged: all dedup
        await backUp(repo, 2, 7 << 20, 'db'),
      ];
      const isolated = [await backUp(repo, 1, 9 << 20, 'tenant', 'tenant-store'), await backUp(repo, 3, 3 << 20, 'tenant', 'tenant-store')];
      expect(global[1].bytesNew).toBe(0);

      const stats = await repositoryStats(await Repository.open(objects));
      expect(stats.skipped).toEqual([]);
      expect(stats.stores.map((s) => s.name)).toEqual(['global', 'tenant-store']);
      for (const [s, results] of [
        [stats.stores[0], global],
        [stats.stores[1], isolated],
      ] as const) {
        expect(s.snapshots).toBe(results.length);
        expect(s.logicalBytes).toBe(sum(results, 'bytesRead'));
        expect(s.uniqueBytes).toBe(sum(results, 'bytesNew'));
        expect(s.storedBytes).toBe(sum(results, 'bytesStored'));
        expect(s.chunks).toBe(sum(results, 'chunksNew'));
        expect(s.packs).toBe(sum(results, 'packs'));
        expect(s.dedupFactor).toBeCloseTo(s.logicalBytes / s.uniqueBytes, 10);
        expect(s.compressionRatio).toBeCloseTo(s.uniqueBytes / s.storedBytes, 10);
      }
      // Stores do not share chunks (invariant 5): the tenant store stored seed 1 again.
      expect(isolated[0].bytesNew).toBeGreaterThan(0);
      expect(stats.stores[1].scope).toEqual({ kind: 'job', job: 'tenant' });
      expect(stats.stores[0].dedupFactor).toBeGreaterThan(1.5);

      const all = [...global, ...isolated];
      let segments = 0;
      for await (const _ of listAll(objects, 'index/')) segments++;
      expect(stats.totals).toMatchObject({
        stores: 2,
        segments,
        snapshots: 5,
        logicalBytes: sum(all, 'bytesRead'),
        uniqueBytes: sum(all, 'bytesNew'),
        storedBytes: sum(all, 'bytesStored'),
        chunks: sum(all, 'chunksNew'),
        packs: sum(all, 'packs'),
      });
      expect(stats.totals.dedupFactor).toBeCloseTo(stats.totals.logicalBytes / stats.totals.uniqueBytes, 10);
    });
  }

  it('an empty repository has zero figures and ratios of 0', async () => {
    const objects = await FsObjectStore.open(join(dir, 'empty'), { create: true });
    const stats = await repositoryStats(await Repository.init(objects, { packBytes: 4 << 20 }));
    expect(stats.stores).toHaveLength(1);
    expect(stats.totals).toMatchObject({
      stores: 1,
      segments: 0,
      snapshots: 0,
      logicalBytes: 0,
      uniqueBytes: 0,
      storedBytes: 0,
      chunks: 0,
      packs: 0,
      dedupFactor: 0,
      compressionRatio: 0,
    });
  });
});
