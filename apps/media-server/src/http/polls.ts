/** Long polls: how long a request may wait, and a signal that ends the wait early. */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_POLL_MS = 60_000;

/** `wait` seconds (validated by the route's schema) as milliseconds, at most a minute. */
export function pollWait(seconds: number | undefined): number {
  return seconds === undefined ? 0 : Math.min(MAX_POLL_MS, seconds * 1000);
}

/** Aborts when the client goes away or the server stops. */
export function abortOnClose(req: IncomingMessage, res: ServerResponse, server: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  req.socket.once('close', abort);
  server.addEventListener('abort', abort, { once: true });
  // A keep-alive connection carries many long polls: drop this request's listeners when
  // its answer is done, or they pile up on the socket and the server's signal.
  const release = (): void => {
    req.socket.off('close', abort);
    server.removeEventListener('abort', abort);
  };
  res.once('close', release);
  return controller.signal;
}
