/**
 * Where restored bytes go. Every sink takes the stream in order (`write`, `zeros`); a sink
 * that can also be written at any position offers a PositionalTarget, and the restore
 * pipeline then has its decode workers write each piece where it belongs as soon as it
 * is decoded, in no particular order.
 *
 * - FileSink writes a file or a block device. A new file leaves zero runs as holes
 *   (sparse), then sets the length: it must start empty, since a hole reads back as zero
 *   only where nothing was. A device (or an existing file overwritten in place) gets its
 *   zeros written.
 * - StreamSink writes to a Writable (stdout, a pipe), zeros included, honouring
 *   backpressure.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

export interface RestoreSink {
  /** The sink keeps nothing (a verify-only restore): the pipeline only decodes and checks. */
  readonly discards?: boolean;
  /** A file descriptor the pipeline may write at any position, when the sink has one. */
  positional?(): PositionalTarget | undefined;
  write(data: Uint8Array): Promise<void>;
  zeros(length: number): Promise<void>;
  /**
   * Optional: resolves once every byte handed to write() so far has left the sink (a
   * stream's buffers included), so that the caller may reuse that memory.
   */
  drained?(): Promise<void>;
  /** All bytes are written: flush (and fsync where that means something). */
  finish(): Promise<void>;
  /** Restore failed: release what the sink holds. */
  abort(): Promise<void>;
}

/** A sink's file as the restore pipeline writes it out of order. */
export interface PositionalTarget {
  /** Written by worker threads with pwrite; stays open until finish() or abort(). */
  readonly fd: number;
  /** Zero runs may be left unwritten (holes); otherwise call zerosAt for them. */
  readonly sparse: boolean;
  zerosAt(position: number, length: number): Promise<void>;
  /** Every byte up to `length` is written: finish() gives the file this length. */
  setLength(length: number): void;
  /** `bytes` more are written (for early write-back). */
  wrote(bytes: number): void;
}

/**
 * Bytes written between two early write-backs of a file: a restore starts the disk on
 * what it wrote (fdatasync in the background) instead of leaving all of it to the final
 * fsync, which would then wait for gigabytes at the end.
 */
const EARLY_SYNC_BYTES = 256 << 20;

const ZERO_BLOCK = 1 << 20;
let zeroBlock: Uint8Array | undefined;

/** Calls `use` with views of one shared zero buffer that add up to `length` bytes. */
export async function forZeroBlocks(length: number, use: (zeros: Uint8Array) => unknown): Promise<void> {
  zeroBlock ??= new Uint8Array(ZERO_BLOCK);
  for (let left = length; left > 0; left -= ZERO_BLOCK) await use(zeroBlock.subarray(0, Math.min(left, ZERO_BLOCK)));
}

/** Writes held back until this many bytes are pending: fewer, larger pwrite calls. */
const FILE_BATCH_BYTES = 4 << 20;
/** pwritev calls of one file sink running at once (each on the libuv thread pool). */
const FLUSHES_IN_FLIGHT = 2;

export class FileSink implements RestoreSink {
  private position = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private pendingAt = 0;
  private unsynced = 0;
  private flushing: Promise<void>[] = [];
  private syncing: Promise<void> | undefined;

  private constructor(
    private readonly file: FileHandle,
    private readonly sparse: boolean,
  ) {}

  /**
   * Opens `path` for a restore. `exclusive` (default) refuses to touch an existing file;
   * `sparse` (default) leaves zero runs as holes, which needs a file that starts empty.
   */
  static async create(path: string, options: { exclusive?: boolean; sparse?: boolean } = {}): Promise<FileSink> {
    const file = await open(path, options.exclusive === false ? 'w' : 'wx');
    return new FileSink(file, options.sparse !== false);
  }

  /** An existing file or block device, written in place (zeros written, not skipped). */
  static async overwrite(path: string): Promise<FileSink> {
    return new FileSink(await open(path, 'r+'), false);
  }

  positional(): PositionalTarget {
    return {
      fd: this.file.fd,
      sparse: this.sparse,
      zerosAt: async (position, length) => {
        let at = position;
        await forZeroBlocks(length, async (zeros) => {
          for (let done = 0; done < zeros.length; ) done += (await this.file.write(zeros, done, zeros.length - done, at + done)).bytesWritten;
          at += zeros.length;
        });
      },
      setLength: (length) => {
        this.position = length;
      },
      wrote: (bytes) => {
        this.unsynced += bytes;
        if (this.unsynced < EARLY_SYNC_BYTES || this.syncing) return;
        this.unsynced = 0;
        this.syncing = this.file.datasync().finally(() => (this.syncing = undefined));
        // A failure here shows again (and is thrown) at the final sync.
        this.syncing.catch(() => undefined);
      },
    };
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.pendingBytes === 0) this.pendingAt = this.position;
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.position += data.length;
    if (this.pendingBytes >= FILE_BATCH_BYTES) await this.startFlush();
  }

  async zeros(length: number): Promise<void> {
    if (!this.sparse) return forZeroBlocks(length, (zeros) => this.write(zeros));
    await this.startFlush();
    this.position += length;
  }

  /**
   * Starts writing what is pending and returns while it is written, unless
   * FLUSHES_IN_FLIGHT writes are out already: the caller (a restore reading from the
   * network) goes on receiving while the thread pool writes.
   */
  private async startFlush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const flushing = this.flush();
    flushing.catch(() => undefined); // awaited below, in finish() or abort()
    this.flushing.push(flushing);
    if (this.flushing.length > FLUSHES_IN_FLIGHT) await this.flushing.shift();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buffers = this.pending;
    let at = this.pendingAt;
    this.pending = [];
    this.pendingBytes = 0;
    // writev may write less than asked; loop until every buffer is out.
    let i = 0;
    let skip = 0;
    while (i < buffers.length) {
      const batch = buffers.slice(i, i + 1024).map((b, j) => (j === 0 && skip > 0 ? b.subarray(skip) : b));
      const { bytesWritten } = await this.file.writev(batch, at);
      at += bytesWritten;
      let left = bytesWritten;
      while (i < buffers.length && left >= buffers[i].length - skip) {
        left -= buffers[i].length - skip;
        skip = 0;
        i++;
      }
      skip += left;
    }
  }

  async finish(): Promise<void> {
    await this.flush();
    for (const flushing of this.flushing.splice(0)) await flushing;
    // Trailing holes: only the length makes them part of the file.
    if (this.sparse) await this.file.truncate(this.position);
    await this.syncing?.catch(() => undefined);
    await this.file.sync();
    await this.file.close();
  }

  async abort(): Promise<void> {
    // No write may land after the close: the number could be another file's by then.
    await Promise.allSettled(this.flushing.splice(0));
    await this.syncing?.catch(() => undefined);
    await this.file.close().catch(() => undefined);
  }
}

export class StreamSink implements RestoreSink {
  /** Settles when the last chunk written so far has been handed to the system. */
  private flushed: Promise<void> = Promise.resolve();

  constructor(private readonly out: Writable) {}

  write(data: Uint8Array): Promise<void> {
    let done!: () => void;
    this.flushed = new Promise<void>((resolve) => (done = resolve));
    // The callback runs when this chunk (and so every one before it) left the stream's
    // buffer, or the stream failed: either way it no longer refers to the bytes.
    if (this.out.write(data, () => done())) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.out.off('drain', onDrain);
        reject(err);
      };
      const onDrain = () => {
        this.out.off('error', onError);
        resolve();
      };
      this.out.once('drain', onDrain);
      this.out.once('error', onError);
    });
  }

  drained(): Promise<void> {
    return this.flushed;
  }

  zeros(length: number): Promise<void> {
    return forZeroBlocks(length, (zeros) => this.write(zeros));
  }

  finish(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }

  async abort(): Promise<void> {
    this.out.end();
  }
}

/**
 * A sink that keeps nothing: a verify-only restore (`hoard restore --verify-only`, the
 * server's restore drills). With `discards` the pipeline's workers decode and check every
 * chunk and hand nothing back; `bytes` counts what passed.
 */
export class NullSink implements RestoreSink {
  bytes = 0;
  readonly discards: boolean;
  constructor(options: { discards?: boolean } = {}) {
    this.discards = options.discards === true;
  }
  async write(data: Uint8Array): Promise<void> {
    this.bytes += data.length;
  }
  async zeros(length: number): Promise<void> {
    this.bytes += length;
  }
  async finish(): Promise<void> {}
  async abort(): Promise<void> {}
}
