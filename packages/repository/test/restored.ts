/** Restoring a snapshot into memory, for tests that compare it with what was backed up. */
import { Writable } from 'node:stream';
import { Repository, restore, StreamSink, type ObjectStore, type OpenOptions, type SnapshotInfo } from '../dist/index.js';

class Collector extends Writable {
  readonly parts: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.parts.push(Buffer.from(chunk));
    cb();
  }
}

/** The bytes of `snapshot`, restored through a repository opened afresh on `objects` (its index read from the store now). */
export async function restored(objects: ObjectStore, snapshot: SnapshotInfo, open: OpenOptions = {}): Promise<Buffer> {
  const out = new Collector();
  await restore(await Repository.open(objects, open), snapshot, new StreamSink(out));
  return Buffer.concat(out.parts);
}
