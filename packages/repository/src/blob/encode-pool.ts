/**
 * The encode workers of backups (encode-worker.ts): one pool per process, started on first
 * use, idle workers do not keep the process alive. A worker that dies fails the jobs it
 * held and is replaced.
 *
 * Chunks travel in groups: `encode` copies each chunk into the open group's buffer, and a
 * group goes to a worker when it is full or at the next turn of the event loop. The worker writes each chunk's stored
 * bytes back into the same buffer and answers once per group. One message per chunk cost
 * ~40 us on each side (a 512 MiB dump at 16 KiB chunks: a second of the worker's time in
 * postMessage alone); per group it is noise.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
// The subpath, not the package index: the encode worker loads this module too, and needs none of the chunker.
import { WorkerHold } from '@hoard/chunker/worker-hold';
import type { ErrorCode } from '@hoard/errors';
import type { EncodedBlob } from './codec.js';
import type { BlobCompression } from './compression.js';
import { GCM_NONCE_BYTES, GCM_TAG_BYTES } from './gcm.js';

/** One group of chunks, sent to a worker. */
export interface EncodeGroup {
  id: number;
  /** Chunk `i`'s bytes are `buffer[starts[i] .. starts[i] + lengths[i]]`; transferred. */
  buffer: ArrayBuffer;
  starts: Uint32Array;
  lengths: Uint32Array;
  /** 32 bytes per chunk; only for encrypted stores (the fingerprint is GCM's associated data). */
  fingerprints?: Uint8Array;
  dataKey?: Uint8Array;
  compression: BlobCompression;
}
/** The group's buffer back, chunk `i`'s stored bytes at `buffer[offsets[i] .. + lengths[i]]`. */
export interface EncodeGroupDone {
  id: number;
  buffer: ArrayBuffer;
  offsets: Uint32Array;
  lengths: Uint32Array;
  codecs: Uint8Array;
  checksums: BigUint64Array;
}
export interface EncodeGroupFailed {
  id: number;
  error: string;
}

/**
 * Bytes reserved after each chunk in a group: a sealed blob that did not compress is this
 * much longer than the chunk, and the worker writes stored bytes back in place, so no
 * chunk's output may reach the next chunk's input.
 */
export const SEAL_OVERHEAD = GCM_NONCE_BYTES + GCM_TAG_BYTES;

export class EncodeWorkerError extends Error {
  override readonly name = 'EncodeWorkerError';
  readonly code: ErrorCode = 'work_failed';
}

interface Job {
  resolve: (blob: EncodedBlob) => void;
  reject: (err: Error) => void;
}

/** A group being filled on this thread, then in flight to its worker. */
interface Group {
  id: number;
  slot: Slot;
  buffer: ArrayBuffer;
  used: number;
  starts: number[];
  lengths: number[];
  /** 32 bytes per chunk, copied in as chunks arrive; only for encrypted stores. */
  fingerprints: Uint8Array | undefined;
  jobs: Job[];
  settings: EncodeSettings;
  /** The caller's buffer (encodeInPlace): it goes back to the caller, never to the free list. */
  borrowed?: boolean;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Group>;
  queuedBytes: number;
  /** Held while it starts and while groups are in flight; `hold.online` settles once it has started. */
  hold: WorkerHold;
}

interface EncodeSettings {
  dataKey?: Uint8Array;
  compression: BlobCompression;
}

/** A chunk of a caller's buffer for encodeInPlace: `buffer[start .. start + length]`. */
export interface InPlaceChunk {
  start: number;
  length: number;
  fingerprint: Uint8Array;
}

/** encodeInPlace's answer: the buffer back, chunk `i`'s stored bytes in `blobs[i].stored` (views of it). */
export interface EncodedInPlace {
  buffer: ArrayBuffer;
  blobs: EncodedBlob[];
}

/**
 * HOARD_ENCODE_WORKERS, else one per core but one (the chunker's worker and the main thread
 * need the other), at least 1, at most 4. Each worker is an isolate of ~12 MiB: on two
 * cores a second one bought no speed (the cores were busy already) and cost that memory.
 */
export function defaultEncodeWorkers(): number {
  const configured = Number(process.env.HOARD_ENCODE_WORKERS);
  if (Number.isInteger(configured) && configured >= 1 && configured <= 64) return configured;
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

let shared: EncodePool | undefined;

/**
 * A group's buffer (larger only for a chunk that needs more): 1 MiB is a few ms of zstd,
 * so a worker never waits long for its next group. A group is sent when the next chunk
 * does not fit, at GROUP_CHUNKS chunks, or at the next turn of the event loop.
 */
const GROUP_BYTES = 1024 * 1024;
const GROUP_CHUNKS = 256;
/** Group buffers back from the workers kept for reuse (a backup keeps a few groups in flight). */
const KEEP_GROUP_BUFFERS = 6;

export class EncodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private open: Group | undefined;
  private flushScheduled = false;
  /**
   * Group buffers back from the workers, by size: chunks travel to a worker and their stored
   * bytes back in one buffer, reused for a later group once every blob in it is released,
   * so a backup does not leave a trail of garbage buffers (V8 collects them only after tens of MiB).
   */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeCount = 0;

  constructor(readonly size: number = defaultEncodeWorkers()) {
    for (let i = 0; i < size; i++) this.slots.push(this.start());
  }

  static shared(): EncodePool {
    shared ??= new EncodePool();
    return shared;
  }

  /** Settles once every worker of the pool has started. */
  online(): Promise<void> {
    return Promise.all(this.slots.map((s) => s.hold.online)).then(() => undefined);
  }

  /** Encodes a copy of `raw` (the caller may reuse `raw` as soon as this returns). */
  encode(raw: Uint8Array, fingerprint: Uint8Array, settings: EncodeSettings): Promise<EncodedBlob> {
    const need = raw.length + SEAL_OVERHEAD;
    let group = this.open;
    if (group && (group.buffer.byteLength - group.used < need || !sameSettings(group.settings, settings))) {
      this.send(group);
      group = undefined;
    }
    group ??= this.openGroup(need, settings);
    const start = group.used;
    new Uint8Array(group.buffer, start, raw.length).set(raw);
    group.used += need;
    group.starts.push(start);
    group.lengths.push(raw.length);
    group.fingerprints?.set(fingerprint, 32 * group.starts.length - 32);
    const done = new Promise<EncodedBlob>((resolve, reject) => group.jobs.push({ resolve, reject }));
    if (group.jobs.length >= GROUP_CHUNKS) this.send(group);
    else if (!this.flushScheduled) {
      // A lone chunk must not wait for company: send what is open at the next turn of the loop.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (this.open) this.send(this.open);
      });
    }
    return done;
  }

  /**
   * Encodes chunks of the caller's own buffer where they lie, in one message: the buffer is
   * transferred to a worker (unusable here until the answer) and comes back holding the
   * stored bytes, so a caller that gathers its chunks in a buffer anyway (the agent's batch
   * arena) needs no group buffer and no second copy. Each chunk must be followed by
   * SEAL_OVERHEAD bytes the caller does not need (a sealed blob grows by that much), chunks
   * in increasing order. On failure the buffer is lost with the worker's answer.
   */
  encodeInPlace(buffer: ArrayBuffer, chunks: readonly InPlaceChunk[], settings: EncodeSettings): Promise<EncodedInPlace> {
    let end = 0;
    for (const c of chunks) {
      if (c.start < end || c.start + c.length + SEAL_OVERHEAD > buffer.byteLength) {
        throw new RangeError(`encodeInPlace: the chunk at ${c.start} (${c.length} bytes) overlaps the previous one's reserve or the buffer's end`);
      }
      end = c.start + c.length + SEAL_OVERHEAD;
    }
    if (chunks.length === 0) return Promise.resolve({ buffer, blobs: [] });
    const encrypted = settings.dataKey !== undefined;
    const group: Group = {
      id: this.nextId++,
      slot: this.leastQueued(),
      buffer,
      used: end,
      starts: chunks.map((c) => c.start),
      lengths: chunks.map((c) => c.length),
      fingerprints: encrypted ? new Uint8Array(32 * chunks.length) : undefined,
      jobs: [],
      settings,
      borrowed: true,
    };
    if (group.fingerprints) chunks.forEach((c, i) => group.fingerprints!.set(c.fingerprint, 32 * i));
    const blobs = chunks.map(() => new Promise<EncodedBlob>((resolve, reject) => group.jobs.push({ resolve, reject })));
    this.send(group);
    return Promise.all(blobs).then((done) => ({ buffer: done[0].stored.buffer as ArrayBuffer, blobs: done }));
  }

  private leastQueued(): Slot {
    let slot = this.slots[0];
    for (const s of this.slots) if (s.queuedBytes < slot.queuedBytes) slot = s;
    return slot;
  }

  private openGroup(need: number, settings: EncodeSettings): Group {
    const group: Group = {
      id: this.nextId++,
      slot: this.leastQueued(),
      buffer: this.takeBuffer(Math.max(GROUP_BYTES, need)),
      used: 0,
      starts: [],
      lengths: [],
      fingerprints: settings.dataKey ? new Uint8Array(32 * GROUP_CHUNKS) : undefined,
      jobs: [],
      settings,
    };
    this.open = group;
    return group;
  }

  private send(group: Group): void {
    if (this.open === group) this.open = undefined;
    const { slot } = group;
    slot.inFlight.set(group.id, group);
    slot.queuedBytes += group.used;
    slot.hold.jobs(slot.inFlight.size);
    const message: EncodeGroup = {
      id: group.id,
      buffer: group.buffer,
      starts: Uint32Array.from(group.starts),
      lengths: Uint32Array.from(group.lengths),
      fingerprints: group.fingerprints?.subarray(0, 32 * group.starts.length),
      dataKey: group.settings.dataKey,
      compression: group.settings.compression,
    };
    slot.worker.postMessage(message, [group.buffer]);
  }

  private settle(slot: Slot, reply: EncodeGroupDone | EncodeGroupFailed): void {
    const group = slot.inFlight.get(reply.id);
    if (!group) return;
    slot.inFlight.delete(reply.id);
    slot.queuedBytes -= group.used;
    slot.hold.jobs(slot.inFlight.size);
    if ('error' in reply) {
      const err = new EncodeWorkerError(`encoding a chunk failed: ${reply.error}`);
      for (const job of group.jobs) job.reject(err);
      return;
    }
    // The buffer goes back to the free list when the caller has released every blob in it
    // (a borrowed one is the caller's: its blobs have nothing to release).
    let held = group.jobs.length;
    const release = (): void => {
      if (--held === 0 && !group.borrowed) this.giveBuffer(reply.buffer);
    };
    group.jobs.forEach((job, i) => {
      let released = false;
      job.resolve({
        stored: new Uint8Array(reply.buffer, reply.offsets[i], reply.lengths[i]),
        codec: reply.codecs[i],
        rawLength: group.lengths[i],
        checksum: reply.checksums[i],
        release: () => {
          if (!released) release();
          released = true;
        },
      });
    });
  }

  private takeBuffer(bytes: number): ArrayBuffer {
    const size = 2 ** Math.ceil(Math.log2(bytes));
    const reused = this.free.get(size)?.pop();
    if (reused) {
      this.freeCount--;
      return reused;
    }
    return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  }

  private giveBuffer(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (this.freeCount >= KEEP_GROUP_BUFFERS || (size & (size - 1)) !== 0) return;
    const list = this.free.get(size) ?? [];
    list.push(buffer);
    this.free.set(size, list);
    this.freeCount++;
  }

  private start(): Slot {
    // Young generation capped as the chunker's and decode workers' are: its data lives in
    // transferred buffers, and V8 would grow an uncapped one to 32 MiB under the allocation
    // rate (below 4 MiB, minor GCs cost measurably more CPU).
    const worker = new Worker(new URL('./encode-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (reply: EncodeGroupDone | EncodeGroupFailed) => this.settle(slot, reply));
    // The hold after the 'message' listener (see WorkerHold).
    const slot: Slot = { worker, inFlight: new Map(), queuedBytes: 0, hold: new WorkerHold(worker) };
    const fail = (err: Error) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      for (const group of slot.inFlight.values()) for (const job of group.jobs) job.reject(err);
      slot.inFlight.clear();
      // A group still being filled for this worker goes to the replacement.
      const replacement = this.start();
      this.slots[index] = replacement;
      if (this.open?.slot === slot) this.open.slot = replacement;
    };
    worker.on('error', (err) => fail(new EncodeWorkerError(`a backup encode worker failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new EncodeWorkerError(`a backup encode worker exited (code ${code})`)));
    return slot;
  }
}

function sameSettings(a: EncodeSettings, b: EncodeSettings): boolean {
  if (a === b) return true;
  if (a.compression.kind !== b.compression.kind) return false;
  if (a.compression.kind === 'zstd' && b.compression.kind === 'zstd' && a.compression.level !== b.compression.level) return false;
  if (!a.dataKey || !b.dataKey) return a.dataKey === b.dataKey;
  return Buffer.compare(a.dataKey, b.dataKey) === 0;
}
