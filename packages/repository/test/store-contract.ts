import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InvalidKeyError, ObjectNotFoundError, ObjectStoreError, RangeOutOfBoundsError, listAll, type ObjectInfo, type ObjectStore } from '../dist/index.js';

export interface StoreUnderTest {
  store: ObjectStore;
  /** Removes everything the store wrote (a temp dir, a bucket prefix). */
  cleanup(): Promise<void>;
}

/**
 * The behaviour every ObjectStore must have, as a vitest suite. Each backend's test file
 * calls it with a factory for an empty store; the factory is called once per test (and
 * once per shared fixture), so a slow backend should hand out fresh prefixes of one
 * bucket rather than fresh buckets.
 *
 * Pagination is checked without assuming full pages (S3 may return fewer keys than asked
 * for), but a page that says more remain must make progress and `next` must be the last
 * key of the page.
 */
export function objectStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    describe('objects', () => {
      let subject: StoreUnderTest | undefined;
      let store: ObjectStore;
      beforeEach(async () => {
        subject = await makeStore();
        store = subject.store;
      });
      afterEach(async () => {
        await subject?.cleanup();
        subject = undefined;
      });

      it('has a location to put in messages', () => {
        expect(store.location).toMatch(/\S/);
      });

      it.each([
        ['empty', 0],
        ['1 byte', 1],
        ['several MiB', 5 * 1024 * 1024 + 3],
      ])('round-trips a %s object', async (_label, size) => {
        const data = randomBytes(size);
        expect(await store.putIfAbsent('objects/one', data)).toBe(true);
        expectBytes(await store.get('objects/one'), data);
        expect(await store.head('objects/one')).toEqual({ key: 'objects/one', size });
      });

      it('round-trips keys at the top level and deep down, with every allowed character', async () => {
        const keys = ['top', 'A-Z_a-z.0-9', '..a', 'a..b', '.hidden', 'tmp/x', 'd1/d2/d3/d4/d5/leaf', `${'k'.repeat(200)}/${'v'.repeat(200)}`];
        for (const [i, key] of keys.entries()) expect(await store.putIfAbsent(key, bytesOf(key, i))).toBe(true);
        for (const [i, key] of keys.entries()) expectBytes(await store.get(key), bytesOf(key, i));
        expect((await collect(store, '')).map((o) => o.key)).toEqual(byteSorted(keys));
      });

      it('putIfAbsent returns false the second time and keeps the first bytes', async () => {
        const first = randomBytes(1000);
        expect(await store.putIfAbsent('a/b', first)).toBe(true);
        expect(await store.putIfAbsent('a/b', first)).toBe(false);
        expect(await store.putIfAbsent('a/b', randomBytes(10))).toBe(false);
        expectBytes(await store.get('a/b'), first);
        expect(await store.head('a/b')).toEqual({ key: 'a/b', size: 1000 });
      });

      it('the same key put concurrently: exactly one put wins, readers never see a partial object', async () => {
        const data = randomBytes(4 * 1024 * 1024);
        let writing = true;
        const reader = (async () => {
          let reads = 0;
          while (writing || reads === 0) {
            reads++;
            try {
              expectBytes(await store.get('race/obj'), data);
            } catch (err) {
              if (!(err instanceof ObjectNotFoundError)) throw err;
            }
          }
        })();
        const results = await Promise.all(Array.from({ length: 16 }, () => store.putIfAbsent('race/obj', data))).finally(() => {
          writing = false;
        });
        await reader;
        expect(results.filter((r) => r).length).toBe(1);
        expectBytes(await store.get('race/obj'), data);
        expect((await collect(store, '')).map((o) => o.key)).toEqual(['race/obj']);
      });

      it('different keys put concurrently into the same new prefix all succeed', async () => {
        const keys = Array.from({ length: 40 }, (_, i) => `new/deep/prefix/${i}`);
        expect(await Promise.all(keys.map((key, i) => store.putIfAbsent(key, bytesOf(key, i))))).toEqual(keys.map(() => true));
        for (const [i, key] of keys.entries()) expectBytes(await store.get(key), bytesOf(key, i));
      });

      describe('ranges', () => {
        const data = randomBytes(1000);
        beforeEach(async () => {
          await store.putIfAbsent('r/obj', data);
          await store.putIfAbsent('r/empty', new Uint8Array(0));
        });

        it.each([
          ['start', 0, 10],
          ['middle', 500, 100],
          ['end', 990, 10],
          ['whole object', 0, 1000],
          ['zero-length at the start', 0, 0],
          ['zero-length at the end', 1000, 0],
        ])('reads the %s', async (_label, offset, length) => {
          expectBytes(await store.get('r/obj', { offset, length }), data.subarray(offset, offset + length));
        });

        it('reads a zero-length range of an empty object', async () => {
          expectBytes(await store.get('r/empty', { offset: 0, length: 0 }), new Uint8Array(0));
        });

        it('reads a range deep inside a multi-MiB object', async () => {
          const big = randomBytes(3 * 1024 * 1024);
          await store.putIfAbsent('r/big', big);
          const offset = 2 * 1024 * 1024 + 17;
          expectBytes(await store.get('r/big', { offset, length: 70_000 }), big.subarray(offset, offset + 70_000));
        });

        it.each([
          ['past the end', 'r/obj', 995, 10],
          ['starting past the end', 'r/obj', 1001, 0],
          ['longer than the object', 'r/obj', 0, 1001],
          ['with a negative offset', 'r/obj', -1, 1],
          ['with a negative length', 'r/obj', 10, -1],
          ['with a fractional offset', 'r/obj', 1.5, 1],
          ['of an empty object', 'r/empty', 0, 1],
        ])('rejects a range %s with RangeOutOfBoundsError', async (_label, key, offset, length) => {
          const err = await rejection(store.get(key, { offset, length }));
          expect(err).toBeInstanceOf(RangeOutOfBoundsError);
          expect(err).toBeInstanceOf(ObjectStoreError);
          expect((err as Error).message).toContain(key);
        });
      });

      it('a missing key: get throws ObjectNotFoundError naming it, head answers undefined', async () => {
        await store.putIfAbsent('present/x', new Uint8Array([1]));
        for (const key of ['missing', 'present/missing', 'no/such/dir/key']) {
          for (const range of [undefined, { offset: 0, length: 0 }]) {
            const err = await rejection(store.get(key, range));
            expect(err).toBeInstanceOf(ObjectNotFoundError);
            expect(err).toBeInstanceOf(ObjectStoreError);
            expect((err as ObjectNotFoundError).key).toBe(key);
            expect((err as Error).message).toContain(key);
          }
          expect(await store.head(key)).toBeUndefined();
        }
      });

      it('a prefix of other keys is not an object, nor is a key below an object', async () => {
        await store.putIfAbsent('dir/obj', new Uint8Array([1, 2]));
        await expect(store.get('dir')).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect(await store.head('dir')).toBeUndefined();
        await expect(store.get('dir/obj/below')).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect(await store.head('dir/obj/below')).toBeUndefined();
        await store.deleteMany(['dir', 'dir/obj/below']);
        expectBytes(await store.get('dir/obj'), new Uint8Array([1, 2]));
      });

      it('putIfAbsent never answers "already there" for a key that is only a prefix', async () => {
        // S3 holds both `x` and `x/y`; a file system cannot. Either is allowed, a false
        // "already there" (the caller would then reference an object that does not exist) is not.
        await store.putIfAbsent('x/y', new Uint8Array([1]));
        await expectPutOrStoreError(store, 'x', new Uint8Array([2]));
        await store.putIfAbsent('p', new Uint8Array([3]));
        await expectPutOrStoreError(store, 'p/q', new Uint8Array([4]));
        expectBytes(await store.get('x/y'), new Uint8Array([1]));
        expectBytes(await store.get('p'), new Uint8Array([3]));
      });

      it('head reports the size', async () => {
        for (const size of [0, 1, 4097]) {
          await store.putIfAbsent(`h/${size}`, randomBytes(size));
          expect(await store.head(`h/${size}`)).toEqual({ key: `h/${size}`, size });
        }
      });

      it('lists in byte order, directories where their keys sort', async () => {
        const keys = ['a0', 'a/x', 'a.b', 'a-b', 'A', '_', 'a/b/c', 'a/b-', 'B/z', 'b'];
        for (const [i, key] of keys.entries()) await store.putIfAbsent(key, bytesOf(key, i));
        const listed = await collect(store, '');
        // '-' < '.' < '/' < '0' < 'A' < '_' < 'a'
        expect(listed.map((o) => o.key)).toEqual(['A', 'B/z', '_', 'a-b', 'a.b', 'a/b-', 'a/b/c', 'a/x', 'a0', 'b']);
        expect(listed.map((o) => o.size)).toEqual(listed.map((o) => bytesOf(o.key, keys.indexOf(o.key)).length));
        expect((await collect(store, 'a')).map((o) => o.key)).toEqual(['a-b', 'a.b', 'a/b-', 'a/b/c', 'a/x', 'a0']);
        expect((await collect(store, 'a/b')).map((o) => o.key)).toEqual(['a/b-', 'a/b/c']);
        expect(await store.list('', { limit: 1000 })).toEqual({ objects: listed });
        expect(await store.list('nothing/here/')).toEqual({ objects: [] });
      });

      it('deleteMany deletes the keys that exist and ignores the rest', async () => {
        for (const key of ['a', 'b', 'c/d', 'c/e']) await store.putIfAbsent(key, bytesOf(key, 0));
        await store.deleteMany(['a', 'c/d', 'absent', 'c/absent', 'no/such/dir', 'a']);
        expect(await store.head('a')).toBeUndefined();
        expect(await store.head('c/d')).toBeUndefined();
        await expect(store.get('c/d')).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect((await collect(store, '')).map((o) => o.key)).toEqual(['b', 'c/e']);
        await store.deleteMany([]);
        await store.deleteMany(['a', 'c/d']);
        // A deleted key can be written again (GC removed it, a later backup needs it).
        expect(await store.putIfAbsent('c/d', new Uint8Array([9]))).toBe(true);
        expectBytes(await store.get('c/d'), new Uint8Array([9]));
      });

      describe('invalid keys are rejected with InvalidKeyError by every method', () => {
        const badKeys = [
          '../x',
          'a/../../x',
          '..',
          '.',
          '/abs',
          'a//b',
          'a/./b',
          'a/.',
          'a/',
          '',
          'a b',
          'a\\b',
          '..\\x',
          'a:b',
          'a~',
          'caf\u00e9',
          'nul\u0000',
          'x'.repeat(1025),
        ];
        const badPrefixes = ['../x', '/abs', 'a//b', 'a/./b', './', 'a b', 'a\\b', 'a:', '/', 'x'.repeat(1025)];

        it.each(badKeys.map((key) => [JSON.stringify(key).slice(0, 40), key]))('%s', async (_label, key) => {
          await expectInvalid(store.putIfAbsent(key, new Uint8Array([1])), key);
          await expectInvalid(store.get(key), key);
          await expectInvalid(store.get(key, { offset: 0, length: 0 }), key);
          await expectInvalid(store.head(key), key);
          await expectInvalid(store.deleteMany([key]), key);
        });

        it('deleteMany rejects the whole batch before deleting anything', async () => {
          await store.putIfAbsent('keep', new Uint8Array([1]));
          await expectInvalid(store.deleteMany(['keep', '../keep']), '../keep');
          expect(await store.head('keep')).toEqual({ key: 'keep', size: 1 });
        });

        it.each(badPrefixes.map((prefix) => [JSON.stringify(prefix).slice(0, 40), prefix]))('list(%s)', async (_label, prefix) => {
          await expectInvalid(store.list(prefix), prefix);
        });

        it('accepts prefixes that end with / or mid-segment, and nothing was written by the rejected calls', async () => {
          for (const prefix of ['', 'a/', 'a', 'a/.', 'a/..', 'a/b-', '..']) expect(await store.list(prefix)).toEqual({ objects: [] });
          for (const key of badKeys) await store.putIfAbsent(key, new Uint8Array([1])).catch(() => {});
          expect(await store.list('')).toEqual({ objects: [] });
        });
      });
    });

    describe('listing 2500 keys in nested prefixes', () => {
      let subject: StoreUnderTest | undefined;
      let store: ObjectStore;
      const keys = listingKeys();
      const sorted = byteSorted(keys);
      const sizeOf = (key: string): number => keys.indexOf(key) % 7;

      beforeAll(async () => {
        subject = await makeStore();
        store = subject.store;
        await forEachLimit(keys, 32, async (key) => {
          expect(await store.putIfAbsent(key, new Uint8Array(sizeOf(key)).fill(1))).toBe(true);
        });
      });
      afterAll(async () => {
        await subject?.cleanup();
      });

      it('lists everything, in byte order, with sizes, page by page', async () => {
        expect(keys.length).toBe(2500);
        const all = await collect(store, '', 97);
        expect(all.map((o) => o.key)).toEqual(sorted);
        expect(all.every((o) => o.size === sizeOf(o.key))).toBe(true);
        expect((await collect(store, '')).map((o) => o.key)).toEqual(sorted);
        const viaListAll: string[] = [];
        for await (const o of listAll(store, '')) viaListAll.push(o.key);
        expect(viaListAll).toEqual(sorted);
      });

      it.each(['c/', 'c/3', 'c/3f', 'c/3f/', 'c/3-', 'c/3.', 'c/30/0', 'c/30/0-', 'c/30/0/', 'c/a/B/', 'c/A', 'c/_', 'c/z', 'c/3f/x.y/1', 'd', 'c/3f/nothing'])(
        'prefix %s (complete or ending mid-segment)',
        async (prefix) => {
          const expected = sorted.filter((k) => k.startsWith(prefix));
          expect((await collect(store, prefix, 13)).map((o) => o.key)).toEqual(expected);
          expect((await collect(store, prefix)).map((o) => o.key)).toEqual(expected);
        },
      );

      it('a page that leaves keys behind ends with next = its last key; the last page has no next', async () => {
        const page = await store.list('c/3f/', { limit: 5 });
        expect(page.objects.length).toBeGreaterThan(0);
        expect(page.objects.length).toBeLessThanOrEqual(5);
        expect(page.next).toBe(page.objects[page.objects.length - 1].key);
        const everything = await store.list('c/3f/0/', { limit: 1000 });
        expect(everything.objects.map((o) => o.key)).toEqual(sorted.filter((k) => k.startsWith('c/3f/0/')));
        expect(everything.next).toBeUndefined();
        const exact = sorted.filter((k) => k.startsWith('c/30/b/'));
        const last = await store.list('c/30/b/', { after: exact[exact.length - 3], limit: 2 });
        expect(last).toEqual({ objects: exact.slice(-2).map((key) => ({ key, size: sizeOf(key) })) });
      });

      it('after: starts strictly after a key, present or not', async () => {
        const cases: [string, string][] = [
          ['', sorted[1234]],
          ['', `${sorted[1234]}-`],
          ['', sorted[0]],
          ['', ''],
          ['', 'b'],
          ['', 'c/3'],
          ['', 'c/3f/'],
          ['', sorted[sorted.length - 1]],
          ['', 'zzz'],
          ['c/3', 'c/3-'],
          ['c/3', 'c/3/'],
          ['c/3', 'c/30/0-/'],
          ['c/3', sorted.filter((k) => k.startsWith('c/3'))[150]],
          ['c/3f/', 'c/'],
          ['c/3f/', 'c/3g'],
        ];
        for (const [prefix, after] of cases) {
          const expected = sorted.filter((k) => k.startsWith(prefix) && k > after);
          expect(
            (await collect(store, prefix, 41, after)).map((o) => o.key),
            `prefix ${prefix} after ${after}`,
          ).toEqual(expected);
        }
      });
    });

    describe('matches a Map model under random put/delete/list/get sequences', () => {
      let subject: StoreUnderTest | undefined;
      let store: ObjectStore;
      beforeAll(async () => {
        subject = await makeStore();
        store = subject.store;
      });
      afterAll(async () => {
        await subject?.cleanup();
      });

      // Few segment values so that keys collide and interleave in sort order. Keys all
      // have two segments, so no key is a prefix-directory of another (see the test of
      // that case above).
      const segment = fc.constantFrom('a', 'b', 'a-', 'a.b', '0', 'Z', 'a0', '_');
      const key = fc.tuple(segment, segment).map(([x, y]) => `${x}/${y}`);
      const prefix = fc.tuple(key, fc.nat(6)).map(([k, n]) => k.slice(0, n));
      const op = fc.oneof(
        fc.record({ kind: fc.constant('put' as const), key, data: fc.uint8Array({ maxLength: 40 }) }),
        fc.record({ kind: fc.constant('delete' as const), keys: fc.array(key, { maxLength: 4 }) }),
        fc.record({
          kind: fc.constant('list' as const),
          prefix,
          after: fc.option(fc.oneof(key, prefix), { nil: undefined }),
          limit: fc.integer({ min: 1, max: 6 }),
        }),
        fc.record({ kind: fc.constant('get' as const), key }),
      );
      let run = 0;

      it('holds for every sequence', async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
            // Each run gets its own namespace, so runs need no cleanup between them.
            const ns = `run${run++}/`;
            const model = new Map<string, Uint8Array>();
            for (const o of ops) {
              if (o.kind === 'put') {
                const existed = model.has(o.key);
                expect(await store.putIfAbsent(ns + o.key, o.data)).toBe(!existed);
                if (!existed) model.set(o.key, o.data);
              } else if (o.kind === 'delete') {
                await store.deleteMany(o.keys.map((k) => ns + k));
                for (const k of o.keys) model.delete(k);
              } else if (o.kind === 'get') {
                const expected = model.get(o.key);
                if (expected === undefined) await expect(store.get(ns + o.key)).rejects.toBeInstanceOf(ObjectNotFoundError);
                else expectBytes(await store.get(ns + o.key), expected);
                expect(await store.head(ns + o.key)).toEqual(expected === undefined ? undefined : { key: ns + o.key, size: expected.length });
              } else {
                const after = o.after === undefined ? undefined : ns + o.after;
                const listed = await collect(store, ns + o.prefix, o.limit, after);
                const expected = byteSorted([...model.keys()].filter((k) => k.startsWith(o.prefix) && (o.after === undefined || k > o.after)));
                expect(listed).toEqual(expected.map((k) => ({ key: ns + k, size: model.get(k)!.length })));
              }
            }
          }),
          { numRuns: 60 },
        );
      });
    });
  });
}

/** Follows pages from `after`, checking each page against the pagination contract. */
async function collect(store: ObjectStore, prefix: string, limit?: number, after?: string): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let cursor = after;
  for (let pages = 0; ; pages++) {
    if (pages > 100_000) throw new Error(`list(${prefix}) never ends`);
    const page = await store.list(prefix, { after: cursor, limit });
    if (limit !== undefined && page.objects.length > limit) throw new Error(`page of ${page.objects.length} objects, limit ${limit}`);
    all.push(...page.objects);
    if (page.next === undefined) return all;
    if (page.objects.length === 0) throw new Error(`list(${prefix}) returned an empty page with next = ${page.next}`);
    if (page.next !== page.objects[page.objects.length - 1].key) throw new Error(`next ${page.next} is not the last key of its page`);
    cursor = page.next;
  }
}

/**
 * 2500 keys under `c/`: 100 at depth 2, 400 at depth 3, 2000 at depth 4, with names
 * that interleave directories and objects in byte order ('3-' < '3.' < '3/' < '30').
 */
function listingKeys(): string[] {
  const dirs1 = ['3', '30', '3f', '3-', '3.', 'A', '_', 'a'];
  const dirs2 = ['0', '00', '0-', '1', 'b', 'B', 'x.y', 'z', '9_', 'q'];
  const leaves = Array.from({ length: 25 }, (_, i) => `${i.toString(36)}${['', '-', '.', '_', 'Z'][i % 5]}`);
  const siblingsOf = (dirs: string[], count: number): string[] => {
    const taken = new Set(dirs);
    const names: string[] = [];
    for (const suffix of ['', '-', '.', '_', 'a', '0', 'Z', '-x', '.y', 'zz', '00', '_1', 'q-', '-0', '.-', 'b', '9']) {
      for (const base of dirs) {
        const name = base + suffix;
        if (!taken.has(name) && names.length < count) {
          taken.add(name);
          names.push(name);
        }
      }
    }
    if (names.length < count) throw new Error('not enough names');
    return names;
  };
  const keys: string[] = [];
  for (const name of siblingsOf(dirs1, 100)) keys.push(`c/${name}`);
  for (const d1 of dirs1) {
    for (const name of siblingsOf(dirs2, 50)) keys.push(`c/${d1}/${name}`);
    for (const d2 of dirs2) for (const leaf of leaves) keys.push(`c/${d1}/${d2}/${leaf}`);
  }
  return keys;
}

async function expectPutOrStoreError(store: ObjectStore, key: string, data: Uint8Array): Promise<void> {
  let stored: boolean;
  try {
    stored = await store.putIfAbsent(key, data);
  } catch (err) {
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect(await store.head(key)).toBeUndefined();
    return;
  }
  expect(stored).toBe(true);
  expectBytes(await store.get(key), data);
}

async function expectInvalid(promise: Promise<unknown>, key: string): Promise<void> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(InvalidKeyError);
  expect((err as InvalidKeyError).key).toBe(key);
}

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** Compares with Buffer.equals: toEqual on multi-MiB arrays takes seconds. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual.length).toBe(expected.length);
  const same = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength));
  expect(same, 'bytes differ').toBe(true);
}

function bytesOf(key: string, salt: number): Uint8Array {
  return new TextEncoder().encode(`${key}#${salt}`);
}

function byteSorted(keys: string[]): string[] {
  // Keys are ASCII, so UTF-16 code unit order (the default sort) is byte order.
  return [...keys].sort();
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}
