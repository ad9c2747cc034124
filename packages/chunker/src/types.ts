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
