/**
 * Worker thread: cuts and fingerprints whole segments. It sees only its segment, so it
 * starts a chunk at the segment start; the main thread reconciles that guess with the
 * true chunk chain (see segment-pipeline.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cutterFor } from '../cutter.js';
import { ChunkHasher, FINGERPRINT_BYTES, createFingerprinter } from '../fingerprint.js';
import type { SegmentJob, SegmentReply, SegmentWorkerConfig } from './protocol.js';

const config = workerData as SegmentWorkerConfig;
const cutter = cutterFor(config.params);
const hasher = new ChunkHasher(createFingerprinter(config.fingerprint));
const port = parentPort!;

port.on('message', (job: SegmentJob) => {
  let reply: SegmentReply;
  try {
    const data = new Uint8Array(job.buffer, 0, job.total);
    const endList: number[] = [];
    cutter.cutAll(data, 0, job.own, job.total, endList);
    const ends = Uint32Array.from(endList);
    const fingerprints = new Uint8Array(ends.length * FINGERPRINT_BYTES);
    const zero = new Uint8Array(ends.length);
    let start = 0;
    for (let j = 0; j < ends.length; j++) {
      zero[j] = hasher.hashInto(data.subarray(start, ends[j]), fingerprints, j * FINGERPRINT_BYTES) ? 1 : 0;
      start = ends[j];
    }
    reply = { id: job.id, buffer: job.buffer, ends, fingerprints, zero };
    port.postMessage(reply, [job.buffer, ends.buffer, fingerprints.buffer, zero.buffer]);
  } catch (err) {
    reply = { id: job.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    port.postMessage(reply, [job.buffer]);
  }
});
