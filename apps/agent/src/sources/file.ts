/**
 * file: sources, and raw images found by vm: and libvirt: — a regular file or a block
 * device read byte for byte, with its size known up front.
 *
 * The size is taken from the opened descriptor (so a file replaced between resolve and
 * open is measured as opened). A block device's size comes from sysfs,
 * /sys/dev/block/MAJOR:MINOR/size (in 512-byte sectors, whatever the logical block
 * size), found through the device number of the opened node, so /dev/mapper/* and
 * /dev/disk/by-id/* symlinks work; when sysfs is not mounted, `blockdev --getsize64`.
 */
import { execFile } from 'node:child_process';
import type { Stats, BigIntStats } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { readHandleReusing } from '@hoard/chunker';
import { SourceClosedError, SourceError, SourceFailedError, SourceNotFoundError, SourceSizeMismatchError, SourceUnsupportedError } from './errors.js';
import { abortError, deferred } from './process.js';
import type { ChunkingKind, OpenedSource, SourceKind, SourceTarget } from './source.js';
import { skipWhenUnchanged } from './unchanged-image.js';

const execFileAsync = promisify(execFile);

/** Read size: large reads keep syscalls and stream overhead low. */
export const FILE_READ_CHUNK = 1 << 20;

export async function resolveFileSource(path: string): Promise<SourceTarget> {
  const info = await statTarget(path, path);
  return skipWhenUnchanged(fileTarget(path, path, info.isBlockDevice() ? 'block-device' : 'file', 'vm-image'), path);
}

/** stat() with the errors a user can act on; only regular files and block devices pass. */
export async function statTarget(target: string, path: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    throw statError(target, path, err);
  }
  if (info.isFile() || info.isBlockDevice()) return info;
  if (info.isDirectory())
    throw new SourceUnsupportedError(
      target,
      `${target}: ${path} is a directory; file: reads one file or block device (for VM images in it use vm:${path.replace(/\/$/, '')}/*)`,
    );
  if (info.isFIFO()) throw new SourceUnsupportedError(target, `${target}: ${path} is a named pipe, which has no size; read it with cmd:cat ${path}`);
  throw new SourceUnsupportedError(target, `${target}: ${path} is neither a regular file nor a block device`);
}

export function statError(target: string, path: string, err: unknown): SourceError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new SourceNotFoundError(target, `${target}: ${path} does not exist`, { cause: err });
  if (code === 'ENOTDIR') return new SourceNotFoundError(target, `${target}: ${path} does not exist (a parent is not a directory)`, { cause: err });
  if (code === 'EACCES' || code === 'EPERM')
    return new SourceFailedError(target, `${target}: permission denied reading ${path}; run the agent as a user that can read it`, {
      program: 'open',
      cause: err,
    });
  return new SourceFailedError(target, `${target}: cannot read ${path}: ${(err as Error).message}`, { program: 'open', cause: err });
}

export function fileTarget(name: string, path: string, kind: SourceKind, chunking: ChunkingKind): SourceTarget {
  return { name, kind, chunking, open: (signal) => openFile(name, path, signal) };
}

/** Opens a regular file or block device for reading, size checked against the stream. */
export async function openFile(name: string, path: string, signal?: AbortSignal): Promise<OpenedSource> {
  if (signal?.aborted) throw abortError(name, signal);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw statError(name, path, err);
  }
  let expectedBytes: number;
  try {
    const info = await fh.stat({ bigint: true });
    if (info.isFile()) expectedBytes = Number(info.size);
    else if (info.isBlockDevice()) expectedBytes = await blockDeviceSize(name, path, info);
    else throw new SourceUnsupportedError(name, `${name}: ${path} is neither a regular file nor a block device`);
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
  return openedFromHandle(name, fh, expectedBytes, signal);
}

function openedFromHandle(name: string, fh: FileHandle, expectedBytes: number, signal?: AbortSignal): OpenedSource {
  const done = deferred();
  let closing = false;
  let closePromise: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      if (!done.settled()) {
        closing = true;
        done.reject(signal?.aborted ? abortError(name, signal) : new SourceClosedError(name, `${name}: closed before it was read to the end`));
      }
      await fh.close().catch(() => {});
    })();
    return closePromise;
  };
  const onAbort = (): void => void close();
  signal?.addEventListener('abort', onAbort, { once: true });
  done.promise.finally(() => signal?.removeEventListener('abort', onAbort)).catch(() => {});

  let iterated = false;
  async function* readAll(): AsyncGenerator<Uint8Array> {
    let bytes = 0;
    let ok = false;
    try {
      // One reused buffer (a new one per read is garbage V8 collects only after tens of MiB).
      for await (const chunk of readHandleReusing(fh, { pieceBytes: FILE_READ_CHUNK })) {
        if (closing) break;
        bytes += chunk.length;
        if (bytes > expectedBytes) throw new SourceSizeMismatchError(name, expectedBytes, bytes, false);
        yield chunk;
      }
      if (closing) throw signal?.aborted ? abortError(name, signal) : new SourceClosedError(name, `${name}: closed before it was read to the end`);
      if (bytes !== expectedBytes) throw new SourceSizeMismatchError(name, expectedBytes, bytes, true);
      ok = true;
      done.resolve();
    } catch (err) {
      const error =
        err instanceof SourceError
          ? err
          : closing
            ? new SourceClosedError(name, `${name}: closed before it was read to the end`)
            : new SourceFailedError(name, `${name}: read failed after ${bytes} bytes: ${(err as Error).message}`, { program: 'read', cause: err });
      done.reject(error);
      throw error;
    } finally {
      if (!ok) await close();
      else await fh.close().catch(() => {});
    }
  }
  const stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      if (iterated) throw new SourceError(name, `${name}: the stream can be read only once`);
      iterated = true;
      return readAll();
    },
  };
  return { stream, expectedBytes, done: done.promise, close };
}

/** Size in bytes of the block device behind an opened node. */
export async function blockDeviceSize(name: string, path: string, info: BigIntStats): Promise<number> {
  const dev = info.rdev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const sysfs = `/sys/dev/block/${major}:${minor}/size`;
  try {
    const sectors = (await readFile(sysfs, 'utf8')).trim();
    if (/^\d+$/.test(sectors)) return Number(BigInt(sectors) * 512n);
  } catch {
    // no sysfs (a container without /sys): ask blockdev
  }
  try {
    const { stdout } = await execFileAsync('blockdev', ['--getsize64', path]);
    if (/^\d+$/.test(stdout.trim())) return Number(stdout.trim());
    throw new Error(`blockdev printed ${JSON.stringify(stdout.trim())}`);
  } catch (err) {
    throw new SourceFailedError(
      name,
      `${name}: cannot find the size of block device ${path} (${major}:${minor}): neither ${sysfs} nor blockdev --getsize64 answered: ${(err as Error).message}`,
      {
        program: 'blockdev',
        cause: err,
      },
    );
  }
}

/** The first `length` bytes of a file (fewer when it is shorter). */
export async function readHead(path: string, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
