/**
 * Restoring directory archives (format: dir-archive.ts, docs/format.md): the whole tree
 * into a directory, or one file out of it.
 *
 * The archive is read through ranged reads (`ArchiveSource`), so this works the same on
 * a repository and through the media server:
 *   1. the 32-byte trailer, then the entry table (held in memory: ~100 bytes per entry);
 *   2. the tree: the whole stream once, from offset 0, so whoever serves it checks the
 *      whole-stream hash as well as every chunk; file contents are written as they
 *      arrive, and the table that follows is compared with the one read in step 1.
 *   One file: its content range only (every chunk is still checked).
 *
 * The tree is built in `<target>.partial` and renamed into place at the end: a restore
 * that fails leaves no half tree under the name asked for.
 */
import { constants } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, open, rename, rm, symlink, utimes } from 'node:fs/promises';
import type { ErrorCode } from '@hoard/errors';
import {
  ARCHIVE_TRAILER_BYTES,
  ArchiveFormatError,
  EntryTableParser,
  decodeArchiveTrailer,
  printablePath,
  type ArchiveTrailer,
  type DirEntry,
} from './dir-archive.js';

/** Ranged reads of an archive stream; each read yields exactly `length` bytes or throws. */
export interface ArchiveSource {
  /** Names the snapshot in errors. */
  readonly snapshot: string;
  /** The archive's total length (the snapshot's logical bytes). */
  readonly length: number;
  read(offset: number, length: number): AsyncIterable<Uint8Array>;
}

export interface ArchiveIndex {
  trailer: ArchiveTrailer;
  entries: DirEntry[];
}

export interface ExtractResult {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/** The directory a restore builds in already exists; it is never removed for the user. */
export class ArchiveTargetExistsError extends Error {
  override readonly name = 'ArchiveTargetExistsError';
  readonly code: ErrorCode = 'target_exists';
}

/** A file that was asked for is not in the archive, or is not a regular file. */
export class ArchiveEntryNotFoundError extends Error {
  override readonly name = 'ArchiveEntryNotFoundError';
  readonly code: ErrorCode = 'archive_entry_not_found';
}

export async function readArchiveIndex(source: ArchiveSource): Promise<ArchiveIndex> {
  const entries: DirEntry[] = [];
  const trailer = await readArchiveEntries(source, (e) => void entries.push(e));
  return { trailer, entries };
}

/**
 * Reads the trailer, then streams the entry table to `each`, checked (EntryTableParser);
 * for callers that keep only part of each entry.
 */
export async function readArchiveEntries(source: ArchiveSource, each: (entry: DirEntry) => void): Promise<ArchiveTrailer> {
  if (source.length < ARCHIVE_TRAILER_BYTES) throw new ArchiveFormatError(source.snapshot, `${source.length} bytes is too short for a directory archive`);
  const trailer = decodeArchiveTrailer(
    source.snapshot,
    await collect(source.read(source.length - ARCHIVE_TRAILER_BYTES, ARCHIVE_TRAILER_BYTES)),
    source.length,
  );
  const parser = new EntryTableParser(source.snapshot, trailer);
  for await (const piece of source.read(trailer.tableOffset, trailer.tableBytes)) for (const e of parser.push(piece)) each(e);
  parser.end();
  return trailer;
}

/** Normalizes a path as asked for by a user ("./etc/hosts", "/etc/hosts") to the form recorded. */
export function archivePath(path: string): Buffer {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return Buffer.from(parts.length === 0 ? '.' : parts.join('/'));
}

export function findEntry(index: ArchiveIndex, path: string, snapshot: string): DirEntry {
  const want = archivePath(path);
  const entry = index.entries.find((e) => e.path.equals(want));
  if (!entry)
    throw new ArchiveEntryNotFoundError(`${path} is not in snapshot ${snapshot} (paths are relative to the directory that was backed up, e.g. etc/hosts)`);
  return entry;
}

/** Streams one regular file's content out of the archive. */
export function readArchiveFile(source: ArchiveSource, entry: DirEntry): AsyncIterable<Uint8Array> {
  if (entry.type !== 'file')
    throw new ArchiveEntryNotFoundError(
      `${printablePath(entry.path)} is a ${entry.type === 'dir' ? 'directory' : 'symlink'}, not a file; restore the whole snapshot, or name a file in it`,
    );
  return entry.size === 0 ? empty() : source.read(entry.offset, entry.size);
}

/**
 * Restores the whole tree to `target`, which must not exist. Owners are restored when
 * running as root; permissions and modification times always.
 */
export async function extractArchive(
  source: ArchiveSource,
  target: string,
  options: { index?: ArchiveIndex; onProgress?: (bytes: number) => void } = {},
): Promise<ExtractResult> {
  const index = options.index ?? (await readArchiveIndex(source));
  const partial = `${target}.partial`;
  try {
    await mkdir(partial, { recursive: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ArchiveTargetExistsError(`${partial} exists (left by an interrupted restore?): remove it, or restore elsewhere`);
    throw err;
  }
  const base = Buffer.from(partial);
  const at = (e: DirEntry): Buffer => (e.path.equals(DOT) ? base : Buffer.concat([base, SLASH, e.path]));
  const result: ExtractResult = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const asRoot = process.getuid?.() === 0;
  try {
    const reader = new ByteReader(source.read(0, source.length)[Symbol.asyncIterator]());
    for (const e of index.entries) {
      const path = at(e);
      if (e.type === 'dir') {
        if (!e.path.equals(DOT)) await mkdir(path);
        result.directories++;
      } else if (e.type === 'symlink') {
        await symlink(e.target ?? Buffer.alloc(0), path);
        result.symlinks++;
      } else {
        const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          for await (const piece of reader.take(e.size)) {
            await fh.write(piece);
            result.bytes += piece.length;
            options.onProgress?.(result.bytes);
          }
        } finally {
          await fh.close();
        }
        result.files++;
      }
    }
    // The rest of the stream is the table and trailer: reading it to the end lets the
    // server check the whole-stream hash; it must match what step 1 read.
    const tail = await collect(reader.take(source.length - index.trailer.tableOffset));
    const check = new EntryTableParser(source.snapshot, index.trailer);
    let i = 0;
    for (const e of check.push(tail.subarray(0, index.trailer.tableBytes))) {
      if (!e.path.equals(index.entries[i++]!.path))
        throw new ArchiveFormatError(source.snapshot, 'the entry table read with the stream differs from the one read first');
    }
    check.end();
    await reader.end();
    // Metadata last, deepest first: writing into a directory changes its mtime, and a
    // read-only directory would refuse its children.
    for (let k = index.entries.length - 1; k >= 0; k--) {
      const e = index.entries[k]!;
      const path = at(e);
      const seconds = Number(e.mtimeNs / 1000n) / 1e6;
      if (asRoot) await lchown(path, e.uid, e.gid).catch(() => undefined);
      if (e.type === 'symlink') {
        await lutimes(path, seconds, seconds).catch(() => undefined);
      } else {
        await chmod(path, e.mode);
        await utimes(path, seconds, seconds);
      }
    }
    await rename(partial, target);
  } catch (err) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return result;
}

const DOT = Buffer.from('.');
const SLASH = Buffer.from('/');

/** Pulls exact byte counts out of a stream of pieces. */
class ByteReader {
  private rest: Uint8Array | undefined;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  async *take(n: number): AsyncGenerator<Uint8Array> {
    while (n > 0) {
      if (!this.rest || this.rest.length === 0) {
        const next = await this.it.next();
        if (next.done) throw new Error(`the archive stream ended ${n} bytes early`);
        this.rest = next.value;
      }
      const piece = this.rest.length <= n ? this.rest : this.rest.subarray(0, n);
      this.rest = this.rest.subarray(piece.length);
      n -= piece.length;
      yield piece;
    }
  }

  /** The stream must be exhausted; reading on lets the producer finish its checks. */
  async end(): Promise<void> {
    if (this.rest && this.rest.length > 0) throw new Error('the archive stream runs past its trailer');
    const next = await this.it.next();
    if (!next.done) throw new Error('the archive stream runs past its trailer');
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}

async function* empty(): AsyncGenerator<Uint8Array> {}
