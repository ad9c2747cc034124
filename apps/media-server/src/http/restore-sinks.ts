/**
 * The outputs of the restore route: the plain byte stream, and the framed stream
 * (@hoard/protocol restore-frames.ts) with holes as counts and the verdict at the end.
 */
import type { ServerResponse } from 'node:http';
import { dataFrameHeader, endFrame, errorFrame, zerosFrame, type RestoreEnd, type RestoreFailure } from '@hoard/protocol';
import { StreamSink } from '@hoard/repository';

/**
 * A response as a restore's output, which stops the restore when the client goes away: a
 * response whose socket has closed never emits 'drain', so a restore waiting on
 * backpressure would wait forever, holding its windows of decoded data. Here a write
 * fails as soon as the response closes unfinished; restore() aborts and the request ends
 * as a client disconnect (client-gone.ts: ECONNRESET), not as a server error.
 */
class ClientSink extends StreamSink {
  private readonly gone: Promise<never>;

  constructor(res: ServerResponse) {
    super(res);
    this.gone = new Promise<never>((_, reject) => {
      res.once('close', () => {
        if (!res.writableFinished) reject(Object.assign(new Error('the client closed the connection mid-restore'), { code: 'ECONNRESET' }));
      });
    });
    // Nobody may be writing when it closes: not an unhandled rejection.
    this.gone.catch(() => undefined);
  }

  override write(data: Uint8Array): Promise<void> {
    return Promise.race([super.write(data), this.gone]);
  }
}

/** A restore's output: on failure the error handler cuts the connection (not a clean end). */
export class ResponseSink extends ClientSink {
  override async abort(): Promise<void> {}
}

/**
 * A framed restore's output (restore-frames.ts): data frames, zero runs as hole frames
 * (adjacent runs merged), then the verdict. finish() sends nothing: the route sends the
 * end frame with the result, or the error frame.
 */
export class FrameSink extends ClientSink {
  private zerosPending = 0;

  constructor(private readonly res: ServerResponse) {
    super(res);
  }

  override async write(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    await this.flushZeros();
    // Header and bytes in one send; write() of a second buffer costs no copy.
    this.res.cork();
    this.res.write(dataFrameHeader(data.length));
    const more = super.write(data);
    process.nextTick(() => this.res.uncork());
    return more;
  }

  override async zeros(length: number): Promise<void> {
    this.zerosPending += length;
  }

  override async finish(): Promise<void> {}

  override async abort(): Promise<void> {}

  async end(result: RestoreEnd): Promise<void> {
    await this.flushZeros();
    await super.write(endFrame(result));
    await super.finish();
  }

  async fail(failure: RestoreFailure): Promise<void> {
    this.zerosPending = 0;
    await super.write(errorFrame(failure)).catch(() => undefined);
    await super.finish().catch(() => undefined);
  }

  private async flushZeros(): Promise<void> {
    if (this.zerosPending === 0) return;
    const n = this.zerosPending;
    this.zerosPending = 0;
    await super.write(zerosFrame(n));
  }
}
