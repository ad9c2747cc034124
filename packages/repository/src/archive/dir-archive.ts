/**
 * Directory archives: how a `dir:` source becomes one stream (docs/format.md,
 * "Directory archives").
 *
 *   content of every regular file, in entry order, back to back
 *   entry table: one record per file, directory and symlink (metadata + content offset)
 *   trailer (32 bytes): where the table starts, how many entries, how long it is
 *
 * Metadata sits at the end, not in front of each file, so a file's content is a clean
 * run of chunks (the agent chunks each file on its own): an unchanged file can be
 * referenced again by its previous chunks without being read, and one file can be
 * restored with two small range reads (trailer, table) and one of its content.
 */
import { ObjectFormatError } from '../format-error.js';

export const ARCHIVE_TRAILER_MAGIC = Buffer.from('HDIRTRL1', 'ascii');
export const ARCHIVE_TRAILER_BYTES = 32;
export const ENTRY_FIXED_BYTES = 56;
/** Longest relative path recorded (bytes): more than Linux's PATH_MAX. */
export const MAX_ENTRY_PATH_BYTES = 65535;

export type EntryType = 'file' | 'dir' | 'symlink';
const TYPE_CODE: Record<EntryType, number> = { file: 1, dir: 2, symlink: 3 };
const CODE_TYPE: Record<number, EntryType> = { 1: 'file', 2: 'dir', 3: 'symlink' };

export interface DirEntry {
  type: EntryType;
  /** Relative to the archived directory, '/'-separated; the root itself is ".". Raw bytes: names need not be UTF-8. */
  path: Buffer;
  /** st_mode's permission bits (and setuid/setgid/sticky), 12 bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Regular file: content bytes in the archive; symlink: target bytes; directory: 0. */
  size: number;
  /** Regular file: where its content starts in the archive. */
  offset: number;
  /** Modification time, nanoseconds since the epoch. */
  mtimeNs: bigint;
  inode: bigint;
  dev: bigint;
  /** Symlink target (raw bytes). */
  target?: Buffer;
}

export interface ArchiveTrailer {
  tableOffset: number;
  entryCount: number;
  tableBytes: number;
}

export class ArchiveFormatError extends ObjectFormatError {
  override readonly name = 'ArchiveFormatError';
  constructor(snapshot: string, reason: string) {
    super('directory archive', snapshot, reason);
  }
}

export function encodeEntry(entry: DirEntry): Buffer {
  if (entry.path.length === 0 || entry.path.length > MAX_ENTRY_PATH_BYTES)
    throw new RangeError(`entry path of ${entry.path.length} bytes (1-${MAX_ENTRY_PATH_BYTES})`);
  const target = entry.type === 'symlink' ? (entry.target ?? Buffer.alloc(0)) : Buffer.alloc(0);
  const out = Buffer.alloc(ENTRY_FIXED_BYTES + entry.path.length + target.length);
  out.writeUInt8(TYPE_CODE[entry.type], 0);
  out.writeUInt8(0, 1);
  out.writeUInt16LE(entry.path.length, 2);
  out.writeUInt16LE(entry.mode & 0o7777, 4);
  out.writeUInt16LE(0, 6);
  out.writeUInt32LE(entry.uid >>> 0, 8);
  out.writeUInt32LE(entry.gid >>> 0, 12);
  out.writeBigUInt64LE(BigInt(entry.type === 'symlink' ? target.length : entry.size), 16);
  out.writeBigUInt64LE(BigInt(entry.offset), 24);
  out.writeBigInt64LE(entry.mtimeNs, 32);
  out.writeBigUInt64LE(entry.inode, 40);
  out.writeBigUInt64LE(entry.dev, 48);
  entry.path.copy(out, ENTRY_FIXED_BYTES);
  target.copy(out, ENTRY_FIXED_BYTES + entry.path.length);
  return out;
}

export function encodeArchiveTrailer(trailer: ArchiveTrailer): Buffer {
  const out = Buffer.alloc(ARCHIVE_TRAILER_BYTES);
  ARCHIVE_TRAILER_MAGIC.copy(out, 0);
  out.writeBigUInt64LE(BigInt(trailer.tableOffset), 8);
  out.writeBigUInt64LE(BigInt(trailer.entryCount), 16);
  out.writeBigUInt64LE(BigInt(trailer.tableBytes), 24);
  return out;
}

/** `archiveBytes`: the whole stream's length (the snapshot's logical bytes). */
export function decodeArchiveTrailer(snapshot: string, bytes: Uint8Array, archiveBytes: number): ArchiveTrailer {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length !== ARCHIVE_TRAILER_BYTES || !b.subarray(0, 8).equals(ARCHIVE_TRAILER_MAGIC)) {
    throw new ArchiveFormatError(snapshot, 'no HDIRTRL1 trailer: this snapshot is not a directory archive');
  }
  const trailer = { tableOffset: Number(b.readBigUInt64LE(8)), entryCount: Number(b.readBigUInt64LE(16)), tableBytes: Number(b.readBigUInt64LE(24)) };
  if (trailer.tableOffset + trailer.tableBytes + ARCHIVE_TRAILER_BYTES !== archiveBytes) {
    throw new ArchiveFormatError(
      snapshot,
      `the trailer puts the entry table at ${trailer.tableOffset}+${trailer.tableBytes}, which does not end where the ${archiveBytes}-byte archive's trailer starts`,
    );
  }
  return trailer;
}

/**
 * Decodes an entry table as it streams in. Checks each entry: a known type, a path that
 * stays inside the archived directory (no absolute paths, no "..", no empty or NUL
 * components: a restore must never write outside its target), and file contents that
 * follow each other from offset 0 up to the table.
 */
export class EntryTableParser {
  private pending: Buffer = Buffer.alloc(0);
  private nextOffset = 0;
  /** Directories recorded so far (latin1 keys): an entry's parent must be one of them. */
  private readonly directories = new Set<string>(['.']);
  count = 0;

  constructor(
    private readonly snapshot: string,
    private readonly trailer: ArchiveTrailer,
  ) {}

  /** Entries completed by these bytes. */
  *push(bytes: Uint8Array): Generator<DirEntry> {
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes]);
    let at = 0;
    while (this.pending.length - at >= ENTRY_FIXED_BYTES) {
      const b = this.pending;
      const pathLength = b.readUInt16LE(at + 2);
      const code = b.readUInt8(at);
      const type = CODE_TYPE[code];
      if (!type) throw new ArchiveFormatError(this.snapshot, `entry ${this.count} has unknown type ${code}`);
      const size = Number(b.readBigUInt64LE(at + 16));
      const extra = type === 'symlink' ? size : 0;
      if (extra > MAX_ENTRY_PATH_BYTES) throw new ArchiveFormatError(this.snapshot, `entry ${this.count}: symlink target of ${extra} bytes`);
      const length = ENTRY_FIXED_BYTES + pathLength + extra;
      if (b.length - at < length) break;
      const entry: DirEntry = {
        type,
        path: Buffer.from(b.subarray(at + ENTRY_FIXED_BYTES, at + ENTRY_FIXED_BYTES + pathLength)),
        mode: b.readUInt16LE(at + 4),
        uid: b.readUInt32LE(at + 8),
        gid: b.readUInt32LE(at + 12),
        size,
        offset: Number(b.readBigUInt64LE(at + 24)),
        mtimeNs: b.readBigInt64LE(at + 32),
        inode: b.readBigUInt64LE(at + 40),
        dev: b.readBigUInt64LE(at + 48),
      };
      if (type === 'symlink') entry.target = Buffer.from(b.subarray(at + ENTRY_FIXED_BYTES + pathLength, at + length));
      this.check(entry);
      at += length;
      this.count++;
      yield entry;
    }
    this.pending = this.pending.subarray(at);
  }

  /** After the last bytes: the table must end on an entry boundary with the trailer's count. */
  end(): void {
    if (this.pending.length > 0) throw new ArchiveFormatError(this.snapshot, `the entry table ends inside entry ${this.count}`);
    if (this.count !== this.trailer.entryCount)
      throw new ArchiveFormatError(this.snapshot, `the entry table holds ${this.count} entries, the trailer says ${this.trailer.entryCount}`);
    if (this.nextOffset !== this.trailer.tableOffset)
      throw new ArchiveFormatError(this.snapshot, `file contents end at ${this.nextOffset}, but the table starts at ${this.trailer.tableOffset}`);
  }

  private check(entry: DirEntry): void {
    const where = `entry ${this.count} (${printablePath(entry.path)})`;
    const reason = unsafePathReason(entry.path);
    if (reason) throw new ArchiveFormatError(this.snapshot, `${where}: ${reason}`);
    // The parent must be a directory recorded earlier, never a symlink or a file: else a
    // crafted table (symlink "a" -> /etc, then file "a/passwd") would make a restore
    // write through the link, outside its target.
    const key = entry.path.toString('latin1');
    if (key !== '.') {
      const slash = key.lastIndexOf('/');
      const parent = slash < 0 ? '.' : key.slice(0, slash);
      if (!this.directories.has(parent)) throw new ArchiveFormatError(this.snapshot, `${where}: its parent is not a directory recorded before it`);
      if (entry.type === 'dir') this.directories.add(key);
    } else if (entry.type !== 'dir' || this.count !== 0) {
      throw new ArchiveFormatError(this.snapshot, `${where}: "." must be the first entry, a directory`);
    }
    if (entry.type === 'file') {
      if (entry.offset !== this.nextOffset) throw new ArchiveFormatError(this.snapshot, `${where} starts at ${entry.offset}, expected ${this.nextOffset}`);
      this.nextOffset += entry.size;
      if (this.nextOffset > this.trailer.tableOffset) throw new ArchiveFormatError(this.snapshot, `${where} runs into the entry table`);
    }
  }
}

/** Why a recorded path could escape the restore target, or undefined when it is safe. */
export function unsafePathReason(path: Buffer): string | undefined {
  if (path.equals(ROOT)) return undefined;
  if (path.includes(0)) return 'the path contains a NUL byte';
  if (path[0] === 0x2f) return 'the path is absolute';
  for (const part of path.toString('latin1').split('/')) {
    if (part === '' || part === '.' || part === '..') return `the path has a "${part}" component`;
  }
  return undefined;
}

const ROOT = Buffer.from('.');

export function printablePath(path: Buffer): string {
  return path.toString('utf8');
}
