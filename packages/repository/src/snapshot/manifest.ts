/**
 * Snapshot manifests: the immutable record of one backup (written last, after every pack,
 * index segment and chunk-list page it references is durable: invariant 1). The metadata
 * is a small JSON document; the chunk list lives in pages (chunk-list.ts). Layout:
 * docs/format.md, "Snapshot manifests".
 *
 * Key: snapshots/<job>/<finished, yyyymmddThhmmssZ>-<first 16 hex of BLAKE3(manifest)>,
 * so a listing by prefix gives one job's snapshots in time order without reading them,
 * and the name still derives from the content (invariant 2).
 */
import { JOB_NAME } from '@hoard/errors';
import { blake3 } from '@napi-rs/blake-hash';
import type { ChunkerSpec } from '@hoard/chunker';
import type { ErrorCode } from '@hoard/errors';
import { ObjectFormatError } from '../format-error.js';

export const MANIFEST_MAGIC = Buffer.from('HOARDSN1', 'ascii');
export const MANIFEST_VERSION = 1;
export const PAGE_REF_BYTES = 8 + 8 + 4 + 32;

export type SourceKind = 'file' | 'block-device' | 'stream' | 'directory';

export interface SnapshotMeta {
  job: string;
  source: { name: string; kind: SourceKind };
  /** ISO-8601 UTC. */
  startedAt: string;
  finishedAt: string;
  logicalBytes: number;
  /** BLAKE3-256 (keyed in encrypted stores) of the whole stream, hex. */
  streamHash: string;
  /**
   * What streamHash covers: the stream's bytes (absent, the default) or its chunk list
   * ("chunks", see hashChunkRef), for streams whose unchanged parts were not read again.
   */
  streamHashOver?: 'chunks';
  /** Key of the previous snapshot of this job and source, if any. */
  parent: string | null;
  /** The fingerprint store (16-byte id, hex). */
  store: string;
  chunker: ChunkerSpec;
  chunkCount: number;
  /**
   * Image sources (file:, vm:, not block devices): the image file's stat when it was
   * read, so the next incremental run can tell it is unchanged (docs/format.md). Absent
   * in older manifests and for other sources.
   */
  sourceStat?: SnapshotSourceStat;
  /**
   * A copy made by `hoard sync`: the snapshot it is a copy of, in the repository where it
   * was first written (a copy of a copy keeps the first origin). Sync matches snapshots
   * by it, so a second sync copies nothing (docs/sync.md). Absent in original snapshots.
   */
  origin?: SnapshotOrigin;
}

/** Where a copied snapshot was first written: the repository's config id and the manifest key there. */
export interface SnapshotOrigin {
  repository: string;
  snapshot: string;
}

/** `stat` of a source file: size, modification time (ns since the epoch), inode, device; 64-bit values as decimal strings. */
export interface SnapshotSourceStat {
  size: number;
  mtimeNs: string;
  ino: string;
  dev: string;
}

export interface PageRef {
  /** Logical offset of the page's first chunk in the stream. */
  offset: number;
  logicalBytes: number;
  chunks: number;
  /** BLAKE3 name of the page object (chunklists/<h[0:2]>/<h>). */
  hash: Uint8Array;
}

export interface Manifest {
  meta: SnapshotMeta;
  pages: PageRef[];
}

export class ManifestFormatError extends ObjectFormatError {
  override readonly name = 'ManifestFormatError';
  constructor(object: string, reason: string) {
    super('snapshot', object, reason);
  }
}

export class InvalidJobNameError extends Error {
  override readonly name = 'InvalidJobNameError';
  readonly code: ErrorCode = 'invalid_name';
  constructor(readonly job: string) {
    super(`invalid job name ${JSON.stringify(job)}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

export function validateJobName(job: string): void {
  if (typeof job !== 'string' || !JOB_NAME.regex.test(job)) throw new InvalidJobNameError(String(job));
}

/** 2026-11-20T03:00:00.000Z -> 20261120T030000Z: sorts by time inside a job prefix. */
export function compactTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not an ISO-8601 time: ${iso}`);
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function encodeManifest(manifest: Manifest): { key: string; bytes: Uint8Array } {
  validateJobName(manifest.meta.job);
  const json = Buffer.from(JSON.stringify(manifest.meta), 'utf8');
  const out = Buffer.alloc(16 + json.length + 4 + manifest.pages.length * PAGE_REF_BYTES);
  MANIFEST_MAGIC.copy(out, 0);
  out.writeUInt16LE(MANIFEST_VERSION, 8);
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  let o = 16 + json.length;
  out.writeUInt32LE(manifest.pages.length, o);
  o += 4;
  for (const p of manifest.pages) {
    out.writeBigUInt64LE(BigInt(p.offset), o);
    out.writeBigUInt64LE(BigInt(p.logicalBytes), o + 8);
    out.writeUInt32LE(p.chunks, o + 16);
    out.set(p.hash, o + 20);
    o += PAGE_REF_BYTES;
  }
  const hash = blake3(out).toString('hex');
  return { key: `snapshots/${manifest.meta.job}/${compactTime(manifest.meta.finishedAt)}-${hash.slice(0, 16)}`, bytes: out };
}

export function decodeManifest(key: string, bytes: Uint8Array): Manifest {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const suffix = key.slice(key.lastIndexOf('-') + 1);
  if (!/^[0-9a-f]{16}$/.test(suffix) || blake3(b).toString('hex').slice(0, 16) !== suffix) {
    throw new ManifestFormatError(key, 'content does not match its name (BLAKE3)');
  }
  if (b.length < 20 || !b.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new ManifestFormatError(key, 'no HOARDSN1 header');
  const version = b.readUInt16LE(8);
  if (version !== MANIFEST_VERSION) throw new ManifestFormatError(key, `format version ${version}, this build reads ${MANIFEST_VERSION}`);
  const jsonLength = b.readUInt32LE(12);
  if (16 + jsonLength + 4 > b.length) throw new ManifestFormatError(key, 'metadata runs past the end');
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(b.subarray(16, 16 + jsonLength).toString('utf8')) as SnapshotMeta;
  } catch {
    throw new ManifestFormatError(key, 'metadata is not valid JSON');
  }
  let o = 16 + jsonLength;
  const count = b.readUInt32LE(o);
  o += 4;
  if (o + count * PAGE_REF_BYTES !== b.length) throw new ManifestFormatError(key, `says ${count} pages, the object does not match`);
  const pages: PageRef[] = [];
  let expected = 0;
  let chunks = 0;
  for (let i = 0; i < count; i++, o += PAGE_REF_BYTES) {
    const page: PageRef = {
      offset: Number(b.readBigUInt64LE(o)),
      logicalBytes: Number(b.readBigUInt64LE(o + 8)),
      chunks: b.readUInt32LE(o + 16),
      hash: Uint8Array.from(b.subarray(o + 20, o + 52)),
    };
    if (page.offset !== expected) throw new ManifestFormatError(key, `page ${i} starts at ${page.offset}, expected ${expected}`);
    expected += page.logicalBytes;
    chunks += page.chunks;
    pages.push(page);
  }
  if (expected !== meta.logicalBytes || chunks !== meta.chunkCount) {
    throw new ManifestFormatError(key, `pages cover ${expected} bytes in ${chunks} chunks, the metadata says ${meta.logicalBytes} in ${meta.chunkCount}`);
  }
  return { meta, pages };
}
