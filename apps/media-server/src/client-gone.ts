/**
 * Telling a client that went away from a request that failed. A client that closes its
 * connection mid-request (an agent killed mid-upload, a CLI stopped with ^C) makes the
 * body read fail with a connection error; that is not the server's fault and must not be
 * logged or counted as an HTTP 500 (issue 15, problem 7).
 */
import type { IncomingMessage } from 'node:http';
import { RequestError } from '@hoard/protocol';

/** Errors node raises when the peer resets or closes the connection under a read or write. */
const CONNECTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED']);

export function clientGone(req: IncomingMessage, err: unknown): boolean {
  // A request whose socket node has detached already (null) has not lost its client.
  const destroyed = req.socket?.destroyed === true;
  // The server cut the request itself (a stalled upload): that is its own answer.
  if (err instanceof RequestError && err.status === 408) return false;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && CONNECTION_CODES.has(code)) return true;
  // IncomingMessage's own error when the connection closes before the body is complete.
  if (err instanceof Error && err.message === 'aborted') return true;
  // Nobody left to answer: whatever the handler ran into, the client had gone.
  return destroyed && !(err instanceof RequestError && err.status >= 500);
}
