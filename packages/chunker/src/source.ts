import { ChunkerParameterError } from './errors.js';
import type { ChunkSource } from './types.js';

/**
 * Reads a Node Readable or any async iterable as Uint8Array pieces. A stream in string
 * mode (setEncoding was called) would hand us re-encoded text, so it is refused rather
 * than silently chunking different bytes than the source holds.
 */
export async function* readPieces(source: ChunkSource): AsyncGenerator<Uint8Array> {
  if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source)) {
    throw new ChunkerParameterError('source', source, 'a Node Readable or an AsyncIterable<Uint8Array>');
  }
  for await (const piece of source as AsyncIterable<unknown>) {
    if (!(piece instanceof Uint8Array)) {
      throw new ChunkerParameterError('source', typeof piece, 'a stream of bytes (Uint8Array/Buffer pieces); do not call setEncoding() on it');
    }
    if (piece.length > 0) yield piece;
  }
}
