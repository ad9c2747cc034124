/**
 * The shared retry helper (p-retry with per-call-site errors, attempts, waits and abort),
 * the shared limiter (p-limit, stopping after the first failure), and a caller: loading a
 * store's index lists and reads the segments again when one vanishes (a GC replaced it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  backup,
  decodeIndexSegment,
  FsObjectStore,
  listAll,
  mapLimit,
  ObjectNotFoundError,
  Repository,
  retrying,
  StoreIndex,
  type ObjectStore,
} from '../dist/index.js';
import { generate, pieces } from './fixtures/test-data.mjs';

class Flaky extends Error {}

describe('retrying', () => {
  it('tries again while the error is retryable, up to the attempts, and rejects with the last error', async () => {
    const seen: number[] = [];
    const waits: number[] = [];
    const err = await retrying(
      async (attempt) => {
        seen.push(attempt);
        throw new Flaky(`attempt ${attempt}`);
      },
      { attempts: 4, retryable: (e) => e instanceof Flaky, delayMs: (attempt) => (waits.push(attempt), 1) },
    ).catch((e: unknown) => e as Error);
    expect(seen).toEqual([1, 2, 3, 4]);
    // No wait after the last attempt.
    expect(waits).toEqual([1, 2, 3]);
    expect(err).toBeInstanceOf(Flaky);
    expect(err.message).toBe('attempt 4');
  });

  it('resolves with the first attempt that succeeds', async () => {
    expect(await retrying(async (attempt) => (attempt < 3 ? Promise.reject(new Flaky()) : attempt), { attempts: 5, retryable: () => true })).toBe(3);
  });

  it('stops at once on an error that is not retryable, and passes the attempt number to the check', async () => {
    const asked: number[] = [];
    let calls = 0;
    const err = await retrying(
      async () => {
        calls++;
        throw new Flaky('x');
      },
      { attempts: 10, retryable: (_e, attempt) => (asked.push(attempt), attempt < 2) },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Flaky);
    expect(calls).toBe(2);
    expect(asked).toEqual([1, 2]);
  });

  it('an abort ends the wait at once, starts no further attempt and rejects with the reason', async () => {
    const stop = new AbortController();
    let calls = 0;
    const started = Date.now();
    const pending = retrying(
      async () => {
        calls++;
        throw new Flaky();
      },
      { attempts: 5, retryable: () => true, delayMs: () => 60_000, signal: stop.signal },
    );
    setTimeout(() => stop.abort(new Error('stopping')), 20);
    await expect(pending).rejects.toThrow('stopping');
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a signal aborted before the call: the first attempt runs, no retry follows', async () => {
    let calls = 0;
    const signal = AbortSignal.abort(new Error('gone'));
    await expect(
      retrying(
        async () => {
          calls++;
          throw new Flaky();
        },
        { attempts: 5, retryable: () => true, signal },
      ),
    ).rejects.toThrow('gone');
    expect(calls).toBe(1);
  });

  it('an abort during an attempt waits for the attempt to settle', async () => {
    const stop = new AbortController();
    let settled = false;
    const pending = retrying(
      async () => {
        stop.abort(new Error('stopping'));
        await new Promise((r) => setTimeout(r, 30));
        settled = true;
        throw new Flaky();
      },
      { attempts: 5, retryable: () => true, signal: stop.signal },
    );
    await expect(pending).rejects.toThrow('stopping');
    expect(settled).toBe(true);
  });
});

describe('mapLimit', () => {
  it('keeps the input order and at most `limit` calls in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(most).toBe(3);
  });

  it('starts nothing after the first failure', async () => {
    const started: number[] = [];
    const items = Array.from({ length: 20 }, (_, i) => i);
    await expect(
      mapLimit(items, 2, async (i) => {
        started.push(i);
        await new Promise((r) => setTimeout(r, 1));
        if (i === 3) throw new Error('item 3');
      }),
    ).rejects.toThrow('item 3');
    await new Promise((r) => setTimeout(r, 30));
    expect(started.length).toBeLessThanOrEqual(5);
  });

  it('an empty input gives an empty result', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});

describe('StoreIndex.load when segments vanish', () => {
  it('lists and reads again, up to 5 times in all, then fails with the vanished object', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoard-retry-'));
    try {
      const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
      const repo = await Repository.init(objects, { packBytes: 4 << 20, scryptCost: { N: 1024, r: 8, p: 1 } });
      await backup(repo, { stream: pieces(generate(1, 1 << 20)), name: 'disk', kind: 'file', expectedBytes: 1 << 20 }, { job: 'vm', workers: 1 });
      const keys: string[] = [];
      for await (const info of listAll(objects, 'index/')) keys.push(info.key);
      const segment = decodeIndexSegment(keys[0]!, await objects.get(keys[0]!));
      const storeId = Buffer.from(segment.storeId).toString('hex');
      const fingerprint = segment.packs[0]!.entries[0]!.fingerprint;
      // The first `failures` segment reads find nothing, as if a GC had just replaced it.
      const vanishing = (failures: number): ObjectStore => ({
        location: objects.location,
        putIfAbsent: (key, data) => objects.putIfAbsent(key, data),
        get: async (key, range) => {
          if (key.startsWith('index/') && failures-- > 0) throw new ObjectNotFoundError(objects.location, key);
          return objects.get(key, range);
        },
        head: (key) => objects.head(key),
        list: (prefix, options) => objects.list(prefix, options),
        deleteMany: (keys) => objects.deleteMany(keys),
      });
      expect((await StoreIndex.load(vanishing(4), storeId)).has(fingerprint)).toBe(true);
      await expect(StoreIndex.load(vanishing(5), storeId)).rejects.toBeInstanceOf(ObjectNotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
