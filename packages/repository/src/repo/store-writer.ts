/**
 * Writes new blobs of one fingerprint store: appends them to an open pack, uploads sealed
 * packs, then lists uploaded packs in index segments. Only then does the store's index
 * learn the blobs (invariant 1): until a blob's pack and segment are durable, it is
 * "pending" here, so nobody stores it twice, but nothing may rely on it being in the bucket.
 *
 * The embedded backup uses one writer per run; the media server uses one per store,
 * shared by every session writing to that store, so two sessions that upload the same new
 * chunk store it once and fill packs together.
 *
 * Memory: where the store can stage objects (fs), packs are streamed into it as they fill
 * (pack-stream.ts: a few MiB whatever the pack size); elsewhere (S3) one open pack and
 * `uploadsInFlight` sealed packs are held whole. Plus the pending map, whose entries
 * leave as soon as their pack is indexed (at most packsPerSegment + uploads + 1 packs'
 * worth of entries). docs/operations.md, "Memory budget", has the figures.
 */
import type { ErrorCode } from '@hoard/errors';
import type { EncodedBlob } from '../blob/codec.js';
import { hashOfContentKey } from '../content-key.js';
import { encodeIndexSegment, type SegmentPack } from '../index-segment/index-segment.js';
import { PackStreamWriter } from '../pack/pack-stream.js';
import { PackWriter } from '../pack/pack-writer.js';
import type { ObjectStore } from '../store/object-store.js';
import type { FingerprintStore } from './fingerprint-store.js';
import type { StoreIndex } from './store-index.js';
import { fingerprintKey } from './fingerprint-key.js';

export interface StoreWriterOptions {
  packBytes: number;
  /** Sealed packs uploading at once before add() waits (backpressure). */
  uploadsInFlight?: number;
  /** Packs per index segment: a crash loses at most this many packs' worth of dedup. */
  packsPerSegment?: number;
  /** Remember the name of every pack this writer indexed (`writtenPacks`): a backup's commit check needs them (gc/commit-guard.ts). */
  recordPacks?: boolean;
}

export interface StoreWriterStats {
  blobs: number;
  storedBytes: number;
  packs: number;
  segments: number;
  /** Blobs dropped because the store had or was writing them already. */
  duplicates: number;
}

/** Thrown by flush() when a pack or segment this writer wrote could not be stored. */
export class StoreWriteError extends Error {
  override readonly name = 'StoreWriteError';
  readonly code: ErrorCode = 'work_failed';
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

export class StoreWriter {
  private readonly pack: PackWriter | PackStreamWriter;
  /** Open pack's sequence number; every pack gets the next one when it opens. */
  private openSeq = 1;
  /** fingerprintKey(fingerprint) -> sequence number of the pack holding it, while not yet indexed. */
  private readonly pending = new Map<string, number>();
  /** Packs sealed but not yet indexed (uploading, or uploaded and waiting for a segment). */
  private readonly undurable = new Set<number>();
  private readonly failed = new Set<number>();
  /** Why a failed pack failed (its upload's or its segment's error). */
  private readonly failures = new Map<number, unknown>();
  private readonly uploads = new Set<Promise<void>>();
  private readonly unindexed: (SegmentPack & { seq: number })[] = [];
  private segmentChain: Promise<void> = Promise.resolve();
  private flushChain: Promise<void> = Promise.resolve();
  private errors: unknown[] = [];
  readonly stats: StoreWriterStats = { blobs: 0, storedBytes: 0, packs: 0, segments: 0, duplicates: 0 };
  private readonly uploadsInFlight: number;
  private readonly packsPerSegment: number;
  /** With `recordPacks`: names of the packs this writer wrote and indexed. */
  readonly writtenPacks: Uint8Array[] = [];
  private readonly recordPacks: boolean;

  constructor(
    private readonly objects: ObjectStore,
    readonly store: FingerprintStore,
    readonly index: StoreIndex,
    options: StoreWriterOptions,
  ) {
    const stage = objects.stageObject?.bind(objects);
    this.pack = stage ? new PackStreamWriter(store.idBytes, options.packBytes, stage) : new PackWriter(store.idBytes, options.packBytes);
    this.uploadsInFlight = options.uploadsInFlight ?? 1;
    this.packsPerSegment = options.packsPerSegment ?? 16;
    this.recordPacks = options.recordPacks ?? false;
  }

  /** True when the store has the blob or this writer is storing it. */
  has(fingerprint: Uint8Array): boolean {
    return this.hasKeyed(fingerprint, fingerprintKey(fingerprint));
  }

  /** `has` with the fingerprint's key already made (append keeps it for `pending`). */
  private hasKeyed(fingerprint: Uint8Array, key: string): boolean {
    return this.index.has(fingerprint) || this.pending.has(key);
  }

  /**
   * The pack a not-yet-durable blob waits in, or undefined if the blob is durable (or
   * unknown). A caller that references the blob must see that pack become durable
   * (`isDurable`) before it commits anything that references it.
   */
  pendingPack(fingerprint: Uint8Array): number | undefined {
    return this.pending.get(fingerprintKey(fingerprint));
  }

  /** The error that made pack `seq` fail (undefined unless packState says 'failed'). */
  packFailure(seq: number): unknown {
    return this.failures.get(seq);
  }

  /** 'durable', 'pending' or 'failed' (the pack never reached the bucket). */
  packState(seq: number): 'durable' | 'pending' | 'failed' {
    if (this.failed.has(seq)) return 'failed';
    if (seq === this.openSeq && this.pack.count > 0) return 'pending';
    return this.undurable.has(seq) ? 'pending' : 'durable';
  }

  /** Blobs in the open pack (not uploaded yet). */
  get openBlobs(): number {
    return this.pack.count;
  }

  /**
   * Appends a blob unless the store has it or is storing it (then returns false). Waits
   * while too many sealed packs are uploading, so a fast source cannot outrun the bucket.
   */
  async add(fingerprint: Uint8Array, blob: EncodedBlob): Promise<boolean> {
    if (!this.append(fingerprint, blob)) return false;
    await this.backpressure();
    return true;
  }

  /**
   * `add` without the wait: appends the blob (copied; the caller may reuse `blob.stored`)
   * unless the store has it or is storing it (then false). The caller must then wait for
   * `backpressure()` before appending more. For a caller appending every new chunk of a
   * stream (the embedded backup), where a promise per blob is measurable. `owned`: the
   * caller hands the fingerprint over and never changes it (else the pack keeps a copy).
   */
  append(fingerprint: Uint8Array, blob: EncodedBlob, owned = false): boolean {
    const key = fingerprintKey(fingerprint);
    if (this.hasKeyed(fingerprint, key)) {
      this.stats.duplicates++;
      return false;
    }
    this.pack.add(fingerprint, blob, owned);
    this.pending.set(key, this.openSeq);
    this.stats.blobs++;
    this.stats.storedBytes += blob.stored.length;
    if (this.pack.full) this.seal();
    return true;
  }

  /**
   * Undefined when more may be appended now; else a promise that settles once the open
   * pack's writes and the sealed packs' uploads are few enough again (it never rejects:
   * failures surface in flush()).
   */
  backpressure(): Promise<void> | undefined {
    const draining = this.pack instanceof PackStreamWriter && this.pack.mustDrain;
    if (!draining && this.uploads.size <= this.uploadsInFlight) return undefined;
    return this.relieve();
  }

  private async relieve(): Promise<void> {
    if (this.pack instanceof PackStreamWriter) await this.pack.drain();
    while (this.uploads.size > this.uploadsInFlight) await Promise.race(this.uploads);
  }

  /**
   * Makes everything added so far durable and indexed: seals the open pack, waits for the
   * uploads, writes the segment. Throws StoreWriteError if a pack or segment it waited
   * for failed (its blobs are then "missing" again, so a retry uploads them anew).
   */
  flush(): Promise<void> {
    const run = this.flushChain.then(async () => {
      if (this.pack.count > 0) this.seal();
      await Promise.all([...this.uploads]);
      await this.writeSegment();
      this.throwErrors();
    });
    this.flushChain = run.catch(() => undefined);
    return run;
  }

  /** Waits for work in flight without throwing (a failing caller cleaning up). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.uploads, this.segmentChain]);
  }

  /**
   * Drops the open pack's blobs and, when streamed, its temp object (a failing backup that
   * owns this writer; a writer shared by sessions keeps its open pack for the others).
   */
  async discardOpenPack(): Promise<void> {
    if (this.pack.count === 0 && !(this.pack instanceof PackStreamWriter)) return;
    const seq = this.openSeq++;
    this.failed.add(seq);
    this.failures.set(seq, new Error('the open pack was discarded'));
    this.forget(this.pack.openEntries, seq);
    if (this.pack instanceof PackStreamWriter) await this.pack.discard();
    else this.pack.seal();
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const [first] = this.errors;
    this.errors = [];
    throw first instanceof StoreWriteError ? first : new StoreWriteError(`storing blobs failed: ${(first as Error)?.message ?? String(first)}`, first);
  }

  private seal(): void {
    const seq = this.openSeq++;
    const sealed = this.sealPack();
    this.undurable.add(seq);
    this.stats.packs++;
    const packHash = hashOfContentKey(sealed.key);
    const upload: Promise<void> = sealed.stored.then(
      async () => {
        this.unindexed.push({ packHash, entries: sealed.entries, seq });
        if (this.unindexed.length >= this.packsPerSegment) await this.writeSegment();
      },
      (err: unknown) => {
        this.fail([{ seq, entries: sealed.entries }], err, `uploading pack ${sealed.key}`);
      },
    );
    this.uploads.add(upload);
    void upload.finally(() => this.uploads.delete(upload));
  }

  /** The open pack sealed, and its way into the bucket: streamed already, or one put of the whole pack. */
  private sealPack(): { key: string; entries: SegmentPack['entries']; stored: Promise<unknown> } {
    const pack = this.pack;
    if (pack instanceof PackStreamWriter) return pack.seal();
    const sealed = pack.seal();
    const stored = this.objects.putIfAbsent(sealed.key, sealed.bytes).then(() => pack.recycle(sealed.bytes));
    return { key: sealed.key, entries: sealed.entries, stored };
  }

  /** Segments are written one at a time, in the order their packs were uploaded. */
  private writeSegment(): Promise<void> {
    const next = this.segmentChain.then(async () => {
      if (this.unindexed.length === 0) return;
      const packs = this.unindexed.splice(0);
      const segment = encodeIndexSegment({ storeId: this.store.idBytes, packs });
      try {
        await this.objects.putIfAbsent(segment.key, segment.bytes);
      } catch (err) {
        this.fail(packs, err, `writing index segment ${segment.key}`);
        return;
      }
      this.stats.segments++;
      // Pack and segment are durable: from now on everyone may use the blobs.
      this.index.reserveFor(packs);
      for (const p of packs) {
        this.index.addPackEntries(p.packHash, p.entries);
        if (this.recordPacks) this.writtenPacks.push(p.packHash);
        this.forget(p.entries, p.seq);
        this.undurable.delete(p.seq);
      }
    });
    this.segmentChain = next.catch(() => undefined);
    return next;
  }

  private fail(packs: { seq: number; entries: readonly { fingerprint: Uint8Array }[] }[], err: unknown, what: string): void {
    for (const p of packs) {
      this.failed.add(p.seq);
      this.failures.set(p.seq, err);
      this.undurable.delete(p.seq);
      this.forget(p.entries, p.seq);
    }
    this.errors.push(new StoreWriteError(`${what} in store ${this.store.name} failed: ${(err as Error)?.message ?? String(err)}`, err));
  }

  private forget(entries: readonly { fingerprint: Uint8Array }[], seq: number): void {
    for (const e of entries) {
      const key = fingerprintKey(e.fingerprint);
      if (this.pending.get(key) === seq) this.pending.delete(key);
    }
  }
}
