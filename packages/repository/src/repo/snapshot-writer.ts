/**
 * Builds one snapshot: collects chunk references in stream order, uploads a chunk-list
 * page each time one fills, and at the end writes the manifest. The caller must make
 * every referenced blob durable before commit() (invariant 1); the embedded backup and
 * the media server's sessions both do that through their StoreWriter.
 *
 * Memory: one page of references (at most PAGE_CHUNKS records of 37 bytes, written as
 * they come: PageBuilder), whatever the stream's length.
 */
import type { ChunkerSpec } from '@hoard/chunker';
import { hashOfContentKey } from '../content-key.js';
import { PageBuilder } from '../snapshot/chunk-list.js';
import { encodeManifest, type PageRef, type SnapshotMeta } from '../snapshot/manifest.js';
import type { ObjectStore } from '../store/object-store.js';
import { commitGuarded, withdrawManifest } from '../gc/commit-guard.js';
import { snapshotId, type SnapshotInfo } from './repository.js';

export class SnapshotWriter {
  private readonly pages: PageRef[] = [];
  private readonly page = new PageBuilder();
  private pageOffset = 0;
  private readonly writes: Promise<void>[] = [];
  private failure: unknown;
  /** Chunks and bytes referenced so far. */
  chunks = 0;
  logicalBytes = 0;

  constructor(private readonly objects: ObjectStore) {}

  /** Appends a reference (its fingerprint is copied into the page: the caller may reuse its memory). */
  add(length: number, zero: boolean, fingerprint: Uint8Array): void {
    this.page.add(length, zero, fingerprint);
    this.chunks++;
    this.logicalBytes += length;
    if (this.page.full) this.flushPage();
  }

  /**
   * Writes the last page and the manifest; returns the new snapshot. With `packs` (the
   * names of every pack the snapshot's blobs are in) the manifest write is wrapped in the
   * commit check against a concurrent GC (gc/commit-guard.ts, docs/gc.md).
   */
  async commit(
    meta: Omit<SnapshotMeta, 'chunkCount' | 'logicalBytes'>,
    options: { packs?: () => Iterable<Uint8Array>; now?: () => number } = {},
  ): Promise<SnapshotInfo> {
    if (this.page.count > 0 || this.pages.length === 0) this.flushPage();
    await Promise.all(this.writes.splice(0));
    if (this.failure !== undefined) throw this.failure;
    const full: SnapshotMeta = { ...meta, chunker: manifestChunker(meta.chunker), logicalBytes: this.logicalBytes, chunkCount: this.chunks };
    const manifest = encodeManifest({ meta: full, pages: this.pages });
    const put = async () => {
      await putManifest(this.objects, manifest.key, manifest.bytes);
      return manifest.key;
    };
    // `now` must be the clock the GC uses (revival windows are compared against it).
    if (options.packs) await commitGuarded(this.objects, { packs: options.packs(), pages: this.pages.map((p) => p.hash) }, put, options.now);
    else await put();
    return { id: snapshotId(manifest.key), key: manifest.key, meta: full };
  }

  /** Waits for page uploads without throwing (the snapshot is abandoned). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.writes);
  }

  private flushPage(): void {
    const encoded = this.page.finish();
    this.pages.push({ offset: this.pageOffset, logicalBytes: encoded.logicalBytes, chunks: encoded.chunks, hash: hashOfContentKey(encoded.key) });
    this.pageOffset += encoded.logicalBytes;
    this.writes.push(
      this.objects.putIfAbsent(encoded.key, encoded.bytes).then(
        () => undefined,
        (err: unknown) => {
          this.failure ??= err;
        },
      ),
    );
  }
}

/**
 * Puts a manifest. A put that fails may still have landed: the server stored the object
 * and the answer was lost (a connection reset), with no attempt left to find the object
 * there. So a failed put asks: a manifest that is there is committed, and the backup goes
 * on to its check; one that is not was never committed. If even that cannot be learnt,
 * the manifest is withdrawn, so that a backup that fails has committed nothing.
 */
async function putManifest(objects: ObjectStore, key: string, bytes: Uint8Array): Promise<void> {
  try {
    await objects.putIfAbsent(key, bytes);
  } catch (err) {
    let there: boolean;
    try {
      there = (await objects.head(key))?.size === bytes.byteLength;
    } catch {
      await withdrawManifest(objects, key, err);
      throw err;
    }
    if (!there) throw err;
  }
}

/** The chunker spec as the manifest records it: an encrypted store's seed is a secret. */
export function manifestChunker(spec: ChunkerSpec): ChunkerSpec {
  if (spec.kind !== 'fastcdc' || spec.seed === undefined) return spec;
  const { seed: _secret, ...rest } = spec;
  return { ...rest, seeded: true } as ChunkerSpec;
}
