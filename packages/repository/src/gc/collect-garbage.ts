/**
 * `hoard gc`: removes what no snapshot references, without ever removing what a running
 * or just-finished backup needs (invariant 7). The protocol is in docs/gc.md; in short,
 * nothing is deleted in the run that finds it dead:
 *
 *   1. list manifests, then index segments, then packs and chunk-list pages (with their
 *      write times), then read the condemnation lists and revival markers
 *   2. mark: every chunk of every snapshot, one page at a time (bitmap over the index)
 *   3. decide: dead packs and pages older than start - grace are condemned; packs whose
 *      dead share exceeds the threshold are repacked and the old ones condemned; earlier
 *      condemnations are revived if referenced again, deleted once their grace has passed
 *   4. write: new packs, the new condemnation list, revival segments, new index segments
 *      (old ones deleted after), then delete expired packs and pages, then the old lists
 *
 * `dryRun` stops after step 3 and reports what would happen.
 */
import { ObjectFormatError } from '../format-error.js';
import { decodeIndexSegment, packKeyFromHash, type SegmentPack } from '../index-segment/index-segment.js';
import { readPackTrailer } from '../pack/pack-reader.js';
import { decodePage } from '../snapshot/chunk-list.js';
import { contentKeyFromHash } from '../content-key.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll, type ObjectInfo } from '../store/object-store.js';
import { mapConcurrent } from '../repo/concurrency.js';
import { SNAPSHOTS_PREFIX, type Repository } from '../repo/repository.js';
import { GcDamagedError } from './errors.js';
import { extendLocks } from './lock-extension.js';
import { withGcLock } from './gc-lock.js';
import { encodeList, instanceId, itemId, newListKey, readCondemnations, revivedKey, type CondemnedItem } from './gc-objects.js';
import { revivePack } from './commit-guard.js';
import { LiveSet, type GcPack } from './live-set.js';
import { repack } from './repack.js';
import { rewriteSegments } from './segment-rewrite.js';

export const DEFAULT_GC_GRACE_MS = 24 * 3600_000;
export const DEFAULT_REPACK_THRESHOLD = 0.2;

export type GcPhase = 'list' | 'segments' | 'mark' | 'repack' | 'write' | 'delete';

export interface GcOptions {
  /** Decide and report, change nothing. */
  dryRun?: boolean;
  /** Repack a pack when more than this share of its stored bytes is dead (0-1, default 0.2). */
  repackThreshold?: number;
  /**
   * How long a condemned object is kept before a later run may delete it, and how old a
   * pack or page must be before it is condemned at all (default 24 h). It must exceed the
   * time a backup's commit takes (docs/gc.md); 0 is for tests.
   */
  graceMs?: number;
  /** Remove a GC lock left by a run that died. */
  breakLock?: boolean;
  onProgress?: (p: { phase: GcPhase; done: number; total: number }) => void;
  /** The clock (tests). */
  now?: () => Date;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  graceMs: number;
  repackThreshold: number;
  snapshots: number;
  packs: {
    /** Packs in the bucket at the start. */
    total: number;
    /** Condemned by this run because nothing references them (they are deleted by a later run). */
    condemned: number;
    /** Old packs whose live blobs were copied into new ones (condemned too). */
    repacked: number;
    /** New packs written by repacking. */
    written: number;
    /** Condemned earlier and deleted now. */
    deleted: number;
    /** Condemned earlier and referenced again: listed in the index again. */
    revived: number;
    /** Condemned and still within their grace period. */
    waiting: number;
  };
  pages: { total: number; live: number; condemned: number; deleted: number; waiting: number };
  segments: { read: number; written: number; deleted: number };
  blobs: { live: number; dead: number };
  bytes: {
    /** Stored bytes of all packs at the start (as listed). */
    before: number;
    /** ... and at the end (projected in a dry run). */
    after: number;
    deleted: number;
    written: number;
    /** Stored bytes of referenced blobs in indexed packs. */
    live: number;
    dead: number;
  };
  /**
   * Dead (or mostly dead) packs and pages kept because S3 Object Lock still protects them or
   * the index segments that list them: a GC after `lastUnlock` can remove them all, one after
   * `firstUnlock` some. `extended`: referenced packs and pages whose lock this run moved to
   * now + the repository's days (at most every quarter of them). All 0 in a repository
   * without Object Lock.
   */
  locked: { packs: number; pages: number; firstUnlock?: string; lastUnlock?: string; extended: number };
  /** Chunk references no pack holds: snapshots already damaged (run `hoard verify`). */
  missingChunks: number;
  /** Packs not repacked because of damage (they are kept as they are). */
  skipped: { pack: string; problem: string }[];
  durationMs: number;
}

const MANIFEST_READS = 8;
const SEGMENT_READS = 4;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const hashOfKey = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

export async function collectGarbage(repo: Repository, options: GcOptions = {}): Promise<GcReport> {
  const graceMs = options.graceMs ?? DEFAULT_GC_GRACE_MS;
  const threshold = options.repackThreshold ?? DEFAULT_REPACK_THRESHOLD;
  if (!Number.isSafeInteger(graceMs) || graceMs < 0) throw new RangeError(`grace must be a whole number of milliseconds >= 0, got ${graceMs}`);
  if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`repack threshold must be from 0 to 1, got ${threshold}`);
  const clock = options.now ?? (() => new Date());
  const objects = repo.objects;
  if (options.dryRun) return new GcRun(repo, graceMs, threshold, clock, options).run();
  return withGcLock(
    objects,
    { breakLock: options.breakLock, now: clock },
    (holder) => `garbage collection of ${repo.location} is locked by ${holder}; if that run is no longer alive, run gc again with --break-lock`,
    () => new GcRun(repo, graceMs, threshold, clock, options).run(),
  );
}

class GcRun {
  private readonly live = new LiveSet();
  private readonly startMs: number;
  private readonly report: GcReport;
  private readonly started = Date.now();

  constructor(
    private readonly repo: Repository,
    private readonly graceMs: number,
    threshold: number,
    clock: () => Date,
    private readonly options: GcOptions,
  ) {
    this.startMs = clock().getTime();
    this.report = {
      dryRun: options.dryRun === true,
      startedAt: new Date(this.startMs).toISOString(),
      graceMs,
      repackThreshold: threshold,
      snapshots: 0,
      packs: { total: 0, condemned: 0, repacked: 0, written: 0, deleted: 0, revived: 0, waiting: 0 },
      pages: { total: 0, live: 0, condemned: 0, deleted: 0, waiting: 0 },
      segments: { read: 0, written: 0, deleted: 0 },
      blobs: { live: 0, dead: 0 },
      bytes: { before: 0, after: 0, deleted: 0, written: 0, live: 0, dead: 0 },
      locked: { packs: 0, pages: 0, extended: 0 },
      missingChunks: 0,
      skipped: [],
      durationMs: 0,
    };
  }

  private get objects() {
    return this.repo.objects;
  }

  private progress(phase: GcPhase, done: number, total: number): void {
    this.options.onProgress?.({ phase, done, total });
  }

  /** Old enough to be condemned: written before start - grace (an unknown time is never old). */
  private old(info: ObjectInfo | undefined): boolean {
    return info?.modified !== undefined && info.modified.getTime() <= this.startMs - this.graceMs;
  }

  async run(): Promise<GcReport> {
    const r = this.report;
    // Invariant 1 read backwards (as verify does): a manifest is written after its pages
    // and segments, a segment after its packs. Listing in this order means everything a
    // listed manifest needs was listed too.
    const manifests = await this.keys(SNAPSHOTS_PREFIX);
    const segmentKeys = await this.keys('index/');
    const packInfos = await this.infos('packs/');
    const pageInfos = await this.infos('chunklists/');
    const condemnations = await readCondemnations(this.objects);
    this.progress('list', 1, 1);
    r.snapshots = manifests.length;
    r.packs.total = packInfos.size;
    r.pages.total = pageInfos.size;
    for (const info of packInfos.values()) r.bytes.before += info.size;

    await this.loadSegments(segmentKeys);

    // Condemned packs that no segment lists any more: their blobs count for the mark only
    // where no indexed pack has the same blob.
    const waitingPacks = [...condemnations.items.values()].filter((c) => c.kind === 'pack' && !this.live.byHex.has(c.hash) && packInfos.has(c.hash));
    await mapConcurrent(
      waitingPacks,
      8,
      async (c) => readPackTrailer(this.objects, packKeyFromHash(Buffer.from(c.hash, 'hex'))),
      (trailer, c) => {
        this.live.addCondemned(c.hash, hex(trailer.storeId), trailer.entries);
      },
    );

    await this.mark(manifests);
    r.missingChunks = this.live.missingChunks;
    r.pages.live = [...pageInfos.keys()].filter((h) => this.live.livePages.has(h)).length;

    // ---- decide --------------------------------------------------------------------------
    const newItems: CondemnedItem[] = [];
    const condemnedAt = new Date(this.startMs).toISOString();
    const condemn = (kind: 'pack' | 'page', hash: string, reason: CondemnedItem['reason']) =>
      newItems.push({ kind, hash, condemnedAt, graceMs: this.graceMs, reason });
    const carried: CondemnedItem[] = [];
    const deletePacks: string[] = [];
    const deletePages: string[] = [];
    const revive: string[] = [];

    // Earlier condemnations.
    const pending = new Set<string>();
    const neededPacks = new Set(this.live.condemned.filter((p) => p.needed).map((p) => p.hex));
    for (const c of condemnations.items.values()) {
      pending.add(itemId(c.kind, c.hash));
      // The newest condemnation is the one that counts; an older one was resolved before.
      const revived = condemnations.revived.has(instanceId(c.latest));
      if (c.kind === 'pack') {
        if (!packInfos.has(c.hash) || this.live.byHex.has(c.hash)) continue; // deleted, or indexed again
        if (neededPacks.has(c.hash) || revived) {
          revive.push(c.hash);
        } else if (this.startMs >= c.deleteAfterMs) {
          deletePacks.push(c.hash);
          carried.push(...c.instances); // stays listed until it is gone (docs/gc.md)
        } else {
          r.packs.waiting++;
          carried.push(...c.instances);
        }
      } else {
        if (!pageInfos.has(c.hash) || this.live.livePages.has(c.hash) || revived) continue;
        if (this.startMs >= c.deleteAfterMs) {
          deletePages.push(c.hash);
          carried.push(...c.instances);
        } else {
          r.pages.waiting++;
          carried.push(...c.instances);
        }
      }
    }

    // Indexed packs: dead, mostly dead, or fine. A segment that names a pack which is gone
    // (deleted by an earlier run after a backup re-uploaded identical bytes and listed it
    // again, or lost) is rewritten without it.
    // Each step that would lead to a deletion is an intent first: with Object Lock, one
    // whose objects are still locked is kept (and reported) instead (docs/storage.md).
    const intents: { kind: 'pack' | 'page'; keys: string[]; apply: () => void }[] = [];
    const packKey = (h: string) => packKeyFromHash(Buffer.from(h, 'hex'));
    const toRepack = new Map<string, GcPack[]>();
    const gone = new Set<string>();
    for (const pack of this.live.packs) {
      if (!packInfos.has(pack.hex)) gone.add(pack.hex);
      r.blobs.live += pack.liveCount;
      r.blobs.dead += pack.count - pack.liveCount;
      r.bytes.live += pack.liveBytes;
      r.bytes.dead += pack.storedBytes - pack.liveBytes;
      const info = packInfos.get(pack.hex);
      if (!info || !this.old(info)) continue; // missing (verify reports it), or too young
      // Dropping a pack rewrites the segments that list it and deletes them.
      const keys = [packKey(pack.hex), ...pack.segments];
      if (pack.liveCount === 0) {
        intents.push({
          kind: 'pack',
          keys,
          apply: () => {
            condemn('pack', pack.hex, 'unreferenced');
            r.packs.condemned++;
          },
        });
      } else if (pack.storedBytes > 0 && (pack.storedBytes - pack.liveBytes) / pack.storedBytes > this.report.repackThreshold) {
        intents.push({
          kind: 'pack',
          keys,
          apply: () => {
            let list = toRepack.get(pack.storeId);
            if (!list) toRepack.set(pack.storeId, (list = []));
            list.push(pack);
          },
        });
      }
    }
    // Packs no segment lists and nobody condemned: left by failed backups (or a backup
    // still between its pack and its segment, which the age rule and the commit check cover).
    // A pack that is gone is dropped from the segments through a condemnation too: a backup
    // may have uploaded it again since (same bytes, same name) and listed it in a segment
    // of the same name as one dropped here; the condemnation is what its commit check sees.
    for (const h of gone) intents.push({ kind: 'pack', keys: this.live.byHex.get(h)?.segments ?? [], apply: () => condemn('pack', h, 'missing') });
    for (const [h, info] of packInfos) {
      if (this.live.byHex.has(h) || pending.has(itemId('pack', h)) || !this.old(info)) continue;
      intents.push({
        kind: 'pack',
        keys: [packKey(h)],
        apply: () => {
          condemn('pack', h, 'unindexed');
          r.packs.condemned++;
        },
      });
    }
    for (const [h, info] of pageInfos) {
      if (this.live.livePages.has(h) || pending.has(itemId('page', h)) || !this.old(info)) continue;
      intents.push({
        kind: 'page',
        keys: [contentKeyFromHash('chunklists', Buffer.from(h, 'hex'))],
        apply: () => {
          condemn('page', h, 'unreferenced');
          r.pages.condemned++;
        },
      });
    }
    const locked = await this.repo.lockedObjects([...new Set(intents.flatMap((i) => i.keys))]);
    for (const intent of intents) {
      const until = Math.max(0, ...intent.keys.map((k) => locked.get(k)?.getTime() ?? 0));
      if (until === 0) {
        intent.apply();
        continue;
      }
      r.locked[intent.kind === 'pack' ? 'packs' : 'pages']++;
      const at = new Date(until).toISOString();
      if (r.locked.firstUnlock === undefined || at < r.locked.firstUnlock) r.locked.firstUnlock = at;
      if (r.locked.lastUnlock === undefined || at > r.locked.lastUnlock) r.locked.lastUnlock = at;
    }

    r.packs.deleted = deletePacks.length;
    r.packs.revived = revive.length;
    r.pages.deleted = deletePages.length;
    for (const h of deletePacks) r.bytes.deleted += packInfos.get(h)?.size ?? 0;

    if (this.options.dryRun) {
      for (const packs of toRepack.values()) {
        r.packs.repacked += packs.length;
        // Projected: the live bytes move to new packs (trailers not counted).
        for (const p of packs) r.bytes.written += p.liveBytes;
      }
      r.bytes.after = r.bytes.before - r.bytes.deleted + r.bytes.written;
      r.durationMs = Date.now() - this.started;
      return r;
    }

    // ---- write ---------------------------------------------------------------------------
    const added = new Map<string, SegmentPack[]>();
    let repackDone = 0;
    const repackTotal = [...toRepack.values()].reduce((n, l) => n + l.length, 0);
    for (const [storeId, packs] of toRepack) {
      const result = await repack(this.objects, this.live, storeId, packs, this.repo.config.packBytes, () =>
        this.progress('repack', ++repackDone, repackTotal),
      );
      added.set(storeId, result.written);
      r.packs.written += result.written.length;
      r.bytes.written += result.writtenBytes;
      r.skipped.push(...result.skipped);
      for (const p of result.repacked) condemn('pack', p.hex, 'repacked');
      r.packs.repacked += result.repacked.length;
    }
    // A repacked pack is content-named: it may have exactly the bytes (so the name) of a
    // pack that is condemned or about to be deleted. It was "written" only in that the
    // object was already there, and it is in use now: it must not be condemned or deleted.
    const repackedInto = new Set([...added.values()].flat().map((p) => hex(p.packHash)));
    const inUse = (item: CondemnedItem) => item.kind === 'pack' && repackedInto.has(item.hash);
    for (let i = deletePacks.length - 1; i >= 0; i--) {
      if (!repackedInto.has(deletePacks[i])) continue;
      r.bytes.deleted -= packInfos.get(deletePacks[i])?.size ?? 0;
      r.packs.deleted--;
      deletePacks.splice(i, 1);
    }
    for (const list of [carried, newItems]) for (let i = list.length - 1; i >= 0; i--) if (inUse(list[i])) list.splice(i, 1);
    this.progress('write', 0, 3);
    // The list first: a pack leaves the index only once it is listed as condemned, so a
    // backup that still dedups against it finds out at its commit check.
    const items = [...carried, ...newItems];
    if (items.length > 0) await this.objects.putIfAbsent(newListKey(new Date(this.startMs)), encodeList(items));
    const ownSegments = new Set<string>();
    for (const h of revive) ownSegments.add(await revivePack(this.objects, h));
    // A backup that committed after the manifests were listed, and whose commit check ran
    // before the list above existed, may use what this run just condemned. Its manifest
    // is visible now: what it references is rescued (revival marker) and stays indexed.
    const rescued = await this.rescueLate(manifests, newItems);
    this.progress('write', 1, 3);
    const drop = new Set(newItems.filter((i) => i.kind === 'pack' && !rescued.has(itemId('pack', i.hash))).map((i) => i.hash));
    const segments = await rewriteSegments(this.objects, this.live, drop, added);
    for (const key of segments.written) ownSegments.add(key);
    r.segments.written = ownSegments.size;
    r.segments.deleted = segments.deleted.length;
    this.progress('write', 2, 3);
    // A backup may have uploaded a pack with exactly the bytes of a condemned one (same
    // chunks, same order: the same name) and listed it in its own segment since the
    // listing above. Such a pack is in use again and is not deleted.
    const relisted = await this.relistedPacks(new Set([...segmentKeys, ...ownSegments]));
    for (let i = deletePacks.length - 1; i >= 0; i--) {
      if (relisted.has(deletePacks[i])) {
        r.bytes.deleted -= packInfos.get(deletePacks[i])?.size ?? 0;
        deletePacks.splice(i, 1);
        r.packs.deleted--;
      }
    }
    // Backups that revived a pack this run condemned may have written their revival segment
    // under the name of a segment just deleted (same pack, same bytes): list it again.
    const revivedNow = await readCondemnations(this.objects);
    for (const h of drop) {
      const c = revivedNow.items.get(itemId('pack', h));
      if (c && revivedNow.revived.has(instanceId(c.latest)) && packInfos.has(h)) await revivePack(this.objects, h);
    }
    // Deletions last, then the lists they were on (an object stays listed until it is gone,
    // so a backup's commit check cannot miss it), then the revival markers those lists needed.
    await this.objects.deleteMany(deletePacks.map((h) => packKeyFromHash(Buffer.from(h, 'hex'))));
    await this.objects.deleteMany(deletePages.map((h) => contentKeyFromHash('chunklists', Buffer.from(h, 'hex'))));
    this.progress('delete', 1, 2);
    await this.objects.deleteMany(condemnations.listKeys);
    // Revival markers of condemnations that are no longer listed have done their job.
    const listed = new Set(items.map(instanceId));
    await this.objects.deleteMany([...condemnations.revivedKeys].filter(([, id]) => !listed.has(id)).map(([key]) => key));
    // With Object Lock: what snapshots still reference stays locked (lock-extension.ts).
    const lock = this.repo.config.objectLock;
    if (lock) {
      const referenced = [
        ...this.live.packs
          .filter((p) => p.liveCount > 0 && !drop.has(p.hex) && packInfos.has(p.hex))
          .map((p) => ({ key: packKey(p.hex), modified: packInfos.get(p.hex)!.modified })),
        ...[...pageInfos]
          .filter(([h]) => this.live.livePages.has(h))
          .map(([h, info]) => ({ key: contentKeyFromHash('chunklists', Buffer.from(h, 'hex')), modified: info.modified })),
      ];
      r.locked.extended = await extendLocks(this.objects, lock, referenced);
    }
    this.progress('write', 3, 3);
    r.bytes.after = r.bytes.before - r.bytes.deleted + r.bytes.written;
    r.durationMs = Date.now() - this.started;
    return r;
  }

  private async rescueLate(listed: string[], condemned: CondemnedItem[]): Promise<Set<string>> {
    const rescued = new Set<string>();
    if (condemned.length === 0) return rescued;
    const seen = new Set(listed);
    const late = (await this.keys(SNAPSHOTS_PREFIX)).filter((k) => !seen.has(k));
    const ids = new Set(condemned.map((i) => itemId(i.kind, i.hash)));
    for (const key of late) {
      let manifest;
      try {
        manifest = await this.repo.manifest(key);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) continue;
        throw err;
      }
      for (const page of manifest.pages) {
        const pageHex = hex(page.hash);
        if (ids.has(itemId('page', pageHex))) rescued.add(itemId('page', pageHex));
        const pageKey = contentKeyFromHash('chunklists', page.hash);
        for (const ref of decodePage(pageKey, await this.objects.get(pageKey))) {
          if (ref.zero) continue;
          const pack = this.live.packOf(manifest.meta.store, ref.fingerprint);
          if (pack !== undefined && ids.has(itemId('pack', pack))) rescued.add(itemId('pack', pack));
        }
      }
    }
    for (const id of rescued) {
      const [kind, hash] = id.split(':') as ['pack' | 'page', string];
      const item = condemned.find((i) => i.kind === kind && i.hash === hash)!;
      await this.objects.putIfAbsent(revivedKey(item), Buffer.from(JSON.stringify({ version: 1, revivedAt: new Date().toISOString() })));
      const reason = item.reason;
      if (kind === 'page') this.report.pages.condemned--;
      else if (reason !== 'repacked') this.report.packs.condemned--;
    }
    return rescued;
  }

  /** Packs named by index segments that appeared since the listing (other than this run's own). */
  private async relistedPacks(known: Set<string>): Promise<Set<string>> {
    const out = new Set<string>();
    for (const key of await this.keys('index/')) {
      if (known.has(key)) continue;
      try {
        for (const p of decodeIndexSegment(key, await this.objects.get(key)).packs) out.add(hex(p.packHash));
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
      }
    }
    return out;
  }

  private async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const info of listAll(this.objects, prefix)) keys.push(info.key);
    return keys;
  }

  /** Content-named objects under `prefix`, by hash, with their write times. */
  private async infos(prefix: string): Promise<Map<string, ObjectInfo>> {
    const out = new Map<string, ObjectInfo>();
    for await (const info of listAll(this.objects, prefix, { times: true })) out.set(hashOfKey(info.key), info);
    return out;
  }

  private async loadSegments(keys: string[]): Promise<void> {
    let done = 0;
    await mapConcurrent(
      keys,
      SEGMENT_READS,
      async (key) => {
        try {
          return decodeIndexSegment(key, await this.objects.get(key));
        } catch (err) {
          // A damaged segment would hide packs that snapshots need: deleting anything on
          // that basis could destroy data.
          if (err instanceof ObjectFormatError || err instanceof ObjectNotFoundError)
            throw new GcDamagedError(
              `cannot read index segment ${key}: ${err.message}; garbage collection refuses to run on a damaged index (\`hoard repair\` rebuilds it from the pack trailers)`,
            );
          throw err;
        }
      },
      (segment, key) => {
        this.live.addSegment(key, segment);
        this.report.segments.read++;
        this.progress('segments', ++done, keys.length);
      },
    );
  }

  private async mark(manifests: string[]): Promise<void> {
    let done = 0;
    await mapConcurrent(
      manifests,
      MANIFEST_READS,
      async (key) => {
        try {
          return await this.repo.manifest(key);
        } catch (err) {
          if (err instanceof ObjectNotFoundError) return undefined; // forgotten meanwhile
          if (err instanceof ObjectFormatError)
            throw new GcDamagedError(
              `snapshot ${key} is damaged (${err.message}); garbage collection cannot tell what it references and refuses to run (\`hoard repair --forget-broken\` forgets it)`,
            );
          throw err;
        }
      },
      async (manifest, key) => {
        if (manifest) {
          const store = manifest.meta.store;
          for (const page of manifest.pages) {
            const h = hex(page.hash);
            this.live.livePages.add(h);
            const pageKey = contentKeyFromHash('chunklists', page.hash);
            let refs;
            try {
              refs = decodePage(pageKey, await this.objects.get(pageKey));
            } catch (err) {
              if (err instanceof ObjectFormatError || err instanceof ObjectNotFoundError)
                throw new GcDamagedError(
                  `snapshot ${key}: chunk-list page ${pageKey} cannot be read (${err.message}); garbage collection refuses to run (\`hoard repair --forget-broken\` forgets the snapshot)`,
                );
              throw err;
            }
            for (const ref of refs) if (!ref.zero) this.live.mark(store, ref.fingerprint);
          }
        }
        this.progress('mark', ++done, manifests.length);
      },
    );
  }
}
