/**
 * A download's output, which stops the restore when the browser goes away. A response
 * whose socket has closed never emits 'drain', so a restore waiting on backpressure
 * would wait forever, holding its windows of decoded data; here a write fails as soon
 * as the response closes unfinished, restore() aborts, and the request ends as a client
 * disconnect (client-gone.ts: ECONNRESET), not as a server error.
 */
import type { ServerResponse } from 'node:http';
import { ResponseSink } from '../http/restore-sinks.js';

export class DownloadSink extends ResponseSink {
  private readonly gone: Promise<never>;

  constructor(res: ServerResponse) {
    super(res);
    this.gone = new Promise<never>((_, reject) => {
      res.once('close', () => {
        if (!res.writableFinished) reject(Object.assign(new Error('the client closed the connection mid-download'), { code: 'ECONNRESET' }));
      });
    });
    // Nobody may be writing when it closes: not an unhandled rejection.
    this.gone.catch(() => undefined);
  }

  override write(data: Uint8Array): Promise<void> {
    return Promise.race([super.write(data), this.gone]);
  }
}
