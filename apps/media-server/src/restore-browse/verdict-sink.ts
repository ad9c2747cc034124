/**
 * A whole-snapshot download's output: the last byte is held back until the restore has
 * checked the whole-stream hash (restore() calls finish() only after that check). A plain
 * HTTP body cannot carry a verdict, so without this a mismatch found after the last
 * chunk would reach the browser as a complete download; with it the response stays one
 * byte short of its Content-Length and the connection is cut: a failed download.
 */
import type { ServerResponse } from 'node:http';
import { ResponseSink } from '../http/restore-sinks.js';

export class VerdictHoldingSink extends ResponseSink {
  private held: Buffer | undefined;

  constructor(private readonly res: ServerResponse) {
    super(res);
  }

  override async write(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    const previous = this.held;
    // A copy of one byte: the pipeline may reuse `data`'s memory once what was handed over drained.
    this.held = Buffer.from(data.subarray(data.length - 1));
    const rest = data.subarray(0, data.length - 1);
    // The held byte and the rest in one send (cork: node writes both with one writev).
    this.res.cork();
    const sent = [previous ? super.write(previous) : undefined, rest.length > 0 ? super.write(rest) : undefined];
    process.nextTick(() => this.res.uncork());
    await Promise.all(sent);
  }

  override async finish(): Promise<void> {
    if (this.held) await super.write(this.held);
    this.held = undefined;
    await super.finish();
  }
}
