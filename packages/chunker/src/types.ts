/** One chunk of a stream, in stream order. */
export interface Chunk {
  /** Byte offset of the chunk in the stream. */
  offset: number;
  length: number;
  /**
   * The chunk's bytes. A view that stays valid after the next chunk is produced (buffers
   * are never reused), so consumers may hold it while they compress or upload.
   */
  bytes: Uint8Array;
  /** 32-byte fingerprint (BLAKE3-256 unless the Chunker was given another spec). */
  fingerprint: Uint8Array;
  /** All bytes are zero: a sparse region, never stored. */
  zero: boolean;
}

export type ChunkSource = AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

/**
 * A source the worker pipeline reads straight into its segments (a file: fileSource), so
 * the bytes are not copied once more out of a read buffer. Still an AsyncIterable for every
 * other consumer.
 */
export interface ReadIntoSource extends AsyncIterable<Uint8Array> {
  /** Reads up to `length` bytes into `target` from `offset` on; 0 at the end. */
  readInto(target: Uint8Array, offset: number, length: number): Promise<number>;
  /** Releases the source (the chunker calls it when it stops reading, at the end or early). */
  close(): Promise<void>;
}

export function isReadIntoSource(source: ChunkSource): source is ReadIntoSource {
  return typeof (source as Partial<ReadIntoSource>).readInto === 'function' && typeof (source as Partial<ReadIntoSource>).close === 'function';
}
