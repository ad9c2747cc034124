/**
 * Worker thread: cuts and fingerprints whole segments. It sees only its segment, so it
 * starts a chunk at the segment start; the main thread reconciles that guess with the
 * true chunk chain (see segment-pipeline.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cutterFor } from '../cutter.js';
import { ChunkHasher, createFingerprinter } from '../fingerprint.js';
import type { SegmentJob, SegmentWorkerConfig } from './protocol.js';
import { processSegment } from './segment.js';

const config = workerData as SegmentWorkerConfig;
const cutter = cutterFor(config.params);
const hasher = new ChunkHasher(createFingerprinter(config.fingerprint));
const port = parentPort!;

port.on('message', (job: SegmentJob) => {
  try {
    const r = processSegment(job.id, job.buffer, job.own, job.total, cutter, hasher);
    port.postMessage(r, [r.buffer, r.ends.buffer as ArrayBuffer, r.fingerprints.buffer as ArrayBuffer, r.zero.buffer as ArrayBuffer]);
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    port.postMessage({ id: job.id, error }, [job.buffer]);
  }
});
