import { Blake3Hasher } from '@napi-rs/blake-hash';
import { ChunkerParameterError, IndexFormatError } from './errors.js';

/**
 * The saved fingerprint index format (byte layout in docs/chunker-index.md):
 *
 *   header (24 bytes) | count records of (16-byte key, valueWords LE uint32) | BLAKE3-256
 *
 * Both directions stream: memory is one chunk plus one partial record, whatever the
 * index size. The trailer covers every byte before it, and the reader reports nothing
 * as valid until it has matched.
 */

export type IndexSink = NodeJS.WritableStream | { write(chunk: Uint8Array): unknown };
export type IndexSource = AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

export const INDEX_FILE_MAGIC = 'HOARDFPI';
export const INDEX_FILE_VERSION = 1;
export const INDEX_FILE_HEADER_BYTES = 24;
export const INDEX_FILE_CHECKSUM_BYTES = 32;
const KEY_BYTES = 16;
const MAGIC_BYTES = new TextEncoder().encode(INDEX_FILE_MAGIC);

export interface IndexFileHeader {
  valueWords: number;
  count: number;
}

/** Receives a file's contents as it is read; nothing is trustworthy before verified(). */
export interface IndexRecordConsumer {
  header(valueWords: number, count: number): void;
  /** `bytes` holds exactly n whole records; it is only valid during the call. */
  records(bytes: Uint8Array, n: number): void;
  /** Called once the checksum matched; returns a reason to reject the contents, if any. */
  verified(): string | undefined;
}

export function encodeIndexHeader(header: IndexFileHeader): Uint8Array {
  const bytes = new Uint8Array(INDEX_FILE_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC_BYTES, 0);
  view.setUint16(8, INDEX_FILE_VERSION, true);
  view.setUint8(10, header.valueWords);
  view.setUint8(11, KEY_BYTES);
  // 12..15 reserved, zero.
  view.setUint32(16, header.count >>> 0, true);
  view.setUint32(20, Math.floor(header.count / 2 ** 32), true);
  return bytes;
}

/** Validates a header; returns the reason it is unusable, or the decoded header. */
function decodeIndexHeader(bytes: Uint8Array): IndexFileHeader | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) return `wrong magic (not a hoard fingerprint index: expected "${INDEX_FILE_MAGIC}")`;
  }
  const version = view.getUint16(8, true);
  if (version !== INDEX_FILE_VERSION) {
    return `unsupported format version ${version} (this build reads version ${INDEX_FILE_VERSION})`;
  }
  const valueWords = view.getUint8(10);
  if (valueWords < 1 || valueWords > 4) return `header says ${valueWords} value words (expected 1 to 4)`;
  const keyBytes = view.getUint8(11);
  if (keyBytes !== KEY_BYTES) return `header says ${keyBytes}-byte keys (expected ${KEY_BYTES})`;
  if (view.getUint32(12, true) !== 0) return 'reserved header bytes 12..15 are not zero';
  const high = view.getUint32(20, true);
  if (high >= 2 ** 21) return 'entry count in the header is impossibly large (damaged header)';
  return { valueWords, count: high * 2 ** 32 + view.getUint32(16, true) };
}

export async function writeIndexFile(sink: IndexSink, header: IndexFileHeader, records: Iterable<Uint8Array>): Promise<void> {
  const hasher = new Blake3Hasher();
  const put = async (bytes: Uint8Array): Promise<void> => {
    hasher.update(bytes);
    await writeTo(sink, bytes);
  };
  await put(encodeIndexHeader(header));
  for (const chunk of records) if (chunk.length > 0) await put(chunk);
  await writeTo(sink, hasher.digestBuffer());
}

export async function readIndexFile(source: IndexSource, name: string, consumer: IndexRecordConsumer): Promise<void> {
  const fail = (reason: string): never => {
    throw new IndexFormatError(name, reason);
  };
  const hasher = new Blake3Hasher();
  const headerBytes = new Uint8Array(INDEX_FILE_HEADER_BYTES);
  let headerFill = 0;
  let header: IndexFileHeader | undefined;
  let recordBytes = 0;
  let recordsLeft = 0;
  let partial = new Uint8Array(0);
  let partialFill = 0;
  const trailer = new Uint8Array(INDEX_FILE_CHECKSUM_BYTES);
  let trailerFill = 0;
  let total = 0;

  for await (const raw of source as AsyncIterable<Uint8Array | string>) {
    if (!(raw instanceof Uint8Array)) {
      throw new ChunkerParameterError('source', typeof raw, 'a byte stream (Uint8Array chunks; open it without an encoding)');
    }
    const chunk = raw;
    const len = chunk.length;
    total += len;
    let p = 0;

    if (header === undefined) {
      const take = Math.min(INDEX_FILE_HEADER_BYTES - headerFill, len);
      headerBytes.set(chunk.subarray(0, take), headerFill);
      headerFill += take;
      p = take;
      if (headerFill < INDEX_FILE_HEADER_BYTES) continue;
      const decoded = decodeIndexHeader(headerBytes);
      if (typeof decoded === 'string') return fail(decoded);
      header = decoded;
      hasher.update(headerBytes);
      recordBytes = KEY_BYTES + 4 * header.valueWords;
      recordsLeft = header.count;
      partial = new Uint8Array(recordBytes);
      consumer.header(header.valueWords, header.count);
    }

    if (recordsLeft > 0 && partialFill > 0) {
      const take = Math.min(recordBytes - partialFill, len - p);
      partial.set(chunk.subarray(p, p + take), partialFill);
      partialFill += take;
      p += take;
      if (partialFill === recordBytes) {
        hasher.update(partial);
        consumer.records(partial, 1);
        recordsLeft--;
        partialFill = 0;
      }
    }
    if (recordsLeft > 0 && partialFill === 0) {
      const n = Math.min(recordsLeft, Math.floor((len - p) / recordBytes));
      if (n > 0) {
        const whole = chunk.subarray(p, p + n * recordBytes);
        hasher.update(whole);
        consumer.records(whole, n);
        recordsLeft -= n;
        p += n * recordBytes;
      }
      if (recordsLeft > 0 && p < len) {
        // Less than one record remains in this chunk: keep it for the next one.
        partial.set(chunk.subarray(p), 0);
        partialFill = len - p;
        p = len;
      }
    }
    if (recordsLeft === 0 && p < len) {
      const take = Math.min(INDEX_FILE_CHECKSUM_BYTES - trailerFill, len - p);
      trailer.set(chunk.subarray(p, p + take), trailerFill);
      trailerFill += take;
      p += take;
    }
    if (p < len) {
      return fail(
        `unexpected bytes after the checksum trailer (trailing garbage, or a damaged entry count); the file is longer than the ${expectedBytes(header!)} bytes its header describes`,
      );
    }
  }

  if (header === undefined) {
    return fail(`truncated: ${total} bytes, shorter than the ${INDEX_FILE_HEADER_BYTES}-byte header`);
  }
  if (recordsLeft > 0 || trailerFill < INDEX_FILE_CHECKSUM_BYTES) {
    return fail(
      `truncated (or a damaged entry count): ${total} bytes, but the header describes ${header.count} entries, ${expectedBytes(header)} bytes in all`,
    );
  }
  const digest = hasher.digestBuffer();
  if (!digest.equals(trailer)) return fail('checksum mismatch: the contents were damaged (bit rot, a torn write or tampering)');
  const rejected = consumer.verified();
  if (rejected !== undefined) fail(rejected);
}

function expectedBytes(header: IndexFileHeader): number {
  return INDEX_FILE_HEADER_BYTES + header.count * (KEY_BYTES + 4 * header.valueWords) + INDEX_FILE_CHECKSUM_BYTES;
}

/** Writes one chunk, honouring backpressure: a Node writable's 'drain', or a returned promise. */
async function writeTo(sink: IndexSink, bytes: Uint8Array): Promise<void> {
  const result: unknown = (sink as { write(chunk: Uint8Array): unknown }).write(bytes);
  if (isPromiseLike(result)) {
    await result;
  } else if (result === false && isEmitter(sink)) {
    await drained(sink);
  }
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

function isEmitter(x: unknown): x is NodeJS.EventEmitter {
  return typeof (x as { once?: unknown }).once === 'function' && typeof (x as { off?: unknown }).off === 'function';
}

function drained(emitter: NodeJS.EventEmitter): Promise<void> {
  if ((emitter as { destroyed?: boolean }).destroyed) {
    return Promise.reject(new Error('fingerprint index sink was destroyed before the index was written'));
  }
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown): void => {
      emitter.off('drain', onDrain);
      emitter.off('error', onError);
      emitter.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = (): void => settle();
    const onError = (error: unknown): void => settle(error);
    const onClose = (): void => settle(new Error('fingerprint index sink closed before the index was written'));
    emitter.on('drain', onDrain);
    emitter.on('error', onError);
    emitter.on('close', onClose);
  });
}
