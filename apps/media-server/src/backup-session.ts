/**
 * One backup session: an agent streams one source of one job. The agent asks which
 * fingerprints are missing, sends batches (the next run of chunk references plus the
 * blobs the server lacked), then commits. The server appends blobs to the store's shared
 * StoreWriter, collects references in a SnapshotWriter, and at commit makes every
 * referenced blob durable before it writes the manifest (invariant 1).
 *
 * Batches carry a sequence number: a batch is applied whole or not at all, so an agent
 * whose connection dropped resends it; a batch already applied is acknowledged again
 * without being applied twice.
 */
import type { ChunkerSpec } from '@hoard/chunker';
import { CODEC_ENCRYPTED, DecodePool, findEnvironmentError, SnapshotWriter, type Repository, type SnapshotInfo } from '@hoard/repository';
import {
  BATCH_HEADER_BYTES,
  BLOB_HEADER_BYTES,
  REF_BYTES,
  RequestError,
  decodeBatchHeader,
  decodeBlobHeader,
  decodeRefs,
  dedupRatio,
  type BatchResponse,
  type CommitRequest,
  type SessionTotals,
  type SourceKind,
} from '@hoard/protocol';
import { BlobIntake } from './blob-intake.js';
import type { BodyReader } from './http-util.js';
import type { OpenStore } from './store-hub.js';

export type SessionState = 'running' | 'committed' | 'failed' | 'expired';

export interface SessionInit {
  id: string;
  agent: string;
  job: string;
  source: { name: string; kind: SourceKind };
  run?: string;
  store: OpenStore;
  chunker: ChunkerSpec;
  maxChunk: number;
  parent: string | null;
  /** Decode every uploaded blob and check it against its fingerprint. */
  verifyUploads: boolean;
  /** The server's clock, which its GC also uses: the commit check compares revival windows against it. */
  now?: () => number;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class BackupSession {
  state: SessionState = 'running';
  readonly startedAt = new Date();
  lastActivity = Date.now();
  /** Sequence number of the next batch to apply. */
  nextSeq = 0;
  busy = false;
  snapshot: SnapshotInfo | undefined;
  /** What the commit answered, repeated to an agent that retries a commit whose answer it lost. */
  committed: unknown;
  error: string | undefined;
  /** The server ended this session's run while a request of it was under way: why (session-registry.ts, endRun). */
  runEnded: string | undefined;
  readonly totals: SessionTotals = { bytesRead: 0, bytesSent: 0, bytesNew: 0, bytesStored: 0, chunks: 0, chunksNew: 0 };
  private readonly writer: SnapshotWriter;
  /** Packs (StoreWriter sequence numbers) holding referenced blobs that were not durable yet. */
  private readonly dependsOn = new Set<number>();
  /**
   * Every pack the snapshot references, for the commit check against a concurrent GC
   * (docs/gc.md): ordinals of indexed packs, and for packs still being written one
   * fingerprint each (all blobs of a pending pack end up in the same pack).
   */
  private readonly referencedPacks = new Set<number>();
  private readonly pendingReferences = new Map<number, Uint8Array>();

  constructor(
    repo: Repository,
    readonly init: SessionInit,
  ) {
    this.writer = new SnapshotWriter(repo.objects);
  }

  get id(): string {
    return this.init.id;
  }

  /** Fingerprint query: one flag per fingerprint, true = the store lacks it. */
  missing(fingerprints: Uint8Array): boolean[] {
    const { writer } = this.init.store;
    const n = fingerprints.length / 32;
    const out = new Array<boolean>(n);
    for (let i = 0; i < n; i++) out[i] = !writer.has(fingerprints.subarray(i * 32, i * 32 + 32));
    this.init.store.lookups += n;
    this.totals.bytesSent += fingerprints.length;
    return out;
  }

  /**
   * Applies batch `seq` from the request body. The blobs it carries are stored as they
   * arrive (they stay useful even if the batch fails: a retry finds them present); the
   * references are applied only once the whole batch has been read and checked.
   */
  async applyBatch(seq: number, body: BodyReader): Promise<BatchResponse> {
    if (seq < this.nextSeq) return { seq, duplicate: true, blobsStored: 0, blobsDuplicate: 0 };
    if (seq > this.nextSeq) throw new RequestError('conflict', `batch ${seq} is out of order: session ${this.id} expects batch ${this.nextSeq} next`);
    const { store, writer } = this.init.store;
    const header = decodeBatchHeader(await body.read(BATCH_HEADER_BYTES, 'the batch header'));
    const refBytes = await body.read(header.refCount * REF_BYTES, 'the references');
    const refs = decodeRefs(refBytes, header.refCount, this.init.maxChunk);
    let stored = 0;
    let duplicate = 0;
    let bytesNew = 0;
    let storedBytes = 0;
    const blobHeader = Buffer.allocUnsafe(BLOB_HEADER_BYTES);
    const blobLengths = new Map<string, number>();
    const intake = new BlobIntake({
      pool: this.init.verifyUploads ? DecodePool.shared() : undefined,
      keys: store.decodeKeys(),
      maxStored: this.init.maxChunk + 64,
      checksum: (stored) => store.codec.checksum(stored),
      store: async (fingerprint, blob) => {
        if (await writer.add(fingerprint, blob)) {
          stored++;
          bytesNew += blob.rawLength;
          storedBytes += blob.stored.length;
        } else duplicate++;
        this.lastActivity = Date.now();
      },
    });
    try {
      for (let i = 0; i < header.blobCount; i++) {
        await body.readInto(blobHeader, () => `the header of blob ${i}`);
        const h = decodeBlobHeader(blobHeader, i, this.init.maxChunk);
        const { fingerprint } = h;
        blobLengths.set(hex(fingerprint), h.rawLength);
        if (store.encrypted !== ((h.codec & CODEC_ENCRYPTED) !== 0)) {
          throw new RequestError(
            'upload_rejected',
            `blob ${i} (${hex(fingerprint)}) is ${store.encrypted ? 'not ' : ''}encrypted, but store ${store.name} is ${store.encrypted ? '' : 'not '}encrypted`,
          );
        }
        const bytes = await intake.space(h.storedLength);
        await body.readInto(bytes, () => `blob ${i} (${hex(fingerprint)})`);
        intake.add({ index: i, fingerprint, codec: h.codec, rawLength: h.rawLength, verify: !writer.has(fingerprint) }, h.storedLength);
        this.lastActivity = Date.now();
      }
      await intake.finish();
    } catch (err) {
      await intake.settle();
      throw err;
    }
    await body.expectEnd();
    // Every reference must name a blob the store has or is storing right now.
    const dependsOn: number[] = [];
    const packs: number[] = [];
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!;
      if (ref.zero) continue;
      // Most references name chunks the store already had: only a batch that carried
      // blobs needs the per-reference lookup.
      const carried = blobLengths.size > 0 ? blobLengths.get(hex(ref.fingerprint)) : undefined;
      if (carried !== undefined && carried !== ref.length) {
        throw new RequestError(
          'upload_rejected',
          `reference ${i} of batch ${seq} says ${ref.length} bytes, but the blob the batch carried for ${hex(ref.fingerprint)} has ${carried}; nothing of this batch was applied`,
        );
      }
      const indexed = this.init.store.index.packOf(ref.fingerprint);
      if (indexed !== undefined) {
        packs.push(indexed);
        continue;
      }
      const pack = writer.pendingPack(ref.fingerprint);
      if (pack === undefined) {
        throw new RequestError(
          'upload_rejected',
          `reference ${i} of batch ${seq} names chunk ${hex(ref.fingerprint)}, which the store does not have and the batch did not carry; nothing of this batch was applied`,
        );
      }
      dependsOn.push(pack);
      if (!this.pendingReferences.has(pack)) this.pendingReferences.set(pack, Uint8Array.from(ref.fingerprint));
    }
    this.init.store.lookups += refs.length;
    for (const pack of dependsOn) this.dependsOn.add(pack);
    for (const pack of packs) this.referencedPacks.add(pack);
    for (const ref of refs) {
      this.writer.add(ref.length, ref.zero, ref.fingerprint);
      this.totals.bytesRead += ref.length;
    }
    this.totals.chunks += refs.length;
    this.totals.chunksNew += stored;
    this.totals.bytesNew += bytesNew;
    this.totals.bytesStored += storedBytes;
    this.totals.bytesSent += body.bytesRead;
    this.nextSeq++;
    this.forgetDurable();
    return { seq, duplicate: false, blobsStored: stored, blobsDuplicate: duplicate };
  }

  /**
   * Commits the snapshot: checks the agent's totals against what the server received,
   * makes the blobs it depends on durable, then writes the last page and the manifest.
   */
  async commit(request: CommitRequest): Promise<SnapshotInfo> {
    if (request.batches !== this.nextSeq)
      throw new RequestError('conflict', `commit says ${request.batches} batches, but the server applied ${this.nextSeq}; send the missing batches first`);
    if (request.chunks !== this.writer.chunks || request.logicalBytes !== this.writer.logicalBytes) {
      throw new RequestError(
        'conflict',
        `commit says ${request.chunks} chunks / ${request.logicalBytes} bytes, but the batches held ${this.writer.chunks} / ${this.writer.logicalBytes}`,
      );
    }
    const { writer, store } = this.init.store;
    this.forgetDurable();
    if (this.dependsOn.size > 0) await writer.flush().catch(() => undefined);
    for (const pack of this.dependsOn) {
      const state = writer.packState(pack);
      if (state !== 'durable') {
        // The server's disk or bucket refused (full, read-only, over quota): say so, not "run again".
        const environment = findEnvironmentError(writer.packFailure(pack));
        if (environment) throw new RequestError('storage_refused', `the server could not store this snapshot: ${environment.message}; nothing was committed`);
        throw new RequestError(
          'chunks_lost',
          `chunks this snapshot needs were lost: a pack of store ${store.name} could not be written (${state}); run the backup again`,
        );
      }
    }
    const snapshot = await this.writer.commit(
      {
        job: this.init.job,
        source: this.init.source,
        startedAt: new Date(request.startedAt).toISOString(),
        finishedAt: new Date().toISOString(),
        streamHash: request.streamHash,
        ...(request.streamHashOver ? { streamHashOver: request.streamHashOver } : {}),
        ...(request.sourceStat ? { sourceStat: request.sourceStat } : {}),
        parent: this.init.parent,
        store: store.id,
        chunker: this.init.chunker,
      },
      { packs: () => this.packNames(), now: this.init.now },
    );
    this.snapshot = snapshot;
    // What the agent actually read: less than the stream when it referred to unchanged
    // files' chunks again (directory archives).
    this.totals.bytesRead = request.bytesRead;
    return snapshot;
  }

  /** Names of every pack holding a blob this snapshot references (all durable by now). */
  private *packNames(): Generator<Uint8Array> {
    const { index } = this.init.store;
    const ordinals = new Set(this.referencedPacks);
    for (const fingerprint of this.pendingReferences.values()) {
      const ordinal = index.packOf(fingerprint);
      if (ordinal === undefined)
        throw new RequestError(
          'chunks_lost',
          `a chunk this snapshot needs (${hex(fingerprint)}) is no longer in store ${this.init.store.store.name}; run the backup again`,
        );
      ordinals.add(ordinal);
    }
    for (const ordinal of ordinals) yield index.packHash(ordinal);
  }

  dedupRatio(): number {
    return dedupRatio(this.writer.logicalBytes, this.totals.bytesNew);
  }

  async abandon(): Promise<void> {
    await this.writer.settle();
  }

  private forgetDurable(): void {
    const { writer } = this.init.store;
    for (const pack of this.dependsOn) if (writer.packState(pack) === 'durable') this.dependsOn.delete(pack);
  }
}
