/**
 * The framed restore stream (GET /v1/jobs/J/restore?frames=1, docs/protocol.md,
 * "Restore stream"). The raw answer can only be cut short when the server finds damage,
 * and cannot say where the zeros are; frames carry both:
 *
 *   'D' u32 LE n, n bytes        data
 *   'Z' u64 LE n                 n zero bytes (a hole: a sparse target skips it)
 *   'E' u32 LE n, n bytes JSON   the end: {"bytes":N,"streamHashChecked":bool}
 *   'X' u32 LE n, n bytes JSON   the restore failed: {"error":"...","code":"data_damaged"|...}
 *
 * Exactly one 'E' or 'X' ends a stream; a stream that stops before one was cut off.
 */
import { isErrorCode, type ErrorCode } from '@hoard/errors';
import { WireFormatError } from './wire.js';

export const CONTENT_TYPE_RESTORE_FRAMES = 'application/x-hoard-restore-frames';

export const FRAME_DATA = 0x44; // 'D'
export const FRAME_ZEROS = 0x5a; // 'Z'
export const FRAME_END = 0x45; // 'E'
export const FRAME_ERROR = 0x58; // 'X'

/** Largest JSON trailer a client accepts. */
const MAX_TRAILER_BYTES = 64 * 1024;

export interface RestoreEnd {
  bytes: number;
  /** The whole stream was restored and its hash matched the manifest. */
  streamHashChecked: boolean;
}

export interface RestoreFailure {
  error: string;
  /**
   * A code of hoard's error table (@hoard/errors): `data_damaged` (stored data failed a
   * check), `storage_unavailable` (the object store could not be read), `internal`. Older
   * servers send `damaged` and `unavailable`; clients read them as the first two.
   */
  code: string;
}

export type RestoreFrame = { data: Uint8Array } | { zeros: number };

/** The server found a problem after the stream had begun: its message, as the server put it. */
export class RestoreStreamError extends Error {
  override readonly name = 'RestoreStreamError';
  /** The frame's code as one of the table's; a code this build does not know is `internal`. */
  readonly code: ErrorCode;
  constructor(message: string, code: string) {
    super(message);
    this.code = LEGACY_FRAME_CODES.get(code) ?? (isErrorCode(code) ? code : 'internal');
  }
}

/** The codes of servers from before the error table. */
const LEGACY_FRAME_CODES: ReadonlyMap<string, ErrorCode> = new Map([
  ['damaged', 'data_damaged'],
  ['unavailable', 'storage_unavailable'],
]);

export function dataFrameHeader(length: number): Uint8Array {
  const h = Buffer.allocUnsafe(5);
  h[0] = FRAME_DATA;
  h.writeUInt32LE(length, 1);
  return h;
}

export function zerosFrame(length: number): Uint8Array {
  const h = Buffer.allocUnsafe(9);
  h[0] = FRAME_ZEROS;
  h.writeBigUInt64LE(BigInt(length), 1);
  return h;
}

export function endFrame(end: RestoreEnd): Uint8Array {
  return jsonFrame(FRAME_END, end);
}

export function errorFrame(failure: RestoreFailure): Uint8Array {
  return jsonFrame(FRAME_ERROR, failure);
}

function jsonFrame(type: number, value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value));
  const h = Buffer.allocUnsafe(5 + body.length);
  h[0] = type;
  h.writeUInt32LE(body.length, 1);
  body.copy(h, 5);
  return h;
}

/**
 * Parses a framed body as it arrives. Data frames are passed on as views of the
 * received pieces (never reassembled), so memory does not grow with frame size.
 * Throws RestoreStreamError on an 'X' frame and WireFormatError on a malformed or cut
 * stream; returns the 'E' frame's figures.
 */
export async function* readRestoreFrames(body: AsyncIterable<Uint8Array>): AsyncGenerator<RestoreFrame, RestoreEnd> {
  let header = Buffer.alloc(0); // bytes of a frame header (or JSON trailer) not complete yet
  let dataLeft = 0; // bytes of the current data frame still to come
  let end: RestoreEnd | undefined;
  for await (const chunk of body) {
    if (end && chunk.length > 0) throw new WireFormatError('restore stream: bytes after its last frame');
    let at = 0;
    while (at < chunk.length) {
      if (dataLeft > 0) {
        const n = Math.min(dataLeft, chunk.length - at);
        yield { data: chunk.subarray(at, at + n) };
        dataLeft -= n;
        at += n;
        continue;
      }
      // Collect a whole header: type + u32/u64, and for E/X the JSON after it.
      const need = headerBytes(header, chunk, at);
      const take = Math.min(need - header.length, chunk.length - at);
      header = Buffer.concat([header, chunk.subarray(at, at + take)]);
      at += take;
      if (header.length < need || headerBytes(header, new Uint8Array(0), 0) > header.length) continue;
      const type = header[0];
      if (type === FRAME_DATA) {
        dataLeft = header.readUInt32LE(1);
      } else if (type === FRAME_ZEROS) {
        const length = Number(header.readBigUInt64LE(1));
        if (!Number.isSafeInteger(length)) throw new WireFormatError(`restore stream: a hole of ${length} bytes`);
        yield { zeros: length };
      } else {
        const json = parseJson(header.subarray(5));
        if (at < chunk.length) throw new WireFormatError('restore stream: bytes after its last frame');
        if (type === FRAME_ERROR) {
          const f = json as Partial<RestoreFailure>;
          throw new RestoreStreamError(
            typeof f.error === 'string' ? f.error : 'the server reported a failure without a message',
            typeof f.code === 'string' ? f.code : 'internal',
          );
        }
        const e = json as Partial<RestoreEnd>;
        if (typeof e.bytes !== 'number' || typeof e.streamHashChecked !== 'boolean')
          throw new WireFormatError('restore stream: an end frame without bytes and streamHashChecked');
        end = { bytes: e.bytes, streamHashChecked: e.streamHashChecked };
      }
      header = Buffer.alloc(0);
    }
  }
  if (end) return end;
  throw new WireFormatError('restore stream: the connection ended before the server said the restore was complete');
}

/** Bytes of the header that starts `header` (+ `chunk` from `at`), as far as known so far. */
function headerBytes(header: Buffer, chunk: Uint8Array, at: number): number {
  const type = header.length > 0 ? header[0] : chunk[at];
  if (type === FRAME_DATA) return 5;
  if (type === FRAME_ZEROS) return 9;
  if (type === FRAME_END || type === FRAME_ERROR) {
    if (header.length < 5) return 5;
    const n = header.readUInt32LE(1);
    if (n > MAX_TRAILER_BYTES) throw new WireFormatError(`restore stream: a trailer of ${n} bytes (at most ${MAX_TRAILER_BYTES})`);
    return 5 + n;
  }
  throw new WireFormatError(`restore stream: unknown frame type ${type}`);
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new WireFormatError('restore stream: a trailer that is not JSON');
  }
}
