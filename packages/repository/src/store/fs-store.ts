import { randomUUID } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { access, link, lstat, mkdir, open, readdir, realpath, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { mapLimit } from '../map-limit.js';
import {
  EnvironmentError,
  InvalidKeyError,
  isEnvironmentErrno,
  ObjectNotFoundError,
  ObjectStoreError,
  RangeOutOfBoundsError,
  type StoreOperation,
} from './errors.js';
import { checkListArguments, isKeySegment, validateKey } from './keys.js';
import type { ByteRange, ListOptions, ListPage, ObjectInfo, ObjectStore, RangeReader, StagedObject } from './object-store.js';

/**
 * Where temp files live, inside the root. '~' is outside the key alphabet, so no key can
 * name this directory or anything in it, list() skips it like any other non-key name,
 * and a key such as `tmp/x` stays an ordinary object.
 */
export const FS_TEMP_DIR = 'tmp~';

/** Parallel lstat()/unlink() calls: enough to keep libuv's thread pool busy. */
const IO_CONCURRENCY = 32;
/** Bounds the memory of the durable-directory cache; clearing it only costs fsyncs. */
const MAX_CACHED_DURABLE_DIRS = 100_000;
/** Files a range reader keeps open (a restore reads from a few packs at a time, in runs). */
const READER_OPEN_FILES = 64;
// Without O_NOFOLLOW a symlink planted at a key's path would be read through; O_NONBLOCK
// keeps a FIFO planted there from hanging the open (it is a no-op for regular files).
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
/** Objects are immutable: nothing should open them for writing again. */
const OBJECT_MODE = 0o444;
// Windows cannot open a directory to fsync it; elsewhere a directory fsync is what makes
// a new name durable.
const CAN_SYNC_DIRS = process.platform !== 'win32';

export interface FsObjectStoreOpenOptions {
  /** Create the root directory (and missing parents) if it does not exist. */
  create?: boolean;
}

/**
 * An ObjectStore in a local directory: object `k` is the file `<root>/<k>`, temp files
 * live in `<root>/tmp~/`. See docs/storage.md for the layout and the atomicity argument.
 *
 * Limits of a file system compared with S3: a key and keys below it (`a` and `a/b`)
 * cannot both exist (the second put fails with an ObjectStoreError, it never reports a
 * false "already there"), and each segment must fit the file system's name length (255).
 */
export class FsObjectStore implements ObjectStore {
  readonly location: string;
  /** Absolute path of the root directory. */
  readonly root: string;
  readonly #tempDir: string;
  #realRoot: string | undefined;
  #tempDirReady: Promise<void> | undefined;
  /** Temp files of puts in progress in this instance: not leftovers. */
  readonly #tempsInFlight = new Set<string>();
  /**
   * Key directories ('a/b') whose entry and every ancestor's entry are known to be on
   * disk. A directory is added only after the fsyncs that made it so have completed, so a
   * concurrent put never skips an fsync another put has not finished yet.
   */
  readonly #durableDirs = new Set<string>();

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `fs:${this.root}`;
    this.#tempDir = join(this.root, FS_TEMP_DIR);
  }

  /**
   * Opens the store at `root`, checking that it is a readable directory, so that a
   * mistyped path fails here with its name rather than at the first backup.
   */
  static async open(root: string, options: FsObjectStoreOpenOptions = {}): Promise<FsObjectStore> {
    const path = resolve(root);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      const code = errorCode(err);
      if (isEnvironmentErrno(code)) throw new EnvironmentError(`fs:${path}`, 'head', '', code, { path }, { cause: err });
      if (errorCode(err) !== 'ENOENT') throw new Error(`cannot open object store directory ${path}: ${describe(err)}`, { cause: err });
      if (!options.create) {
        throw new Error(`object store directory ${path} does not exist (create it, or open with create: true)`, { cause: err });
      }
      try {
        await createDirDurably(path);
        info = await stat(path);
      } catch (createErr) {
        // A recursive mkdir on a read-only file system says ENOENT: ask the first missing
        // level for the real reason.
        const real = isEnvironmentErrno(errorCode(createErr)) ? createErr : ((await firstMkdirError(path)) ?? createErr);
        const code = errorCode(real);
        if (isEnvironmentErrno(code))
          throw new EnvironmentError(`fs:${path}`, 'put', '', code, { path: (real as NodeJS.ErrnoException).path ?? path }, { cause: real });
        throw new Error(`cannot create object store directory ${path}: ${describe(createErr)}`, { cause: createErr });
      }
    }
    if (!info.isDirectory()) throw new Error(`object store path ${path} is not a directory`);
    // Read access only: a read-only store (a restore from a read-only mount) is legitimate;
    // writes to it fail later as ObjectStoreErrors naming the key.
    try {
      await access(path, constants.R_OK | constants.X_OK);
    } catch (err) {
      const code = errorCode(err);
      if (isEnvironmentErrno(code))
        throw new EnvironmentError(
          `fs:${path}`,
          'head',
          '',
          code,
          { path, reason: `object store directory ${path} is not readable (${code}): run hoard as a user that may read it, or change its owner or mode` },
          { cause: err },
        );
      throw new Error(`object store directory ${path} is not readable: ${describe(err)}`, { cause: err });
    }
    return new FsObjectStore(path);
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    validateKey(key);
    if (!(data instanceof Uint8Array)) throw new TypeError(`putIfAbsent(${key}): data must be a Uint8Array`);
    try {
      return await this.#put(key, data);
    } catch (err) {
      throw this.#wrap('put', key, err);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    validateKey(key);
    try {
      return await this.#get(key, range);
    } catch (err) {
      throw this.#wrap('get', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    try {
      if (!(await this.#parentIsInside('head', key))) return undefined;
      let info;
      try {
        info = await lstat(this.#path(key));
      } catch (err) {
        if (isAbsent(err)) return undefined;
        throw err;
      }
      if (info.isFile()) return { key, size: info.size };
      if (info.isSymbolicLink()) throw this.#symlinkError('head', key);
      // A directory: the prefix of other keys, not an object.
      return undefined;
    } catch (err) {
      throw this.#wrap('head', key, err);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const limit = checkListArguments(prefix, options);
    const after = options.after;
    try {
      // One key beyond the page tells whether another page exists.
      const keys: string[] = [];
      await this.#walk('', prefix, after, limit + 1, keys);
      const more = keys.length > limit;
      const pageKeys = more ? keys.slice(0, limit) : keys;
      const infos = await mapLimit(pageKeys, IO_CONCURRENCY, async (key): Promise<ObjectInfo | undefined> => {
        try {
          const info = await lstat(this.#path(key));
          if (!info.isFile()) return undefined;
          return options.times ? { key, size: info.size, modified: info.mtime } : { key, size: info.size };
        } catch (err) {
          // Deleted between readdir() and lstat(): no longer part of the listing.
          if (isAbsent(err)) return undefined;
          throw err;
        }
      });
      const objects = infos.filter((info): info is ObjectInfo => info !== undefined);
      // The cursor is the last key considered, even if a concurrent delete removed it.
      return more ? { objects, next: pageKeys[pageKeys.length - 1] } : { objects };
    } catch (err) {
      throw this.#wrap('list', prefix, err);
    }
  }

  async deleteMany(keys: string[]): Promise<void> {
    // All keys are checked before anything is deleted: a bad key is a caller bug, and a
    // half-done delete would hide it.
    for (const key of keys) validateKey(key);
    const touchedDirs = new Set<string>();
    await mapLimit([...new Set(keys)], IO_CONCURRENCY, async (key) => {
      try {
        if (!(await this.#parentIsInside('delete', key))) return;
        await unlink(this.#path(key));
        touchedDirs.add(keyDir(key));
      } catch (err) {
        // EISDIR: the key names a directory (a prefix of other keys), not an object.
        if (isAbsent(err) || errorCode(err) === 'EISDIR') return;
        throw this.#wrap('delete', key, err);
      }
    });
    // Durable like puts, so that after a crash GC never sees a deleted object come back.
    // Empty directories are left in place: removing one would race with a put that has
    // just created it and is about to link into it.
    await mapLimit([...touchedDirs], IO_CONCURRENCY, async (dir) => {
      try {
        await syncDir(join(this.root, dir));
      } catch (err) {
        if (isAbsent(err)) return;
        throw this.#wrap('delete', dir === '' ? '' : `${dir}/`, err);
      }
    });
  }

  /**
   * Absolute paths of temp files not belonging to a put in progress in this instance:
   * debris of a crash (or of a put in another process: compare their mtime with a grace
   * period before deleting). Deleting one never affects an object: a temp file is either
   * garbage or a second hard link to a complete object.
   */
  async leftoverTemps(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#tempDir);
    } catch (err) {
      if (isAbsent(err)) return [];
      throw this.#wrap('list', `${FS_TEMP_DIR}/`, err);
    }
    return names
      .map((name) => join(this.#tempDir, name))
      .filter((path) => !this.#tempsInFlight.has(path))
      .sort();
  }

  // --- put ---

  async #put(key: string, data: Uint8Array): Promise<boolean> {
    if (await this.#alreadyStored(key)) return false;
    return this.#publish(key, await this.#writeTemp(data));
  }

  /**
   * True (and its name made durable) if the object `key` exists; otherwise makes sure its
   * directories do, for the link that follows.
   */
  async #alreadyStored(key: string): Promise<boolean> {
    if (await this.#parentIsInside('put', key)) {
      // Content-named objects are often offered again: answer without writing the bytes.
      if (await this.#isExistingObject(key, this.#path(key))) {
        await this.#syncDirChain(keyDir(key));
        return true;
      }
    } else {
      await this.#makeKeyDirs('put', key);
    }
    return false;
  }

  /** Links a complete, synced temp file in as `key` unless the key exists; removes the temp either way. */
  async #publish(key: string, temp: string): Promise<boolean> {
    const path = this.#path(key);
    const dir = keyDir(key);
    try {
      try {
        // link() fails with EEXIST when the name exists, atomically: this is the "if
        // absent". rename() would silently replace an existing object.
        await link(temp, path);
      } catch (err) {
        if (errorCode(err) === 'EEXIST' && (await this.#isExistingObject(key, path))) {
          // Another put won the race. Its link may not be durable yet: sync it ourselves
          // before telling the caller the object is there.
          await this.#syncDirChain(dir);
          return false;
        }
        throw err;
      }
      await this.#syncDirChain(dir);
      return true;
    } finally {
      await this.#dropTemp(temp);
    }
  }

  async #dropTemp(temp: string): Promise<void> {
    try {
      await unlink(temp);
    } catch {
      // The put itself is complete (or failed); a temp that cannot be removed is reported
      // by leftoverTemps() like a crash's.
    }
    this.#tempsInFlight.delete(temp);
  }

  /**
   * A pack as it fills: appended to a temp file, which commit() syncs and links in under
   * its key exactly as putIfAbsent does. Nothing but the temp file exists before commit,
   * so a crash leaves only debris for leftoverTemps().
   */
  stageObject(): StagedObject {
    let temp: string | undefined;
    let handle: FileHandle | undefined;
    const file = async (): Promise<FileHandle> => {
      if (handle) return handle;
      await this.#ensureTempDir();
      temp = this.#newTempPath();
      this.#tempsInFlight.add(temp);
      handle = await open(temp, 'wx', OBJECT_MODE);
      return handle;
    };
    const discard = async (): Promise<void> => {
      const h = handle;
      handle = undefined;
      await h?.close().catch(() => {});
      if (temp !== undefined) await this.#dropTemp(temp);
      temp = undefined;
    };
    return {
      append: async (bytes) => {
        try {
          const h = await file();
          for (let done = 0; done < bytes.length; ) done += (await h.write(bytes, done, bytes.length - done)).bytesWritten;
        } catch (err) {
          throw this.#wrap('put', `${FS_TEMP_DIR}/${temp ? basename(temp) : '(new)'}`, err);
        }
      },
      commit: async (key) => {
        validateKey(key);
        try {
          const h = await file();
          // The bytes must be on disk before the name that makes them visible is.
          await h.sync();
          await h.close();
          handle = undefined;
          const staged = temp!;
          const written = !(await this.#alreadyStored(key)) && (await this.#publish(key, staged));
          temp = undefined;
          await this.#dropTemp(staged);
          return written;
        } catch (err) {
          await discard();
          throw this.#wrap('put', key, err);
        }
      },
      abort: discard,
    };
  }

  /**
   * True if a regular file (an object) is at `path`, false if nothing is. Anything else
   * is an error: a directory would otherwise make putIfAbsent answer "already there" for
   * an object that does not exist.
   */
  async #isExistingObject(key: string, path: string): Promise<boolean> {
    let info;
    try {
      info = await lstat(path);
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
    if (info.isFile()) return true;
    if (info.isDirectory()) {
      throw this.#error('put', key, `${path} is a directory holding other keys; a file-system store cannot hold both '${key}' and keys under '${key}/'`);
    }
    if (info.isSymbolicLink()) throw this.#symlinkError('put', key);
    throw this.#error('put', key, `${path} exists and is not a regular file`);
  }

  /**
   * Creates the key's missing directories one level at a time, checking that each
   * existing level is a real directory, so that a symlink inside the root can never make
   * the store create directories (and then objects) outside it.
   */
  async #makeKeyDirs(operation: StoreOperation, key: string): Promise<void> {
    const segments = key.split('/');
    segments.pop();
    let dir = this.root;
    let dirKey = '';
    for (const segment of segments) {
      dir = join(dir, segment);
      dirKey = dirKey === '' ? segment : `${dirKey}/${segment}`;
      try {
        await mkdir(dir);
        continue;
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      const info = await lstat(dir);
      if (info.isDirectory()) continue;
      if (info.isSymbolicLink()) throw this.#symlinkError(operation, key);
      throw this.#error(
        operation,
        key,
        `${dir} is ${info.isFile() ? 'an object' : 'not a directory'}; a file-system store cannot hold both '${dirKey}' and keys under '${dirKey}/'`,
      );
    }
  }

  async #writeTemp(data: Uint8Array): Promise<string> {
    await this.#ensureTempDir();
    const temp = this.#newTempPath();
    this.#tempsInFlight.add(temp);
    let handle: FileHandle | undefined;
    try {
      handle = await open(temp, 'wx', OBJECT_MODE);
      await handle.writeFile(data);
      // The bytes must be on disk before the name that makes them visible is.
      await handle.sync();
      await handle.close();
      return temp;
    } catch (err) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      this.#tempsInFlight.delete(temp);
      throw err;
    }
  }

  #newTempPath(): string {
    // The pid tells an operator whose debris a leftover is; the UUID makes names unique
    // across instances and processes sharing the root.
    return join(this.#tempDir, `${process.pid}-${randomUUID()}`);
  }

  #ensureTempDir(): Promise<void> {
    this.#tempDirReady ??= (async () => {
      // Not recursive: if the root has gone (an unmounted disk), recreating it would send
      // the backup into the empty mount point.
      try {
        await mkdir(this.#tempDir);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      // A symlinked temp dir would put the bytes outside the root (and link() across
      // file systems fails anyway).
      const info = await lstat(this.#tempDir);
      if (!info.isDirectory()) throw new Error(`${this.#tempDir} is not a directory`);
    })().catch((err: unknown) => {
      this.#tempDirReady = undefined;
      throw err;
    });
    return this.#tempDirReady;
  }

  /**
   * Makes the entries on the way to `<dir>/<name>` durable: fsyncs `dir` (the new name)
   * and every ancestor up to the root whose child's entry is not yet known to be durable
   * (directories created by this put, or by a concurrent put that has not synced yet).
   */
  async #syncDirChain(dir: string): Promise<void> {
    await syncDir(join(this.root, dir));
    const pending: string[] = [];
    for (let d = dir; d !== '' && !this.#durableDirs.has(d); d = keyDir(d)) pending.push(d);
    for (const d of pending) await syncDir(join(this.root, keyDir(d)));
    if (this.#durableDirs.size + pending.length > MAX_CACHED_DURABLE_DIRS) this.#durableDirs.clear();
    for (const d of pending) this.#durableDirs.add(d);
  }

  // --- get ---

  async #get(key: string, range: ByteRange | undefined): Promise<Uint8Array> {
    const { handle, size } = await this.#openObject(key);
    try {
      if (range === undefined) return await readExactly(handle, 0, size);
      return await readExactly(handle, ...this.#checkRange(key, range, size));
    } finally {
      await handle.close();
    }
  }

  /** Opens an object for reading: inside the root, no symlink, a regular file. */
  async #openObject(key: string): Promise<{ handle: FileHandle; size: number }> {
    if (!(await this.#parentIsInside('get', key))) throw new ObjectNotFoundError(this.location, key);
    let handle: FileHandle;
    try {
      handle = await open(this.#path(key), READ_FLAGS);
    } catch (err) {
      if (isAbsent(err)) throw new ObjectNotFoundError(this.location, key);
      if (errorCode(err) === 'ELOOP') throw this.#symlinkError('get', key);
      throw err;
    }
    try {
      const info = await handle.stat();
      // A directory opens fine for reading on Linux: it is a prefix, not an object.
      if (!info.isFile()) throw new ObjectNotFoundError(this.location, key);
      return { handle, size: info.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  #checkRange(key: string, range: ByteRange, size: number): [number, number] {
    const { offset, length } = range;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new RangeOutOfBoundsError(this.location, key, offset, length, size);
    }
    return [offset, length];
  }

  /**
   * Ranged reads on files kept open (up to READER_OPEN_FILES, least recently used closed
   * first): a restore reads thousands of ranges from a few packs, and the open, fstat and
   * close around each read cost as much as the read. Safe because objects are immutable;
   * a pack GC deletes meanwhile stays readable through its open handle.
   */
  openRangeReader(): RangeReader {
    interface OpenFile {
      file: Promise<{ handle: FileHandle; size: number }>;
      /** Reads using the handle now: an evicted file is closed when the last one ends. */
      users: number;
      evicted: boolean;
    }
    const files = new Map<string, OpenFile>();
    let closed = false;
    const release = (f: OpenFile) => {
      f.evicted = true;
      if (f.users === 0) void f.file.then(({ handle }) => handle.close()).catch(() => undefined);
    };
    return {
      read: async (key, range, into) => {
        if (closed) throw new Error(`range reader of ${this.location} is closed`);
        validateKey(key);
        let f = files.get(key);
        if (f) {
          files.delete(key); // re-inserted below: Map order is least recently used first
        } else {
          f = { file: this.#openObject(key), users: 0, evicted: false };
          f.file.catch(() => files.get(key) === f && files.delete(key));
          if (files.size >= READER_OPEN_FILES) {
            const [oldest, file] = files.entries().next().value!;
            files.delete(oldest);
            release(file);
          }
        }
        files.set(key, f);
        f.users++;
        try {
          const { handle, size } = await f.file;
          return await readExactly(handle, ...this.#checkRange(key, range, size), into);
        } catch (err) {
          throw this.#wrap('get', key, err);
        } finally {
          if (--f.users === 0 && f.evicted) release(f);
        }
      },
      close: async () => {
        closed = true;
        const all = [...files.values()];
        files.clear();
        all.forEach(release);
      },
    };
  }

  // --- list ---

  /**
   * Appends to `out`, in byte order, the keys under directory `dirKey` ('' or ending in
   * '/') that start with `prefix` and sort after `after`, until `out` holds `want` keys.
   * A directory sorts as its name plus '/', which is where its keys fall among its
   * siblings ('a-b' < 'a.b' < 'a/x' < 'a0'). Subtrees that cannot match are never read.
   */
  async #walk(dirKey: string, prefix: string, after: string | undefined, want: number, out: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, dirKey), { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return;
      throw err;
    }
    const children: { key: string; isDir: boolean }[] = [];
    for (const entry of entries) {
      // Skips tmp~, lost+found and anything else no key can name. Symlinks are never
      // followed, so a listing cannot leave the root or see an object twice.
      if (!isKeySegment(entry.name)) continue;
      const isDir = entry.isDirectory();
      if (!isDir && !entry.isFile()) continue;
      const key = isDir ? `${dirKey}${entry.name}/` : `${dirKey}${entry.name}`;
      if (isDir) {
        if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
        // Every key below sorts after `key`; if `after` is past `key` without being inside
        // it, every key below sorts before `after`.
        if (after !== undefined && after > key && !after.startsWith(key)) continue;
      } else {
        if (!key.startsWith(prefix)) continue;
        if (after !== undefined && key <= after) continue;
      }
      children.push({ key, isDir });
    }
    // Keys are ASCII, so UTF-16 code unit order is byte order.
    children.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const child of children) {
      if (out.length >= want) return;
      if (child.isDir) await this.#walk(child.key, prefix, after, want, out);
      else out.push(child.key);
    }
  }

  // --- helpers ---

  #path(key: string): string {
    return join(this.root, key);
  }

  /**
   * Checks that the key's directory resolves to where it should, inside the root, with no
   * symlink on the way. Returns false when the directory does not exist (so neither does
   * the key). The key rules already keep '..' out; this keeps out a link planted below
   * the root (by mistake or by someone with write access to it) from turning a get into
   * a read of /etc or a delete into an unlink elsewhere.
   */
  async #parentIsInside(operation: StoreOperation, key: string): Promise<boolean> {
    const dir = keyDir(key);
    if (dir === '') return true;
    const realRoot = await this.#realRootPath();
    let real: string;
    try {
      real = await realpath(join(this.root, dir));
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
    if (real !== join(realRoot, dir)) throw this.#symlinkError(operation, key, real);
    return true;
  }

  async #realRootPath(): Promise<string> {
    // Cached only once known: a root that is missing now may be mounted later.
    this.#realRoot ??= await realpath(this.root);
    return this.#realRoot;
  }

  #symlinkError(operation: StoreOperation, key: string, resolved?: string): ObjectStoreError {
    const where = resolved === undefined ? '' : ` (it resolves to ${resolved})`;
    return this.#error(operation, key, `the path to it goes through a symbolic link${where}; a file-system store never follows links below its root`);
  }

  #error(operation: StoreOperation, key: string, reason: string): ObjectStoreError {
    return new ObjectStoreError(this.location, operation, key, reason);
  }

  #wrap(operation: StoreOperation, key: string, err: unknown): Error {
    if (err instanceof ObjectStoreError || err instanceof InvalidKeyError) return err;
    // A full, read-only or forbidden file system: one line naming the repository and what
    // to do (docs/storage.md, "When the environment refuses"), never a bug report.
    const code = errorCode(err);
    if (isEnvironmentErrno(code)) return new EnvironmentError(this.location, operation, key, code, { path: this.root }, { cause: err });
    return new ObjectStoreError(this.location, operation, key, describe(err), { cause: err });
  }
}

/** The directory part of a key ('a/b' for 'a/b/c'), '' for a top-level key. */
function keyDir(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
}

async function readExactly(handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
  // Not Buffer.alloc: no zero-fill of bytes about to be overwritten, and not pooled, so
  // the caller's view does not share an ArrayBuffer with unrelated data.
  const buffer = into && into.byteLength >= length ? Buffer.from(into.buffer, into.byteOffset, length) : Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`the file ended at byte ${position + done} while reading ${length} bytes at ${position}: it changed while being read`);
    done += bytesRead;
  }
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

async function syncDir(path: string): Promise<void> {
  if (!CAN_SYNC_DIRS) return;
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p, then fsyncs the parent of every directory it created so they survive a crash. */
async function createDirDurably(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (first === undefined) return;
  for (let dir = path; dir !== dirname(dir); dir = dirname(dir)) {
    await syncDir(dirname(dir));
    if (dir === first) return;
  }
}

/** The error of a plain mkdir of the first missing directory on the way to `path`, if any. */
async function firstMkdirError(path: string): Promise<unknown> {
  let dir = path;
  while (dirname(dir) !== dir) {
    const parent = dirname(dir);
    if (
      await stat(parent).then(
        (i) => i.isDirectory(),
        () => false,
      )
    ) {
      try {
        await mkdir(dir);
        return undefined; // created now: not what failed (a race); the caller reports its own error
      } catch (err) {
        return err;
      }
    }
    dir = parent;
  }
  return undefined;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** ENOTDIR: a path component is a file, so nothing exists below it. */
function isAbsent(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
