/**
 * `hoard restore --server URL JOB --to postgres://...|mysql://...` and
 * `hoard restore --server URL JOB --verify-only`: the server reads and checks every
 * chunk (and the whole-stream hash) while it streams; this side feeds the stream into
 * the database's tool, or drops it after counting.
 *
 * The stream is framed (restore-frames.ts): a check that fails on the server, also the
 * whole-stream hash after the last byte, ends it with an error frame, which is damage
 * (exit 3); a stream that stops without its end frame is a dropped connection (exit 1).
 */
import { formatBytes } from '@hoard/chunker';
import { readArchiveEntries, validateJobName, type ArchiveSource } from '@hoard/repository';
import { RestoreStreamError, type HoardClient } from '@hoard/protocol/client';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { serverClient } from '../server-client.js';
import { parseTime } from '../time.js';
import type { RemoteRestoreOptions } from './remote.js';
import { DatabaseSink, DatabaseToolError, damagedAfterData, parseDatabaseTarget, RestoreDamagedError } from './restore-database.js';
import { printVerified } from './restore.js';

interface Picked {
  client: HoardClient;
  snapshot: string;
  startedAt: string;
  kind: string;
  total: number;
}

async function pick(job: string, options: RemoteRestoreOptions): Promise<Picked> {
  validateJobName(job);
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  const client = await serverClient(options);
  // Which snapshot, and what it holds: a zero-length read answers with its headers.
  const probe = await client.restore(job, {
    id: options.snapshot,
    at: options.at === undefined ? undefined : parseTime(options.at),
    source: options.source,
    offset: 0,
    length: 0,
  });
  await probe.arrayBuffer();
  return {
    client,
    snapshot: probe.headers.get('x-hoard-snapshot') ?? '?',
    startedAt: probe.headers.get('x-hoard-started-at') ?? '?',
    kind: probe.headers.get('x-hoard-source-kind') ?? 'stream',
    total: Number(probe.headers.get('x-hoard-logical-bytes')),
  };
}

/**
 * The whole stream of the picked snapshot, piece by piece, to `each`. Damage the server
 * reports throws RestoreDamagedError; a dropped connection the client's error. `each`
 * failing stops the read and rethrows.
 */
async function streamChecked(job: string, p: Picked, each: (piece: Uint8Array) => Promise<void>, onProgress: (bytes: number) => void): Promise<number> {
  let received = 0;
  try {
    for await (const piece of p.client.restoreRange(job, p.snapshot, 0, p.total)) {
      await each(piece);
      received += piece.length;
      onProgress(received);
    }
    return received;
  } catch (err) {
    if (err instanceof RestoreStreamError && err.code === 'data_damaged') {
      throw new RestoreDamagedError(
        `snapshot ${p.snapshot} of job ${job} is damaged (the server found it after ${formatBytes(received)} had been sent): ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
}

export async function runRemoteVerifyOnly(job: string, options: RemoteRestoreOptions, out: (line: string) => void): Promise<void> {
  if (options.to !== undefined) throw new UsageError('--verify-only writes nothing: drop --to');
  if (options.offset !== undefined || options.length !== undefined || options.file !== undefined)
    throw new UsageError('--verify-only checks the whole snapshot: drop --offset/--length/--file');
  const p = await pick(job, options);
  const started = Date.now();
  let entries: number | undefined;
  if (p.kind === 'directory') {
    const source: ArchiveSource = { snapshot: p.snapshot, length: p.total, read: (offset, length) => p.client.restoreRange(job, p.snapshot, offset, length) };
    let n = 0;
    await readArchiveEntries(source, () => void n++);
    entries = n;
  }
  const progress = ProgressLine.forCommand(options.json, { summary: true });
  let bytes: number;
  try {
    bytes = await streamChecked(
      job,
      p,
      async () => {},
      (b) => progress.update(b, p.total),
    );
  } finally {
    progress.done();
  }
  printVerified(out, options.json === true, { snapshot: p.snapshot, job, startedAt: p.startedAt, bytes, seconds: (Date.now() - started) / 1000, entries });
}

export async function runRemoteRestoreToDatabase(job: string, options: RemoteRestoreOptions, out: (line: string) => void): Promise<void> {
  if (options.offset !== undefined || options.length !== undefined || options.file !== undefined)
    throw new UsageError('a database is restored from the whole dump: drop --offset/--length/--file');
  const target = await parseDatabaseTarget(options.to!);
  const p = await pick(job, options);
  if (p.kind === 'directory')
    throw new UsageError(`snapshot ${p.snapshot} of job ${job} is a directory snapshot, not a database dump: restore it to a directory`);
  const started = Date.now();
  const sink = new DatabaseSink(target, { parallel: options.parallel, dumpBytes: p.total });
  const progress = ProgressLine.forCommand(options.json, { summary: true });
  let bytes: number;
  try {
    bytes = await streamChecked(
      job,
      p,
      (piece) => sink.write(piece),
      (b) => progress.update(b, p.total),
    );
    await sink.finish();
  } catch (err) {
    progress.done();
    await sink.abort();
    if (err instanceof RestoreDamagedError && sink.started) throw damagedAfterData(err, sink);
    if (err instanceof Error && err.name === 'ServerUnreachableError') {
      throw new DatabaseToolError(
        `restore of snapshot ${p.snapshot} of job ${job} into ${target.name} broke off: ${err.message}${sink.started ? `; ${sink.tool} was stopped and the database may hold part of the dump` : '; nothing was written to the database'}`,
      );
    }
    throw err;
  }
  progress.done();
  const seconds = (Date.now() - started) / 1000;
  if (options.json) {
    out(JSON.stringify({ snapshot: p.snapshot, job, startedAt: p.startedAt, to: target.name, tool: sink.tool, bytes, seconds, streamHashChecked: null }));
    return;
  }
  out(`restored snapshot ${p.snapshot} of job ${job} (started ${p.startedAt}) into ${target.name} with ${sink.tool}`);
  out(`  ${formatBytes(bytes)} in ${seconds.toFixed(1)} s; every chunk checked by the server`);
}
