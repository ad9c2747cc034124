/**
 * A minimal NBD client (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md):
 * fixed-newstyle handshake (NBD_OPT_STRUCTURED_REPLY when the server has it, then
 * NBD_OPT_GO), pipelined NBD_CMD_READ yielded in offset order, and NBD_CMD_DISC. Enough
 * to read an export of qemu-nbd from start to end with bounded memory: at most `window`
 * requests of `requestBytes` each are outstanding or waiting to be yielded. With
 * structured replies the server sends holes (unallocated or zero clusters) as a length
 * instead of zero bytes, which makes sparse images about twice as fast to read.
 */
import { connect, type Socket } from 'node:net';
import type { ErrorCode } from '@hoard/errors';

const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
const OPT_STRUCTURED_REPLY = 8;
const REPLY_FLAG_DONE = 1;
const REPLY_TYPE_NONE = 0;
const REPLY_TYPE_OFFSET_DATA = 1;
const REPLY_TYPE_OFFSET_HOLE = 2;
const REPLY_TYPE_ERROR_BIT = 0x8000;
const REPLY_TYPE_ERROR_OFFSET = 0x8002;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const CMD_READ = 0;
const CMD_DISC = 2;

const OPTION_ERRORS: Record<number, string> = {
  1: 'unsupported option',
  2: 'policy: the server refused',
  3: 'invalid option',
  4: 'platform',
  5: 'TLS required',
  6: 'unknown export',
  7: 'shutting down',
  8: 'block size required',
  9: 'too big',
};

/** A protocol or transport failure; the message says which. */
export class NbdError extends Error {
  override name = 'NbdError';
  readonly code: ErrorCode = 'source_failed';
}

/** Reads exact byte counts from a socket, with backpressure (the socket is paused between reads). */
class SocketReader {
  private pieces: Buffer[] = [];
  private buffered = 0;
  private readonly source: AsyncIterator<Buffer>;
  constructor(socket: Socket) {
    this.source = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  async read(length: number, what: string): Promise<Buffer> {
    while (this.buffered < length) {
      const next = await this.source.next();
      if (next.done) throw new NbdError(`the NBD server closed the connection while the client waited for ${what}`);
      this.pieces.push(next.value);
      this.buffered += next.value.length;
    }
    let out: Buffer;
    if (this.pieces[0].length >= length) {
      out = this.pieces[0].subarray(0, length);
      if (this.pieces[0].length === length) this.pieces.shift();
      else this.pieces[0] = this.pieces[0].subarray(length);
    } else {
      out = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const piece = this.pieces[0];
        const take = Math.min(piece.length, length - filled);
        piece.copy(out, filled, 0, take);
        filled += take;
        if (take === piece.length) this.pieces.shift();
        else this.pieces[0] = piece.subarray(take);
      }
    }
    this.buffered -= length;
    return out;
  }
  /** Reads `length` bytes straight into target[at...]. */
  async readInto(target: Buffer, at: number, length: number, what: string): Promise<void> {
    let filled = 0;
    while (filled < length) {
      if (this.pieces.length === 0) {
        const next = await this.source.next();
        if (next.done) throw new NbdError(`the NBD server closed the connection while the client waited for ${what}`);
        this.pieces.push(next.value);
        this.buffered += next.value.length;
      }
      const piece = this.pieces[0];
      const take = Math.min(piece.length, length - filled);
      piece.copy(target, at + filled, 0, take);
      filled += take;
      this.buffered -= take;
      if (take === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(take);
    }
  }
}

export interface NbdReadOptions {
  /** Bytes per NBD_CMD_READ (qemu-nbd accepts up to 32 MiB). */
  requestBytes?: number;
  /** Requests outstanding at once. */
  window?: number;
}

export class NbdClient {
  private nextHandle = 1n;
  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    /** Export size in bytes. */
    readonly size: number,
    /** Transmission flags. */
    readonly flags: number,
    /** Whether structured replies were negotiated. */
    readonly structured: boolean,
  ) {}

  /** Connects to a unix socket and negotiates the export `exportName`. */
  static async connect(socketPath: string, exportName = ''): Promise<NbdClient> {
    const socket = connect(socketPath);
    socket.setNoDelay?.(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {}); // surfaced through the reader
    try {
      const reader = new SocketReader(socket);
      const hello = await reader.read(18, 'the server greeting');
      if (hello.readBigUInt64BE(0) !== NBDMAGIC || hello.readBigUInt64BE(8) !== IHAVEOPT) throw new NbdError('the server is not a newstyle NBD server');
      const serverFlags = hello.readUInt16BE(16);
      if (!(serverFlags & FLAG_FIXED_NEWSTYLE)) throw new NbdError('the NBD server does not speak fixed newstyle');
      const clientFlags = FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES);
      const flagsBuf = Buffer.alloc(4);
      flagsBuf.writeUInt32BE(clientFlags);
      await write(socket, flagsBuf);

      // NBD_OPT_STRUCTURED_REPLY: holes come as lengths, not zero bytes. Refused: simple replies.
      await write(socket, optionRequest(OPT_STRUCTURED_REPLY, Buffer.alloc(0)));
      const structured = (await readOptionReply(reader)).type === REP_ACK;

      // NBD_OPT_GO: name length, name, no info requests (NBD_INFO_EXPORT is always sent).
      const name = Buffer.from(exportName, 'utf8');
      const data = Buffer.alloc(4 + name.length + 2);
      data.writeUInt32BE(name.length, 0);
      name.copy(data, 4);
      data.writeUInt16BE(0, 4 + name.length);
      await write(socket, optionRequest(OPT_GO, data));

      let size: number | undefined;
      let flags = 0;
      for (;;) {
        const { type, payload } = await readOptionReply(reader);
        if (type & 0x80000000) {
          const kind = OPTION_ERRORS[type & 0x7fffffff] ?? `error ${type & 0x7fffffff}`;
          throw new NbdError(`the NBD server refused export ${JSON.stringify(exportName)}: ${kind}${payload.length ? `: ${payload.toString('utf8')}` : ''}`);
        }
        if (type === REP_INFO && payload.length >= 12 && payload.readUInt16BE(0) === INFO_EXPORT) {
          size = Number(payload.readBigUInt64BE(2));
          flags = payload.readUInt16BE(10);
        } else if (type === REP_ACK) {
          break;
        }
      }
      if (size === undefined) throw new NbdError('the NBD server did not say the export size');
      return new NbdClient(socket, reader, size, flags, structured);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /**
   * The bytes [start, end) in order. Requests are pipelined; replies may arrive in any
   * order and are held until their turn, so memory stays within window x requestBytes.
   */
  async *read(start = 0, end = this.size, options: NbdReadOptions = {}): AsyncGenerator<Buffer> {
    const requestBytes = options.requestBytes ?? 2 << 20;
    const window = options.window ?? 4;
    const pending = new Map<bigint, { offset: number; length: number; buffer?: Buffer; covered?: number }>();
    const ready = new Map<number, Buffer>();
    let nextRequest = start;
    let nextYield = start;
    while (nextYield < end) {
      while (pending.size + ready.size < window && nextRequest < end) {
        const length = Math.min(requestBytes, end - nextRequest);
        const handle = this.nextHandle++;
        pending.set(handle, { offset: nextRequest, length });
        this.socket.write(request(CMD_READ, handle, nextRequest, length));
        nextRequest += length;
      }
      const piece = ready.get(nextYield);
      if (piece) {
        ready.delete(nextYield);
        nextYield += piece.length;
        yield piece;
        continue;
      }
      if (this.structured) await this.readStructuredReply(pending, ready);
      else await this.readSimpleReply(pending, ready);
    }
  }

  private async readSimpleReply(pending: Map<bigint, { offset: number; length: number }>, ready: Map<number, Buffer>): Promise<void> {
    const head = await this.reader.read(16, 'a read reply');
    if (head.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new NbdError('bad reply magic from the NBD server');
    const error = head.readUInt32BE(4);
    const handle = head.readBigUInt64BE(8);
    const req = pending.get(handle);
    if (!req) throw new NbdError(`the NBD server answered an unknown request (handle ${handle})`);
    pending.delete(handle);
    if (error !== 0) throw new NbdError(`the NBD server failed to read ${req.length} bytes at offset ${req.offset}: ${errnoWords(error)}`);
    ready.set(req.offset, await this.reader.read(req.length, `${req.length} bytes at offset ${req.offset}`));
  }

  /** One chunk of a structured reply; a request's buffer is complete at its DONE chunk. */
  private async readStructuredReply(
    pending: Map<bigint, { offset: number; length: number; buffer?: Buffer; covered?: number }>,
    ready: Map<number, Buffer>,
  ): Promise<void> {
    const head = await this.reader.read(20, 'a read reply');
    const magic = head.readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      // Allowed for errors even with structured replies; 16-byte header.
      const error = head.readUInt32BE(4);
      const handle = head.readBigUInt64BE(8);
      const req = pending.get(handle);
      throw new NbdError(`the NBD server failed a read${req ? ` of ${req.length} bytes at offset ${req.offset}` : ''}: ${errnoWords(error)}`);
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new NbdError('bad reply magic from the NBD server');
    const flags = head.readUInt16BE(4);
    const type = head.readUInt16BE(6);
    const handle = head.readBigUInt64BE(8);
    const length = head.readUInt32BE(16);
    const req = pending.get(handle);
    if (!req) throw new NbdError(`the NBD server answered an unknown request (handle ${handle})`);
    req.buffer ??= Buffer.allocUnsafe(req.length);
    req.covered ??= 0;
    const where = `${req.length} bytes at offset ${req.offset}`;
    if (type === REPLY_TYPE_OFFSET_DATA) {
      if (length < 8) throw new NbdError('short data chunk from the NBD server');
      const offset = Number((await this.reader.read(8, where)).readBigUInt64BE(0));
      const size = length - 8;
      if (offset < req.offset || offset + size > req.offset + req.length) throw new NbdError(`the NBD server sent data outside the request (${where})`);
      await this.reader.readInto(req.buffer, offset - req.offset, size, where);
      req.covered += size;
    } else if (type === REPLY_TYPE_OFFSET_HOLE) {
      const body = await this.reader.read(length, where);
      const offset = Number(body.readBigUInt64BE(0));
      const size = body.readUInt32BE(8);
      if (offset < req.offset || offset + size > req.offset + req.length) throw new NbdError(`the NBD server sent a hole outside the request (${where})`);
      req.buffer.fill(0, offset - req.offset, offset - req.offset + size);
      req.covered += size;
    } else if (type & REPLY_TYPE_ERROR_BIT) {
      const body = await this.reader.read(length, where);
      const error = body.readUInt32BE(0);
      const messageLength = body.readUInt16BE(4);
      const message = body.subarray(6, 6 + messageLength).toString('utf8');
      const at = type === REPLY_TYPE_ERROR_OFFSET && body.length >= 6 + messageLength + 8 ? ` at offset ${body.readBigUInt64BE(6 + messageLength)}` : '';
      throw new NbdError(`the NBD server failed to read ${where}${at}: ${errnoWords(error)}${message ? `: ${message}` : ''}`);
    } else if (type !== REPLY_TYPE_NONE) {
      throw new NbdError(`unexpected reply chunk type ${type} from the NBD server`);
    } else if (length) {
      await this.reader.read(length, where);
    }
    if (flags & REPLY_FLAG_DONE) {
      pending.delete(handle);
      if (req.covered !== req.length) throw new NbdError(`the NBD server answered ${req.covered} of ${where}`);
      ready.set(req.offset, req.buffer);
    }
  }

  /** Sends NBD_CMD_DISC and closes the connection (the server then ends the session cleanly). */
  async disconnect(): Promise<void> {
    if (this.socket.destroyed) return;
    await write(this.socket, request(CMD_DISC, this.nextHandle++, 0, 0)).catch(() => {});
    await new Promise<void>((resolve) => this.socket.end(resolve));
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  5: 'EIO',
  12: 'ENOMEM',
  22: 'EINVAL',
  28: 'ENOSPC',
  75: 'EOVERFLOW',
  95: 'ENOTSUP',
  108: 'ESHUTDOWN',
};

function errnoWords(error: number): string {
  return `errno ${error}${ERRNO_NAMES[error] ? ` (${ERRNO_NAMES[error]})` : ''}`;
}

function optionRequest(option: number, data: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(IHAVEOPT, 0);
  head.writeUInt32BE(option, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

async function readOptionReply(reader: SocketReader): Promise<{ type: number; payload: Buffer }> {
  const head = await reader.read(20, 'an option reply');
  if (head.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new NbdError('bad option reply magic from the NBD server');
  const type = head.readUInt32BE(12);
  const length = head.readUInt32BE(16);
  return { type, payload: length ? await reader.read(length, 'an option reply payload') : Buffer.alloc(0) };
}

function request(type: number, handle: bigint, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt32BE(REQUEST_MAGIC, 0);
  buf.writeUInt16BE(0, 4); // command flags
  buf.writeUInt16BE(type, 6);
  buf.writeBigUInt64BE(handle, 8);
  buf.writeBigUInt64BE(BigInt(offset), 16);
  buf.writeUInt32BE(length, 24);
  return buf;
}

function write(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}
