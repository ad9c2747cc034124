/**
 * Small HTTP helpers: reading bounded bodies, exact-length binary reads from a streamed
 * body, and JSON answers. Every error a caller can cause becomes a RequestError (4xx with
 * a message naming what is wrong); nothing a client sends may crash the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON, MAX_JSON_BYTES, RequestError } from '@hoard/protocol';

export function requireContentType(req: IncomingMessage, expected: string): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== expected) {
    throw new RequestError('unsupported_media_type', `this call takes Content-Type ${expected}; got ${type === '' ? 'none' : type}`);
  }
}

/** Reads a whole body of at most `limit` bytes (JSON, fingerprint queries). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new RequestError('body_too_large', `request body of ${declared} bytes is over this call's limit of ${limit} bytes`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    total += part.length;
    if (total > limit) {
      req.resume();
      throw new RequestError('body_too_large', `request body is over this call's limit of ${limit} bytes`);
    }
    parts.push(part);
  }
  return Buffer.concat(parts, total);
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  requireContentType(req, CONTENT_TYPE_JSON);
  const body = await readBody(req, MAX_JSON_BYTES);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RequestError('invalid_request', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': CONTENT_TYPE_JSON, 'content-length': body.length });
  res.end(body);
}

export function sendBinary(res: ServerResponse, body: Uint8Array): void {
  res.writeHead(200, { 'content-type': CONTENT_TYPE_BINARY, 'content-length': body.length });
  res.end(body);
}

/**
 * Exact-length reads from a streamed request body, with backpressure: the socket is only
 * read as fast as the caller consumes (the body is never buffered whole).
 */
export class BodyReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private current: Buffer = Buffer.alloc(0);
  private offset = 0;
  bytesRead = 0;

  constructor(req: IncomingMessage) {
    this.iterator = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /**
   * Fills `into` completely; `what` names the part for the "truncated" message (a function:
   * the name is made only when needed, not once per blob of every batch).
   */
  async readInto(into: Uint8Array, what: string | (() => string)): Promise<void> {
    let filled = 0;
    while (filled < into.length) {
      if (this.offset === this.current.length) {
        const next = await this.iterator.next();
        if (next.done)
          throw new RequestError(
            'invalid_request',
            `upload truncated: the body ended inside ${typeof what === 'string' ? what : what()} (${filled} of ${into.length} bytes)`,
          );
        this.current = next.value;
        this.offset = 0;
      }
      const n = Math.min(into.length - filled, this.current.length - this.offset);
      into.set(this.current.subarray(this.offset, this.offset + n), filled);
      this.offset += n;
      filled += n;
      this.bytesRead += n;
    }
  }

  async read(length: number, what: string): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, what);
    return out;
  }

  /** Fails unless the body has ended (no bytes after the last declared part). */
  async expectEnd(): Promise<void> {
    if (this.offset < this.current.length) throw new RequestError('invalid_request', 'the body has bytes after the last blob its header declares');
    const next = await this.iterator.next();
    if (!next.done && next.value.length > 0) throw new RequestError('invalid_request', 'the body has bytes after the last blob its header declares');
  }
}
