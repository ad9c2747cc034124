/**
 * A snapshot's ordered chunk list, split into pages of at most PAGE_CHUNKS records so
 * that neither writing nor restoring ever holds a whole list (a 1 TiB image at 64 KiB is
 * 16M chunks): pages are separate content-named objects, and the manifest lists them with
 * their logical offsets, which also lets a byte-range restore go straight to its page.
 * Layout: docs/format.md, "Chunk-list pages".
 */
import { contentKey } from '../content-key.js';
import { ObjectFormatError } from '../format-error.js';

export const PAGE_MAGIC = Buffer.from('HOARDCL1', 'ascii');
export const PAGE_VERSION = 1;
export const PAGE_CHUNKS = 65536;
export const CHUNK_RECORD_BYTES = 37;
const PAGE_HEADER_BYTES = 16;
const FLAG_ZERO = 1;

export interface ChunkRef {
  length: number;
  /** All-zero chunk: not stored; its fingerprint field is all zero bytes. */
  zero: boolean;
  fingerprint: Uint8Array;
}

export class ChunkListFormatError extends ObjectFormatError {
  override readonly name = 'ChunkListFormatError';
  constructor(object: string, reason: string) {
    super('chunk list', object, reason);
  }
}

export function pageKey(bytes: Uint8Array): string {
  return contentKey('chunklists', bytes);
}

const ZERO_FP = new Uint8Array(32);

/** A whole page at once (the same bytes as PageBuilder, which writes them). */
export function encodePage(chunks: readonly ChunkRef[]): { key: string; bytes: Uint8Array; logicalBytes: number } {
  if (chunks.length > PAGE_CHUNKS) throw new RangeError(`a page holds at most ${PAGE_CHUNKS} chunks, got ${chunks.length}`);
  const builder = new PageBuilder();
  for (const c of chunks) builder.add(c.length, c.zero, c.fingerprint);
  const { key, bytes, logicalBytes } = builder.finish();
  return { key, bytes, logicalBytes };
}

/**
 * A page written record by record as chunks arrive (encodePage uses it for a whole list), without an object and a fingerprint copy per chunk held until the page is
 * full (a 65,536-chunk page of objects was ~10 MiB of heap; its records are 2.4 MiB).
 * The buffer starts small and doubles, so a small snapshot's page stays small.
 */
export class PageBuilder {
  private buffer = Buffer.allocUnsafe(PAGE_HEADER_BYTES + 1024 * CHUNK_RECORD_BYTES);
  private used = PAGE_HEADER_BYTES;
  /** Chunks in the page so far. */
  count = 0;
  logicalBytes = 0;

  get full(): boolean {
    return this.count === PAGE_CHUNKS;
  }

  add(length: number, zero: boolean, fingerprint: Uint8Array): void {
    if (this.count === PAGE_CHUNKS) throw new RangeError(`a page holds at most ${PAGE_CHUNKS} chunks`);
    if (this.used + CHUNK_RECORD_BYTES > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(PAGE_HEADER_BYTES + PAGE_CHUNKS * CHUNK_RECORD_BYTES, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.used);
      this.buffer = grown;
    }
    const o = this.used;
    this.buffer.writeUInt32LE(length, o);
    this.buffer[o + 4] = zero ? FLAG_ZERO : 0;
    this.buffer.set(zero ? ZERO_FP : fingerprint.subarray(0, 32), o + 5);
    this.used += CHUNK_RECORD_BYTES;
    this.count++;
    this.logicalBytes += length;
  }

  /** The page's bytes (a copy of exactly its size) and name; the builder starts a new page. */
  finish(): { key: string; bytes: Uint8Array; logicalBytes: number; chunks: number } {
    PAGE_MAGIC.copy(this.buffer, 0);
    this.buffer.writeUInt16LE(PAGE_VERSION, 8);
    this.buffer.writeUInt16LE(0, 10);
    this.buffer.writeUInt32LE(this.count, 12);
    const bytes = Buffer.from(this.buffer.subarray(0, this.used));
    const page = { key: pageKey(bytes), bytes, logicalBytes: this.logicalBytes, chunks: this.count };
    this.used = PAGE_HEADER_BYTES;
    this.count = 0;
    this.logicalBytes = 0;
    return page;
  }
}

export function decodePage(key: string, bytes: Uint8Array): ChunkRef[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (pageKey(b) !== key) throw new ChunkListFormatError(key, 'content does not match its name (BLAKE3)');
  if (b.length < PAGE_HEADER_BYTES || !b.subarray(0, 8).equals(PAGE_MAGIC)) throw new ChunkListFormatError(key, 'no HOARDCL1 header');
  const version = b.readUInt16LE(8);
  if (version !== PAGE_VERSION) throw new ChunkListFormatError(key, `format version ${version}, this build reads ${PAGE_VERSION}`);
  const count = b.readUInt32LE(12);
  if (count > PAGE_CHUNKS || b.length !== PAGE_HEADER_BYTES + count * CHUNK_RECORD_BYTES) {
    throw new ChunkListFormatError(key, `header says ${count} chunks, the object has room for ${(b.length - PAGE_HEADER_BYTES) / CHUNK_RECORD_BYTES}`);
  }
  const chunks: ChunkRef[] = [];
  for (let i = 0, o = PAGE_HEADER_BYTES; i < count; i++, o += CHUNK_RECORD_BYTES) {
    const flags = b.readUInt8(o + 4);
    if (flags & ~FLAG_ZERO) throw new ChunkListFormatError(key, `chunk ${i} has unknown flags ${flags}`);
    chunks.push({ length: b.readUInt32LE(o), zero: (flags & FLAG_ZERO) !== 0, fingerprint: Uint8Array.from(b.subarray(o + 5, o + 37)) });
  }
  return chunks;
}
