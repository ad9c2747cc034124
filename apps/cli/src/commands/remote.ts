/**
 * The commands that work through a media server instead of a repository:
 *   hoard run --server URL --agent NAME --job J --source SPEC [--source SPEC...]
 *   hoard snapshots --server URL [--job J] [--source S] [--since T] [--until T]
 *   hoard restore --server URL JOB [--at T | --snapshot ID] [--source S] --to PATH|-
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { formatBytes } from '@hoard/chunker';
import { parseSourceSpec, type RunView, type SnapshotSummary } from '@hoard/protocol';
import { validateJobName } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';
import { parseTime } from '../time.js';
import { localTime } from './snapshots.js';

/** A run that finished with failures: exit 1 after printing the result. */
export class RunFailedError extends Error {
  override readonly name = 'RunFailedError';
}

export interface RunCommandOptions extends ServerOptions {
  agent?: string;
  job?: string;
  source?: string[];
  store?: string;
  pre?: string;
  post?: string;
  json?: boolean;
  wait?: boolean;
}

export async function runRun(options: RunCommandOptions, out: (line: string) => void): Promise<void> {
  if (!options.agent) throw new UsageError('--agent is required: the agent that runs the job (`hoard agent list`)');
  if (!options.job) throw new UsageError('--job is required');
  validateJobName(options.job);
  const sources = options.source ?? [];
  if (sources.length === 0) throw new UsageError('--source is required, e.g. --source vm:/var/lib/libvirt/images/*.qcow2 or --source "cmd:pg_dumpall -U postgres"');
  for (const s of sources) {
    try {
      parseSourceSpec(s);
    } catch (err) {
      throw new UsageError(`--source ${s}: ${(err as Error).message}`);
    }
  }
  const client = await serverClient(options);
  const hooks = options.pre !== undefined || options.post !== undefined ? { pre: options.pre, post: options.post } : undefined;
  let run = await client.json<RunView>('POST', '/v1/runs', { agent: options.agent, job: options.job, sources, store: options.store, hooks });
  if (options.wait === false) {
    out(options.json ? JSON.stringify(run) : `run ${run.id} queued for agent ${run.agent}`);
    return;
  }
  const progress = ProgressLine.forCommand(options.json);
  while (run.state === 'queued' || run.state === 'running') {
    run = await client.json<RunView>('GET', `/v1/runs/${run.id}?wait=2`);
    if (run.progress) progress.update(run.progress.bytesRead, run.progress.bytesTotal, `sent ${formatBytes(run.progress.bytesSent)}  ${run.progress.target}`);
  }
  progress.done();
  if (options.json) out(JSON.stringify(run));
  else printRun(run, out);
  if (run.state !== 'succeeded') throw new RunFailedError(`run ${run.id} ${run.state}: ${run.error ?? 'see above'}`);
}

function printRun(run: RunView, out: (line: string) => void): void {
  out(`run ${run.id}: job ${run.job} on agent ${run.agent}: ${run.state}`);
  for (const name of run.discovered) out(`  newly discovered: ${name}`);
  out(
    renderTable(
      ['source', 'result', 'read', 'sent', 'new', 'dedup', 'snapshot'],
      run.targets.map((t) => [
        t.name,
        t.ok ? 'ok' : `FAILED: ${t.error}`,
        t.totals ? formatBytes(t.totals.bytesRead) : '-',
        t.totals ? formatBytes(t.totals.bytesSent) : '-',
        t.totals ? formatBytes(t.totals.bytesNew) : '-',
        !t.totals ? '-' : t.totals.bytesStored === 0 ? 'all known' : `${t.dedupRatio}x`,
        t.snapshot?.id ?? '-',
      ]),
    ),
  );
}

/** The catalog's snapshot records have the shape of the protocol's summaries. */
type SnapshotRow = SnapshotSummary;

export interface RemoteSnapshotsOptions extends ServerOptions {
  job?: string;
  source?: string;
  since?: string;
  until?: string;
  json?: boolean;
}

export async function runRemoteSnapshots(options: RemoteSnapshotsOptions, out: (line: string) => void): Promise<void> {
  if (options.job !== undefined) validateJobName(options.job);
  const q = new URLSearchParams();
  if (options.job) q.set('job', options.job);
  if (options.source) q.set('source', options.source);
  if (options.since) q.set('since', parseTime(options.since).toISOString());
  if (options.until) q.set('until', parseTime(options.until).toISOString());
  const client = await serverClient(options);
  const { snapshots } = await client.json<{ snapshots: SnapshotRow[] }>('GET', `/v1/snapshots?${q}`);
  if (options.json) {
    out(JSON.stringify(snapshots.map((s) => ({ id: s.id, key: s.key, job: s.job, source: s.source, started_at: s.startedAt, finished_at: s.finishedAt, logical_bytes: s.logicalBytes, store: s.store }))));
    return;
  }
  if (snapshots.length === 0) return out(options.job ? `job ${options.job} has no snapshots` : 'no snapshots yet');
  out(renderTable(['id', 'job', 'started (local)', 'size', 'source'], snapshots.map((s) => [s.id, s.job, localTime(s.startedAt), formatBytes(s.logicalBytes), `${s.source.name} (${s.source.kind})`])));
}

export interface RemoteRestoreOptions extends ServerOptions {
  at?: string;
  snapshot?: string;
  source?: string;
  to?: string;
  force?: boolean;
  offset?: string;
  length?: string;
  json?: boolean;
}

export async function runRemoteRestore(job: string, options: RemoteRestoreOptions, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  if (!options.to) throw new UsageError('--to is required: a file path, a block device, or - for stdout');
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  const toStdout = options.to === '-';
  if (toStdout && options.json) throw new UsageError('--json and --to - both want stdout: restore to a file, or drop --json');
  const q = new URLSearchParams();
  if (options.at !== undefined) q.set('at', parseTime(options.at).toISOString());
  if (options.snapshot !== undefined) q.set('id', options.snapshot);
  if (options.source !== undefined) q.set('source', options.source);
  for (const [flag, value] of [['offset', options.offset], ['length', options.length]] as const) {
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} ${value}: give a number of bytes (0 or more)`);
    q.set(flag, value);
  }
  let device = false;
  if (!toStdout) {
    const info = await stat(options.to).catch(() => undefined);
    if (info?.isDirectory()) throw new UsageError(`--to ${options.to} is a directory: give the path of the file to write`);
    device = info?.isBlockDevice() ?? false;
    if (info && !device && !options.force) throw new UsageError(`--to ${options.to} exists: restore elsewhere, or add --force to replace it`);
  }
  const client = await serverClient(options);
  const started = Date.now();
  const res = await client.request('GET', `/v1/jobs/${encodeURIComponent(job)}/restore?${q}`);
  const expected = Number(res.headers.get('content-length'));
  const snapshot = res.headers.get('x-hoard-snapshot') ?? '?';
  const startedAt = res.headers.get('x-hoard-started-at') ?? '?';
  const progress = ProgressLine.forCommand(options.json || toStdout);
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      progress.update(received, expected);
      done(null, chunk);
    },
  });
  const partial = toStdout || device ? undefined : `${options.to}.partial`;
  const sink = toStdout ? process.stdout : createWriteStream(partial ?? options.to, device ? { flags: 'r+' } : {});
  try {
    await pipeline(Readable.fromWeb(res.body as never), counter, sink, { end: !toStdout });
  } catch (err) {
    if (partial) await rm(partial, { force: true });
    throw new Error(`restore of snapshot ${snapshot} of job ${job} broke off after ${received} of ${expected} bytes: ${(err as Error).message}; nothing was kept`);
  }
  progress.done();
  // The server checks every chunk and the stream hash; a check that fails cuts the stream,
  // which shows here as a short body.
  if (received !== expected) {
    if (partial) await rm(partial, { force: true });
    throw new Error(`restore of snapshot ${snapshot} of job ${job} ended after ${received} of ${expected} bytes; nothing was kept`);
  }
  if (partial) await rename(partial, options.to);
  const seconds = (Date.now() - started) / 1000;
  const summary = { snapshot, job, started_at: startedAt, to: options.to, bytes: received, seconds };
  if (options.json) out(JSON.stringify(summary));
  else if (!toStdout) out(`restored snapshot ${snapshot} of job ${job} (started ${startedAt}) to ${options.to}: ${formatBytes(received)} in ${seconds.toFixed(1)} s, every chunk checked by the server`);
  else process.stderr.write(`restored snapshot ${snapshot} of job ${job}: ${formatBytes(received)}\n`);
}
