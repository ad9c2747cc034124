/**
 * Packs written whole (before streamed packs, or by a store without stageObject such as
 * S3) and packs streamed into a local store are one format: a repository written the old
 * way is read, deduplicated against and extended by a streaming backup, and every
 * snapshot restores byte for byte and verifies with its data.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, FsObjectStore, Repository, verify, type ObjectStore } from '../dist/index.js';
import { restored } from './restored.js';

const MiB = 1024 * 1024;

async function* pieces(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += 256 * 1024) yield bytes.subarray(o, o + 256 * 1024);
}

/** The same store without stageObject: packs go whole through putIfAbsent, as before streaming. */
function wholePacks(store: FsObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'stageObject') return undefined;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-streamed-packs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('whole and streamed packs', () => {
  it('a streaming backup reads and deduplicates against packs written whole, and both restore', async () => {
    const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
    await Repository.init(objects, { packBytes: 4 * MiB });
    const first = randomBytes(10 * MiB);
    const second = Buffer.concat([first, randomBytes(3 * MiB)]);
    const options = { job: 'db', chunking: 'db-dump' as const, workers: 0 };

    const old = await backup(await Repository.open(wholePacks(objects)), { stream: pieces(first), name: 'src', kind: 'stream' }, options);
    expect(old.packs).toBeGreaterThanOrEqual(3);
    const streamed = await backup(await Repository.open(objects), { stream: pieces(second), name: 'src', kind: 'stream' }, options);
    // Only the appended 3 MiB (and the chunk at the seam) are new: the old packs were used.
    expect(streamed.bytesNew).toBeLessThan(4 * MiB);
    expect(streamed.packs).toBeGreaterThanOrEqual(1);

    expect((await restored(objects, old.snapshot)).equals(first)).toBe(true);
    expect((await restored(objects, streamed.snapshot)).equals(second)).toBe(true);
    const report = await verify(await Repository.open(objects), { readData: true });
    expect(report.findings).toEqual([]);
    expect(await objects.leftoverTemps()).toEqual([]);
  }, 120_000);
});
