/**
 * `repair`: puts a repository's index back together from what the bucket still holds
 * (invariants 3 and 9; docs/repair.md).
 *
 *   list snapshots/, then index/, then stores/, then packs/ (the order verify uses: every
 *   object a listed snapshot or segment needs was already there when the later listing ran)
 *   -> segments that do not decode are damaged; packs no readable segment lists (and no GC
 *      condemnation names) have their trailers read
 *   -> those packs get new index segments (per store, up to 64 packs each), written with
 *      put-if-absent like every segment (content-named: a rebuilt segment is a new object)
 *   -> only when every new segment is durable, and every unlisted pack's trailer was read,
 *      are the damaged segments deleted
 *   -> every snapshot is checked against the rebuilt index: manifest, pages, each stored
 *      chunk in an indexed pack that exists; snapshots whose data is gone are listed, and
 *      with `forgetBroken` forgotten (their manifests deleted; protected ones are kept)
 *
 * Packs are never deleted or rewritten. Repair holds the GC lock (`gc/lock`) while it
 * changes anything, so it never runs next to a GC; a dry run takes no lock and changes
 * nothing. Backups may run meanwhile: repair only adds segments, and a pack it indexes that
 * a running backup also indexes is simply listed twice (GC and verify allow that).
 */
import { FingerprintIndex } from '@hoard/chunker';
import { contentKeyFromHash } from '../content-key.js';
import { ObjectFormatError } from '../format-error.js';
import { withGcLock } from '../gc/gc-lock.js';
import { GC_LOCK_KEY, readCondemnations } from '../gc/gc-objects.js';
import { encodeIndexSegment, packKeyFromHash, type SegmentPack } from '../index-segment/index-segment.js';
import { readPackTrailer } from '../pack/pack-reader.js';
import { decodePage, type ChunkRef } from '../snapshot/chunk-list.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll } from '../store/object-store.js';
import { mapConcurrent } from './concurrency.js';
import { decodeStoreRecord, STORES_PREFIX } from './records.js';
import { SNAPSHOTS_PREFIX, snapshotId, type Repository } from './repository.js';
import { readSegment } from './store-index.js';

export type RepairPhase = 'segments' | 'packs' | 'snapshots';

export interface RepairOptions {
  /** Report what would be done; write and delete nothing, take no lock. */
  dryRun?: boolean;
  /** Forget (delete the manifests of) snapshots whose data is gone. Protected ones are kept. */
  forgetBroken?: boolean;
  /** Remove a GC lock left by a GC or repair that died. */
  breakLock?: boolean;
  concurrency?: number;
  onProgress?: (p: { phase: RepairPhase; done: number; total: number }) => void;
}

export interface BrokenSnapshot {
  key: string;
  id: string;
  job: string;
  /** What is gone, in one line. */
  problem: string;
  /** Stored chunks no indexed pack in the bucket holds. */
  missingChunks: number;
  /** The first of them: its fingerprint and logical offset in the stream. */
  firstMissing?: { chunk: string; offset: number };
  /** Packs the snapshot needs that segments name but the bucket does not have. */
  missingPacks: string[];
  /** Chunk-list pages that are missing or damaged. */
  badPages: string[];
  protected: boolean;
}

export interface RepairReport {
  dryRun: boolean;
  segments: {
    /** Index segments that decoded. */
    readable: number;
    /** Segments that do not decode, and whether they were deleted (never before their replacements are durable). */
    damaged: { key: string; problem: string; removed: boolean }[];
    /** New segments written (with dryRun: that would be written), each with its store and packs. */
    written: { key: string; store: string; packs: number }[];
  };
  packs: {
    /** Packs under packs/. */
    total: number;
    /** Packs no readable segment listed, now indexed from their trailers (dry run: would be). */
    reindexed: string[];
    /** Packs no readable segment lists that GC has condemned: left to GC. */
    condemned: number;
    /** Packs no readable segment lists whose trailer could not be read: kept, not indexed. */
    unreadable: { key: string; problem: string }[];
    /** Packs a readable segment names that are not in the bucket (GC drops them from the segments). */
    missing: { key: string; segment: string }[];
    /** Reindexed packs whose trailer names a store that has no readable record. */
    unknownStore: { key: string; store: string }[];
  };
  snapshots: {
    checked: number;
    broken: BrokenSnapshot[];
    /** Manifests deleted by forgetBroken (dry run: that would be). */
    forgotten: string[];
    /** Broken snapshots kept although forgetBroken was given, and why. */
    kept: { key: string; reason: string }[];
  };
  notes: string[];
  /** Nothing damaged or lost is left when this run ends (a dry run changes nothing): the CLI's exit 0. */
  ok: boolean;
  durationMs: number;
}

/** Packs per rebuilt segment, as GC writes them. */
const PACKS_PER_SEGMENT = 64;
const PACK_NAME = /^packs\/[0-9a-f]{2}\/([0-9a-f]{64})$/;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export async function repair(repo: Repository, options: RepairOptions = {}): Promise<RepairReport> {
  const objects = repo.objects;
  if (options.dryRun) return new RepairRun(repo, options).run();
  return withGcLock(
    objects,
    { breakLock: options.breakLock },
    (holder) =>
      `${repo.location} is locked by ${holder} (gc/lock: a garbage collection or a repair); repair does not run next to one. ` +
      'Wait for it, or if that run is no longer alive, run repair again with --break-lock',
    () => new RepairRun(repo, options).run(),
  );
}

interface PageResult {
  missing: number;
  first?: { chunk: string; offset: number };
  missingPacks: Set<string>;
  bad?: string;
}

class RepairRun {
  private readonly started = Date.now();
  private readonly concurrency: number;
  private readonly report: RepairReport;
  /** Per store id: fingerprint -> ordinal in `packKeys`, over every pack the rebuilt index lists. */
  private readonly indexes = new Map<string, FingerprintIndex>();
  /** Packs segments name that the bucket does not have: only to name them as missing. */
  private readonly goneIndexes = new Map<string, FingerprintIndex>();
  private readonly packKeys: string[] = [];
  private readonly packOrdinals = new Map<string, number>();
  private inBucket = new Set<string>();

  constructor(
    private readonly repo: Repository,
    private readonly options: RepairOptions,
  ) {
    this.concurrency = options.concurrency ?? 8;
    this.report = {
      dryRun: Boolean(options.dryRun),
      segments: { readable: 0, damaged: [], written: [] },
      packs: { total: 0, reindexed: [], condemned: 0, unreadable: [], missing: [], unknownStore: [] },
      snapshots: { checked: 0, broken: [], forgotten: [], kept: [] },
      notes: [],
      ok: true,
      durationMs: 0,
    };
  }

  async run(): Promise<RepairReport> {
    const objects = this.repo.objects;
    const r = this.report;
    if (this.options.dryRun && (await objects.head(GC_LOCK_KEY))) {
      r.notes.push('gc/lock is held: a garbage collection or repair is running, and what it changes meanwhile may show up here');
    }
    // Listing order: snapshots, segments, stores, packs (see the module comment).
    const snapshotKeys = await this.keys(SNAPSHOTS_PREFIX);
    const segmentKeys = await this.keys('index/');

    const listed = new Map<string, string>(); // pack hex -> a segment that lists it
    await this.readSegments(segmentKeys, undefined, (key, problem) => r.segments.damaged.push({ key, problem, removed: false }), listed);

    const storeNames = new Map<string, string>(); // id -> name
    for await (const info of listAll(objects, STORES_PREFIX)) {
      try {
        const record = decodeStoreRecord(info.key, await objects.get(info.key));
        storeNames.set(record.id, record.name);
      } catch (err) {
        if (err instanceof ObjectFormatError) r.notes.push(`${err.message} (repair does not rebuild store records; restore it from a copy of the bucket)`);
        else if (!(err instanceof ObjectNotFoundError)) throw err;
      }
    }

    const packKeys: string[] = [];
    for await (const info of listAll(objects, 'packs/')) if (PACK_NAME.test(info.key)) packKeys.push(info.key);
    r.packs.total = packKeys.length;
    this.inBucket = new Set(packKeys);
    for (const [h, segment] of listed) {
      const key = packKeyFromHash(Buffer.from(h, 'hex'));
      // Listed after the packs/ listing ran? A backup may have written it since.
      if (!this.inBucket.has(key) && !(await objects.head(key))) r.packs.missing.push({ key, segment });
      else this.inBucket.add(key);
    }
    if (r.packs.missing.length > 0) {
      // The first copy of a blob wins in an index; where that copy's pack is gone, another
      // pack may still hold the blob. Index again without the missing packs (they are kept
      // aside only to name them).
      this.indexes.clear();
      await this.readSegments(segmentKeys, new Set(r.packs.missing.map((m) => m.key)));
    }

    // Packs no readable segment lists: their trailers.
    const unlisted = packKeys.filter((key) => !listed.has(key.slice(key.lastIndexOf('/') + 1)));
    let condemned = new Set<string>();
    if (unlisted.length > 0) {
      try {
        for (const c of (await readCondemnations(objects)).items.values()) if (c.kind === 'pack') condemned.add(c.hash);
      } catch (err) {
        condemned = new Set();
        r.notes.push(`the GC condemnation lists cannot be read (${(err as Error).message}): packs they may name are indexed again`);
      }
    }
    const byStore = new Map<string, SegmentPack[]>();
    let done = 0;
    const toRead = unlisted.filter((key) => !condemned.has(key.slice(key.lastIndexOf('/') + 1)));
    r.packs.condemned = unlisted.length - toRead.length;
    await mapConcurrent(
      toRead,
      this.concurrency,
      async (key) => {
        try {
          return await readPackTrailer(objects, key);
        } catch (err) {
          if (err instanceof ObjectFormatError || err instanceof ObjectNotFoundError) return err;
          throw err;
        }
      },
      (trailer, key) => {
        this.progress('packs', ++done, toRead.length);
        if (trailer instanceof ObjectNotFoundError || (trailer instanceof ObjectFormatError && trailer.reason === 'no such object')) return; // gone since the listing
        if (trailer instanceof ObjectFormatError) {
          r.packs.unreadable.push({ key, problem: trailer.reason });
          return;
        }
        const storeId = hex(trailer.storeId);
        if (!storeNames.has(storeId)) r.packs.unknownStore.push({ key, store: storeId });
        r.packs.reindexed.push(key);
        const packs = byStore.get(storeId) ?? [];
        packs.push({ packHash: Uint8Array.from(Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex')), entries: trailer.entries });
        byStore.set(storeId, packs);
        this.indexPack(this.indexes, storeId, key, trailer.entries);
      },
    );

    // New segments, then (only when they are all durable) the damaged ones go.
    const damagedKeys = new Set(r.segments.damaged.map((d) => d.key));
    const writes: Promise<void>[] = [];
    for (const [storeId, packs] of byStore) {
      for (let i = 0; i < packs.length; i += PACKS_PER_SEGMENT) {
        const { key, bytes } = encodeIndexSegment({ storeId: Buffer.from(storeId, 'hex'), packs: packs.slice(i, i + PACKS_PER_SEGMENT) });
        r.segments.written.push({ key, store: storeNames.get(storeId) ?? storeId, packs: Math.min(PACKS_PER_SEGMENT, packs.length - i) });
        if (!this.options.dryRun) writes.push(this.writeSegment(key, bytes, damagedKeys.has(key)));
      }
    }
    await Promise.all(writes);
    const rewritten = new Set(r.segments.written.map((w) => w.key));
    if (r.segments.damaged.length > 0) {
      if (r.packs.unreadable.length > 0) {
        r.notes.push(
          `the damaged index segment(s) are kept: ${r.packs.unreadable.length} pack(s) no readable segment lists have a damaged trailer, and a damaged segment may be all that describes them`,
        );
      } else if (!this.options.dryRun) {
        // A rebuilt segment can have exactly the original's bytes, hence its name: that one
        // was replaced in place above and must not be deleted now.
        await objects.deleteMany(r.segments.damaged.filter((d) => !rewritten.has(d.key)).map((d) => d.key));
        for (const d of r.segments.damaged) d.removed = true;
      }
    }

    await this.checkSnapshots(snapshotKeys, storeNames);

    if (this.options.forgetBroken && r.snapshots.broken.length > 0) await this.forgetBroken();

    // Damage still there when this run ends (a dry run changes nothing).
    const segmentsLeft = r.segments.damaged.some((d) => !d.removed);
    const brokenLeft = r.snapshots.broken.some((b) => this.options.dryRun || !r.snapshots.forgotten.includes(b.key));
    r.ok = !segmentsLeft && !brokenLeft && r.packs.unreadable.length === 0;
    r.durationMs = Date.now() - this.started;
    return r;
  }

  /**
   * Reads the segments into the per-store indexes. First pass: `onDamaged` and `listed`
   * collect what is damaged and which packs are listed. `gone`: packs not in the bucket,
   * indexed into `goneIndexes` instead, consulted only for blobs no other pack has.
   */
  private async readSegments(
    keys: string[],
    gone: Set<string> | undefined,
    onDamaged?: (key: string, problem: string) => void,
    listed?: Map<string, string>,
  ): Promise<void> {
    let done = 0;
    await mapConcurrent(
      keys,
      this.concurrency,
      async (key) => {
        try {
          return await readSegment(this.repo.objects, key);
        } catch (err) {
          if (err instanceof ObjectNotFoundError) return undefined; // deleted since the listing
          throw err;
        }
      },
      (segment, key) => {
        this.progress('segments', ++done, keys.length);
        if (segment === undefined) return;
        if (segment instanceof ObjectFormatError) {
          onDamaged?.(key, segment.reason);
          return;
        }
        if (listed) this.report.segments.readable++;
        const storeId = hex(segment.storeId);
        for (const p of segment.packs) {
          const h = hex(p.packHash);
          if (listed && !listed.has(h)) listed.set(h, key);
          const packKey = packKeyFromHash(p.packHash);
          this.indexPack(gone?.has(packKey) ? this.goneIndexes : this.indexes, storeId, packKey, p.entries);
        }
      },
    );
  }

  /**
   * Writes a rebuilt segment (put-if-absent). When the name is taken by a damaged object (the
   * rebuilt segment has the original's bytes, so its name), the damaged bytes are deleted
   * and the segment written again: the packs stay readable from their trailers meanwhile.
   */
  private async writeSegment(key: string, bytes: Uint8Array, damaged: boolean): Promise<void> {
    const objects = this.repo.objects;
    if (await objects.putIfAbsent(key, bytes)) return;
    const existing = damaged
      ? undefined
      : await objects.get(key).catch((err: unknown) => (err instanceof ObjectNotFoundError ? undefined : Promise.reject(err)));
    if (existing && Buffer.from(existing).equals(Buffer.from(bytes))) return;
    await objects.deleteMany([key]);
    if (!(await objects.putIfAbsent(key, bytes))) throw new Error(`index segment ${key} could not be written again after its damaged copy was removed`);
  }

  private async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const info of listAll(this.repo.objects, prefix)) keys.push(info.key);
    return keys;
  }

  private progress(phase: RepairPhase, done: number, total: number): void {
    this.options.onProgress?.({ phase, done, total });
  }

  private indexPack(indexes: Map<string, FingerprintIndex>, storeId: string, packKey: string, entries: readonly { fingerprint: Uint8Array }[]): void {
    let ordinal = this.packOrdinals.get(packKey);
    if (ordinal === undefined) {
      ordinal = this.packKeys.push(packKey) - 1;
      this.packOrdinals.set(packKey, ordinal);
    }
    let index = indexes.get(storeId);
    if (!index) {
      index = new FingerprintIndex({ valueWords: 1 });
      indexes.set(storeId, index);
    }
    const v = Uint32Array.of(ordinal);
    for (const e of entries) index.add(e.fingerprint, v);
  }

  /** Every snapshot against the rebuilt index: what is gone, per snapshot. */
  private async checkSnapshots(keys: string[], storeNames: Map<string, string>): Promise<void> {
    const r = this.report;
    const protectedKeys = await this.repo.protectedSnapshots();
    const pages = new Map<string, PageResult>();
    let done = 0;
    for (const key of keys) {
      this.progress('snapshots', ++done, keys.length);
      const job = key.slice(SNAPSHOTS_PREFIX.length, key.lastIndexOf('/'));
      const broken = (problem: string, extra: Partial<BrokenSnapshot> = {}): void => {
        r.snapshots.broken.push({
          key,
          id: snapshotId(key),
          job,
          problem,
          missingChunks: 0,
          missingPacks: [],
          badPages: [],
          protected: protectedKeys.has(key),
          ...extra,
        });
      };
      let manifest;
      try {
        manifest = await this.repo.manifest(key);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) continue; // forgotten since the listing
        if (err instanceof ObjectFormatError) {
          r.snapshots.checked++;
          broken(`its manifest is damaged: ${err.reason}`);
          continue;
        }
        throw err;
      }
      r.snapshots.checked++;
      const storeId = manifest.meta.store;
      const index = this.indexes.get(storeId);
      const gone = this.goneIndexes.get(storeId);
      const storeMissing = !storeNames.has(storeId);
      let missing = 0;
      let first: { chunk: string; offset: number } | undefined;
      const missingPacks = new Set<string>();
      const badPages: string[] = [];
      let offset = 0;
      for (const ref of manifest.pages) {
        const pageKey = contentKeyFromHash('chunklists', ref.hash);
        let result = pages.get(`${storeId}:${pageKey}`);
        if (!result) {
          result = await this.checkPage(pageKey, index, gone);
          pages.set(`${storeId}:${pageKey}`, result);
        }
        if (result.bad !== undefined) badPages.push(pageKey);
        missing += result.missing;
        if (!first && result.first) first = { chunk: result.first.chunk, offset: offset + result.first.offset };
        for (const p of result.missingPacks) missingPacks.add(p);
        offset += ref.logicalBytes;
      }
      const problems: string[] = [];
      if (storeMissing) problems.push(`its fingerprint store ${storeId} has no readable record`);
      if (badPages.length > 0) problems.push(`${badPages.length} chunk-list page(s) missing or damaged (${badPages[0]}${badPages.length > 1 ? ', ...' : ''})`);
      if (missing > 0) {
        problems.push(
          `${missing} chunk(s) are in no pack the bucket holds (the first: chunk ${first!.chunk} at offset ${first!.offset})` +
            (missingPacks.size > 0 ? `; missing pack(s): ${[...missingPacks].join(', ')}` : '; no index segment or pack trailer lists them'),
        );
      }
      if (problems.length > 0) broken(problems.join('; '), { missingChunks: missing, firstMissing: first, missingPacks: [...missingPacks], badPages });
    }
  }

  private async checkPage(pageKey: string, index: FingerprintIndex | undefined, gone: FingerprintIndex | undefined): Promise<PageResult> {
    let chunks: ChunkRef[];
    try {
      chunks = decodePage(pageKey, await this.repo.objects.get(pageKey));
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return { missing: 0, missingPacks: new Set(), bad: 'missing' };
      if (err instanceof ObjectFormatError) return { missing: 0, missingPacks: new Set(), bad: err.reason };
      throw err;
    }
    const result: PageResult = { missing: 0, missingPacks: new Set() };
    let offset = 0;
    for (const chunk of chunks) {
      if (!chunk.zero) {
        if (!index?.has(chunk.fingerprint)) {
          result.missing++;
          result.first ??= { chunk: hex(chunk.fingerprint), offset };
          const v = gone?.get(chunk.fingerprint);
          if (v) result.missingPacks.add(this.packKeys[v[0]]);
        }
      }
      offset += chunk.length;
    }
    return result;
  }

  private async forgetBroken(): Promise<void> {
    const r = this.report;
    if (r.packs.unreadable.length > 0) {
      for (const b of r.snapshots.broken)
        r.snapshots.kept.push({ key: b.key, reason: `${r.packs.unreadable.length} pack(s) with a damaged trailer may hold its chunks` });
      return;
    }
    const forget: string[] = [];
    for (const b of r.snapshots.broken) {
      if (b.protected) r.snapshots.kept.push({ key: b.key, reason: 'protected (hoard snapshots --unprotect it first)' });
      else forget.push(b.key);
    }
    if (!this.options.dryRun && forget.length > 0) await this.repo.forgetSnapshots(forget);
    r.snapshots.forgotten.push(...forget);
  }
}
