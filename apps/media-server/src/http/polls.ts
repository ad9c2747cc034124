/** Long polls: how long a request may wait, and a signal that ends the wait early. */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_POLL_MS = 60_000;

/** `wait` seconds (validated by the route's schema) as milliseconds, at most a minute. */
export function pollWait(seconds: number | undefined): number {
  return seconds === undefined ? 0 : Math.min(MAX_POLL_MS, seconds * 1000);
}

/**
 * Aborts when the client goes away or the server stops.
 *
 * The server keeps half-open connections (`httpAllowHalfOpen`, http/api.ts) so that a
 * client that shuts down its write side after its request still gets the answer. A client
 * that is gone (killed, timed out) therefore shows first as the end of its side of the
 * socket ('end'), and 'close' comes only once the answer is written: a long poll would
 * wait out its minute, and an agent's poll would claim a run queued meanwhile that its
 * dead process can never start (the run then failed as "agent restarted" on the new
 * process's next poll). A wait ends at either event: a client that half-closed on purpose
 * gets the poll's empty answer at once and polls again.
 */
export function abortOnClose(req: IncomingMessage, res: ServerResponse, server: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  const socket = req.socket;
  if (socket.destroyed || socket.readableEnded) abort();
  socket.once('end', abort);
  socket.once('close', abort);
  server.addEventListener('abort', abort, { once: true });
  // A keep-alive connection carries many long polls: drop this request's listeners when
  // its answer is done, or they pile up on the socket and the server's signal.
  const release = (): void => {
    socket.off('end', abort);
    socket.off('close', abort);
    server.removeEventListener('abort', abort);
  };
  res.once('close', release);
  return controller.signal;
}
