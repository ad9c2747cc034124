/**
 * The blobs of one uploaded batch, from the request body to the store's writer.
 *
 * Blobs are read into groups of about GROUP_BYTES. With upload verification on, a full
 * group goes to the process's decode workers (`DecodePool`, the restore's: decompress,
 * lz4 or zstd, and re-hash against the fingerprint) while the next group is read; only a
 * blob that verified is handed to the writer, and groups reach the writer in body order.
 * The main thread is left with reading sockets, the xxh64 checksum and packing: the
 * decompression and BLAKE3 of every new blob used to run here, one await per blob.
 *
 * Memory per request: at most GROUPS_IN_FLIGHT groups (plus one being read). The group
 * buffers are the process's, reused from group to group and from request to request (an
 * 8 MiB batch used to allocate, zero and drop four 1 MiB buffers: garbage and page faults
 * on every request); at most SPARE_BUFFERS of each size wait between requests.
 */
import { RequestError } from '@hoard/protocol';
import type { DecodePool, EncodedBlob } from '@hoard/repository';

/** The store's keys as the decode workers take them (restore/decode-protocol.ts). */
type DecodeKeys = Parameters<DecodePool['run']>[0]['keys'];

const GROUP_BYTES = 1 << 20;
const GROUPS_IN_FLIGHT = 3;
/** Group buffers kept between requests, per size: enough for two requests at full depth. */
const SPARE_BUFFERS = 2 * (GROUPS_IN_FLIGHT + 1);
/** Free group buffers by size (a size is a store's largest stored blob, at least GROUP_BYTES). */
const spareBuffers = new Map<number, ArrayBuffer[]>();

function takeBuffer(capacity: number): ArrayBuffer {
  return spareBuffers.get(capacity)?.pop() ?? new ArrayBuffer(capacity);
}

function giveBack(buffer: ArrayBuffer): void {
  let spare = spareBuffers.get(buffer.byteLength);
  if (!spare) spareBuffers.set(buffer.byteLength, (spare = []));
  if (spare.length < SPARE_BUFFERS) spare.push(buffer);
}
/** Fields per blob of a DecodeJob (decode-protocol.ts BLOB_FIELDS): offset, stored length, codec, raw length. */
const FIELDS = 4;

export interface IntakeBlob {
  /** Position of the blob in its batch (for messages). */
  index: number;
  fingerprint: Uint8Array;
  codec: number;
  rawLength: number;
  /** Decode and re-hash it first (false: the store already has it, the writer will count a duplicate). */
  verify: boolean;
}

interface Group {
  buffer: ArrayBuffer;
  used: number;
  blobs: (IntakeBlob & { at: number; length: number })[];
}

export interface BlobIntakeOptions {
  /** The decode workers; undefined: blobs are stored unverified. */
  pool: DecodePool | undefined;
  keys: DecodeKeys;
  maxStored: number;
  checksum: (stored: Uint8Array) => bigint;
  /** Hands one blob to the store's writer (in body order, after it verified). */
  store: (fingerprint: Uint8Array, blob: EncodedBlob) => Promise<void>;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class BlobIntake {
  private current: Group;
  /** Groups sent off, oldest first: each settles once its blobs are with the writer. */
  private readonly queue: Promise<void>[] = [];
  /** Groups reach the writer one after another. */
  private tail: Promise<void> = Promise.resolve();
  private readonly capacity: number;

  constructor(private readonly options: BlobIntakeOptions) {
    this.capacity = Math.max(GROUP_BYTES, options.maxStored);
    this.current = this.newGroup();
  }

  /** Where the next blob's `length` stored bytes go; read them in, then call `add`. */
  async space(length: number): Promise<Uint8Array> {
    if (this.current.used + length > this.current.buffer.byteLength) await this.dispatch();
    return new Uint8Array(this.current.buffer, this.current.used, length);
  }

  /** The blob whose bytes were just read into `space(length)`. */
  add(blob: IntakeBlob, length: number): void {
    this.current.blobs.push({ ...blob, at: this.current.used, length });
    this.current.used += length;
  }

  /** Every blob read so far is verified and with the writer (or the first failure is thrown). */
  async finish(): Promise<void> {
    if (this.current.blobs.length > 0) await this.dispatch();
    while (this.queue.length > 0) await this.queue.shift();
    this.release();
  }

  /**
   * A request failing: the blobs read whole so far still go to the writer (once verified),
   * so the agent's retry finds them present; waits for that without throwing.
   */
  async settle(): Promise<void> {
    if (this.current.blobs.length > 0) await this.dispatch().catch(() => undefined);
    await Promise.allSettled(this.queue.splice(0));
    this.release();
  }

  /** The group being read is not needed any more: its buffer serves the next request. */
  private release(): void {
    if (this.current.blobs.length === 0 && this.current.buffer.byteLength > 0) giveBack(this.current.buffer);
    this.current = { buffer: new ArrayBuffer(0), used: 0, blobs: [] };
  }

  private newGroup(): Group {
    return { buffer: takeBuffer(this.capacity), used: 0, blobs: [] };
  }

  private async dispatch(): Promise<void> {
    const group = this.current;
    this.current = this.newGroup();
    const verified = this.verify(group);
    const stored = Promise.all([verified, this.tail]).then(([buffer]) => this.storeGroup(group, buffer));
    // A failure is thrown to the request by finish() or the next dispatch, not through the chain.
    this.tail = stored.catch(() => undefined);
    this.queue.push(stored);
    while (this.queue.length >= GROUPS_IN_FLIGHT) await this.queue.shift();
  }

  /** Resolves to the group's buffer (transferred to a worker and back) once every blob to verify did. */
  private async verify(group: Group): Promise<ArrayBuffer> {
    const checked = group.blobs.filter((b) => b.verify);
    if (!this.options.pool || checked.length === 0) return group.buffer;
    const blobs = new Int32Array(checked.length * FIELDS);
    const fingerprints = new Uint8Array(checked.length * 32);
    checked.forEach((b, i) => {
      blobs.set([b.at, b.length, b.codec, b.rawLength], i * FIELDS);
      fingerprints.set(b.fingerprint, i * 32);
    });
    const reply = await this.options.pool.run(
      {
        keys: this.options.keys,
        buffer: group.buffer,
        byteOffset: 0,
        byteLength: group.used,
        blobs,
        fingerprints,
        writes: new Float64Array(0),
        returnData: false,
      },
      [group.buffer],
    );
    if ('error' in reply) {
      const bad = checked[reply.error.blob ?? 0]!;
      // A blob that does not decode to its fingerprint would poison every later backup that
      // dedups against it: it is refused here rather than found at restore.
      throw new RequestError('upload_rejected', `blob ${bad.index} does not match its fingerprint ${hex(bad.fingerprint)}: ${reply.error.message}`);
    }
    return reply.input;
  }

  private async storeGroup(group: Group, buffer: ArrayBuffer): Promise<void> {
    for (const b of group.blobs) {
      const stored = new Uint8Array(buffer, b.at, b.length);
      await this.options.store(b.fingerprint, { stored, codec: b.codec, rawLength: b.rawLength, checksum: this.options.checksum(stored) });
    }
    // The writer copied every blob (StoreWriter.add resolves once it has): the buffer serves the next group.
    giveBack(buffer);
  }
}
