import { chmod, link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsObjectStore, InvalidKeyError, ObjectNotFoundError, ObjectStoreError, validateKey, validatePrefix } from '../dist/index.js';
import { objectStoreContract, rejection } from './store-contract.js';

// os.tmpdir() is on the real disk here, so the fsyncs in putIfAbsent are real ones.
const tempRoot = (): Promise<string> => mkdtemp(join(tmpdir(), 'hoard-fs-store-'));

objectStoreContract('FsObjectStore', async () => {
  const root = await tempRoot();
  return { store: await FsObjectStore.open(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('validateKey / validatePrefix', () => {
  it('accepts keys the repository writes and rejects anything that could leave the store', () => {
    for (const key of ['packs/3f/3fa2', 'index/ab/abcd', 'snapshots/job-1/20240101T000000Z-0123456789abcdef', 'a', '..a', 'a..b', '.a', 'x'.repeat(1024)]) {
      expect(() => validateKey(key), key).not.toThrow();
    }
    for (const key of ['', '/a', 'a/', 'a//b', '.', '..', 'a/./b', 'a/../b', '../a', 'a b', 'a\\b', 'a\u00e9', 'x'.repeat(1025)]) {
      expect(() => validateKey(key), key).toThrow(InvalidKeyError);
    }
    expect(() => validateKey(42 as unknown as string)).toThrow(InvalidKeyError);
  });

  it('prefixes may be empty, end with / or stop mid-segment', () => {
    for (const prefix of ['', 'packs/', 'packs/3', 'packs/3f/', 'a/.', 'a/..', '.']) expect(() => validatePrefix(prefix), prefix).not.toThrow();
    for (const prefix of ['/', '/a', 'a//', '../a', './', 'a/./', 'a b', 'x'.repeat(1025)]) {
      expect(() => validatePrefix(prefix), prefix).toThrow(InvalidKeyError);
    }
  });
});

describe('FsObjectStore', () => {
  let root: string;
  let store: FsObjectStore;
  const outsiders: string[] = [];
  beforeEach(async () => {
    root = await tempRoot();
    store = await FsObjectStore.open(root);
  });
  afterEach(async () => {
    for (const dir of [root, ...outsiders.splice(0)]) {
      await chmod(dir, 0o700).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps object k in the file <root>/k and leaves no temp files behind', async () => {
    expect(store.location).toBe(`fs:${root}`);
    const data = new TextEncoder().encode('pack bytes');
    await Promise.all(['packs/3f/3fa2', 'packs/3f/3fb0', 'top'].map((key) => store.putIfAbsent(key, data)));
    expect(new Uint8Array(await readFile(join(root, 'packs/3f/3fa2')))).toEqual(data);
    expect((await readdir(root)).sort()).toEqual(['packs', 'tmp~', 'top']);
    expect(await readdir(join(root, 'tmp~'))).toEqual([]);
    expect(await store.leftoverTemps()).toEqual([]);
    // Immutable objects: nothing should reopen them for writing.
    expect((await stat(join(root, 'top'))).mode & 0o222).toBe(0);
  });

  it('a temp file left by a crash is never visible through get or list, and is reported by leftoverTemps()', async () => {
    await store.putIfAbsent('a/b', new Uint8Array([1]));
    // The two states a crash can leave: a half-written temp, and a temp already linked
    // to its object (crash between link() and unlink()).
    const partial = join(root, 'tmp~', '999-partial');
    const linked = join(root, 'tmp~', '999-linked');
    await writeFile(partial, 'half a pa');
    await link(join(root, 'a/b'), linked);
    expect(await store.leftoverTemps()).toEqual([linked, partial].sort());
    expect(await store.list('')).toEqual({ objects: [{ key: 'a/b', size: 1 }] });
    expect(await store.list('tmp')).toEqual({ objects: [] });
    // No key can name the temp dir: '~' is outside the key alphabet.
    await expect(store.get('tmp~/999-partial')).rejects.toBeInstanceOf(InvalidKeyError);
    // A new store on the same root reports them too (it never saw those puts).
    expect(await (await FsObjectStore.open(root)).leftoverTemps()).toEqual([linked, partial].sort());
    // Deleting a linked leftover leaves the object intact.
    await rm(linked);
    expect(await store.get('a/b')).toEqual(new Uint8Array([1]));
  });

  it('does not report the temp files of its own puts in progress', async () => {
    const put = store.putIfAbsent('big', new Uint8Array(8 * 1024 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await store.leftoverTemps()).toEqual([]);
    expect(await put).toBe(true);
  });

  it('opening a missing root fails naming the path; create: true creates it', async () => {
    const missing = join(root, 'no', 'such', 'dir');
    await expect(FsObjectStore.open(missing)).rejects.toThrow(`object store directory ${missing} does not exist`);
    const created = await FsObjectStore.open(missing, { create: true });
    expect((await stat(missing)).isDirectory()).toBe(true);
    expect(await created.putIfAbsent('k', new Uint8Array([1]))).toBe(true);
  });

  it('opening a file as the root fails naming it', async () => {
    const file = join(root, 'file');
    await writeFile(file, 'x');
    await expect(FsObjectStore.open(file)).rejects.toThrow(`object store path ${file} is not a directory`);
    await expect(FsObjectStore.open(file, { create: true })).rejects.toThrow(file);
  });

  // root bypasses permission bits, so the check can only be exercised as another user.
  it.skipIf(process.getuid?.() === 0)('opening an unreadable root fails naming it', async () => {
    await chmod(root, 0o000);
    await expect(FsObjectStore.open(root)).rejects.toThrow(`object store directory ${root} is not readable`);
    await expect(store.list('')).rejects.toBeInstanceOf(ObjectStoreError);
  });

  it('wraps I/O errors in ObjectStoreError naming the operation and key, keeping the cause', async () => {
    // The temp dir is a file: the put cannot even start.
    await writeFile(join(root, 'tmp~'), 'in the way');
    const put = await rejection(store.putIfAbsent('a/k', new Uint8Array([1])));
    expect(put).toBeInstanceOf(ObjectStoreError);
    expect(put).toMatchObject({ operation: 'put', key: 'a/k', location: `fs:${root}` });
    expect((put as Error).message).toContain('a/k');

    // A segment longer than the file system allows (the key itself is valid).
    const longKey = 'x'.repeat(300);
    const get = await rejection(store.get(longKey));
    expect(get).toBeInstanceOf(ObjectStoreError);
    expect(get).not.toBeInstanceOf(ObjectNotFoundError);
    expect(get).toMatchObject({ operation: 'get', key: longKey, cause: { code: 'ENAMETOOLONG' } });
    await expect(store.head(longKey)).rejects.toMatchObject({ operation: 'head', cause: { code: 'ENAMETOOLONG' } });

    // The root vanished after open: puts fail instead of recreating it.
    await rm(root, { recursive: true });
    const gone = await rejection(new FsObjectStore(root).putIfAbsent('k', new Uint8Array([1])));
    expect(gone).toMatchObject({ operation: 'put', key: 'k', cause: { code: 'ENOENT' } });
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a key and keys below it cannot both exist: a clear error, never a false "already there"', async () => {
    await store.putIfAbsent('x/y', new Uint8Array([1]));
    await expect(store.putIfAbsent('x', new Uint8Array([2]))).rejects.toThrow("cannot hold both 'x' and keys under 'x/'");
    await store.putIfAbsent('p', new Uint8Array([3]));
    await expect(store.putIfAbsent('p/q/r', new Uint8Array([4]))).rejects.toThrow("cannot hold both 'p' and keys under 'p/'");
  });

  it('never follows a symlink below the root, so no key reaches outside it', async () => {
    const outside = await tempRoot();
    outsiders.push(outside);
    await writeFile(join(outside, 'secret'), 'outside');
    await symlink(outside, join(root, 'evil'));
    await symlink(join(outside, 'secret'), join(root, 'link'));
    await mkdir(join(root, 'real'));
    await symlink(join(root, 'real'), join(root, 'alias'));
    await store.putIfAbsent('real/obj', new Uint8Array([5]));

    for (const key of ['evil/secret', 'link', 'alias/obj']) {
      await expect(store.get(key), key).rejects.toThrow('symbolic link');
      await expect(store.get(key, { offset: 0, length: 1 }), key).rejects.toBeInstanceOf(ObjectStoreError);
      await expect(store.head(key), key).rejects.toThrow('symbolic link');
    }
    for (const key of ['evil/new', 'evil/sub/new', 'link', 'evil/secret']) {
      await expect(store.putIfAbsent(key, new Uint8Array([6])), key).rejects.toThrow('symbolic link');
    }
    await expect(store.deleteMany(['evil/secret'])).rejects.toThrow('symbolic link');
    expect((await readdir(outside)).sort()).toEqual(['secret']);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('outside');
    expect(await store.list('')).toEqual({ objects: [{ key: 'real/obj', size: 1 }] });
  });

  it('refuses a symlinked temp dir rather than write outside the root', async () => {
    const outside = await tempRoot();
    outsiders.push(outside);
    await symlink(outside, join(root, 'tmp~'));
    await expect(store.putIfAbsent('k', new Uint8Array([1]))).rejects.toBeInstanceOf(ObjectStoreError);
    expect(await readdir(outside)).toEqual([]);
  });

  it('lists only names a key can have (not lost+found, tmp~, or stray files)', async () => {
    await mkdir(join(root, 'lost+found'));
    await writeFile(join(root, 'lost+found', 'x'), 'x');
    await writeFile(join(root, 'bad name'), 'x');
    await mkdir(join(root, 'tmp~'));
    await writeFile(join(root, 'tmp~', 'x'), 'x');
    await store.putIfAbsent('ok', new Uint8Array(0));
    expect(await store.list('')).toEqual({ objects: [{ key: 'ok', size: 0 }] });
  });

  it('returns full pages while more keys remain', async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `k/${String(i).padStart(2, '0')}`);
    await Promise.all(keys.map((key) => store.putIfAbsent(key, new Uint8Array(1))));
    const sizes: number[] = [];
    let after: string | undefined;
    do {
      const page = await store.list('k/', { after, limit: 5 });
      sizes.push(page.objects.length);
      after = page.next;
    } while (after !== undefined);
    expect(sizes).toEqual([5, 5, 5, 5, 3]);
    await expect(store.list('', { limit: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});
