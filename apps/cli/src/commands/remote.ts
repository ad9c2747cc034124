/**
 * The commands that work through a media server instead of a repository (`hoard run`
 * is in run.ts, whose start-up loads only what it needs):
 *   hoard snapshots --server URL [--job J] [--source S] [--since T] [--until T]
 *   hoard snapshots --server URL --job J --protect ID | --unprotect ID
 *   hoard restore --server URL JOB [--at T | --snapshot ID] [--source S] --to PATH|-
 */
import { stat } from 'node:fs/promises';
import { formatBytes } from '@hoard/chunker';
import { RestoreStreamError } from '@hoard/protocol/client';
import type { ArchiveSource } from '@hoard/repository';
import { validateJobName } from '@hoard/repository/manifest';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { parseTime } from '../time.js';
import type { ProtectOptions } from './prune.js';
import { snapshotJson, snapshotTable } from './snapshots.js';
import type { ParallelRestore } from './restore-database.js';
import { AGENT_TARGET_PREFIX, runRestoreToAgent } from './restore-to-agent.js';

/** A restore through the server did not complete (a chunk failed its check, the connection dropped); nothing was kept. */
export class RestoreFailedError extends Error {
  override readonly name = 'RestoreFailedError';
  readonly code = 'work_failed';
}

export interface RemoteSnapshotsOptions extends ServerOptions {
  job?: string;
  source?: string;
  since?: string;
  until?: string;
  json?: boolean;
}

export async function runRemoteSnapshots(options: RemoteSnapshotsOptions, out: (line: string) => void): Promise<void> {
  if (options.job !== undefined) validateJobName(options.job);
  const query = {
    job: options.job || undefined,
    source: options.source || undefined,
    since: options.since ? parseTime(options.since, '--since').toISOString() : undefined,
    until: options.until ? parseTime(options.until, '--until').toISOString() : undefined,
  };
  const client = await serverClient(options);
  const { snapshots } = await client.api.listSnapshots({ query });
  if (options.json) {
    out(JSON.stringify(snapshots.map((s) => snapshotJson(s))));
    return;
  }
  if (snapshots.length === 0) return out(options.job ? `job ${options.job} has no snapshots` : 'no snapshots yet');
  out(snapshotTable(snapshots.map((s) => ({ ...s, protected: s.protected ?? null }))));
}

/**
 * `hoard snapshots --server URL --job J --protect ID / --unprotect ID`: the marker in the
 * server's repository. Operators may protect; lifting a protection takes an admin token.
 */
export async function runRemoteProtect(options: ServerOptions & ProtectOptions, out: (line: string) => void): Promise<void> {
  const { printProtection, protectRequest } = await import('./prune.js');
  const { job, id, protect } = protectRequest(options);
  const client = await serverClient(options);
  printProtection(await client.api.setProtection({ params: { job, id }, body: { protected: protect } }), options.json, out);
}

export interface RemoteRestoreOptions extends ServerOptions {
  at?: string;
  snapshot?: string;
  source?: string;
  to?: string;
  force?: boolean;
  offset?: string;
  length?: string;
  /** One file out of a directory snapshot (path relative to the backed-up directory). */
  file?: string;
  json?: boolean;
  /** Read and check everything, write nothing. */
  verifyOnly?: boolean;
  /** `--jobs`/`--temp-dir`, checked (restore-database.ts): a parallel pg_restore. */
  parallel?: ParallelRestore;
}

export async function runRemoteRestore(job: string, options: RemoteRestoreOptions, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  // A restore loads the repository's modules (archive reader, sinks, database tools) here:
  // listing snapshots and following runs do without them.
  const { extractArchive, findEntry, readArchiveFile, readArchiveIndex, StreamSink } = await import('@hoard/repository');
  const { isDatabaseUrl, RestoreDamagedError } = await import('./restore-database.js');
  if (options.verifyOnly) return (await import('./remote-restore-targets.js')).runRemoteVerifyOnly(job, options, out);
  if (!options.to)
    throw new UsageError(
      '--to is required: a file path, a block device, a directory (for a directory snapshot), a database URL (postgres://, mysql://), or - for stdout',
    );
  if (options.to.startsWith(AGENT_TARGET_PREFIX)) return runRestoreToAgent(job, options, out);
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  if (isDatabaseUrl(options.to)) return (await import('./remote-restore-targets.js')).runRemoteRestoreToDatabase(job, options, out);
  const toStdout = options.to === '-';
  if (toStdout && options.json) throw new UsageError('--json and --to - both want stdout: restore to a file, or drop --json');
  if (options.file !== undefined && (options.offset !== undefined || options.length !== undefined))
    throw new UsageError('--file restores one whole file: drop --offset/--length');
  const range: { offset?: number; length?: number } = {};
  for (const [flag, value] of [
    ['offset', options.offset],
    ['length', options.length],
  ] as const) {
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} ${value}: give a number of bytes (0 or more)`);
    range[flag] = Number(value);
  }
  const client = await serverClient(options);
  const started = Date.now();
  // Which snapshot, and what it holds: a zero-length read answers with its headers.
  const probe = await client.restore(job, {
    id: options.snapshot,
    at: options.at === undefined ? undefined : parseTime(options.at),
    source: options.source,
    offset: 0,
    length: 0,
  });
  await probe.arrayBuffer();
  const snapshot = probe.headers.get('x-hoard-snapshot') ?? '?';
  const startedAt = probe.headers.get('x-hoard-started-at') ?? '?';
  const kind = probe.headers.get('x-hoard-source-kind') ?? 'stream';
  const total = Number(probe.headers.get('x-hoard-logical-bytes'));
  const read = (offset: number, length: number): AsyncIterable<Uint8Array> => client.restoreRange(job, snapshot, offset, length);
  const done = (bytes: number, what: string): void => {
    const seconds = (Date.now() - started) / 1000;
    const summary = { snapshot, job, startedAt, to: options.to, file: options.file ?? null, bytes, seconds, streamHashChecked: null };
    if (options.json) out(JSON.stringify(summary));
    else if (!toStdout)
      out(
        `restored ${what} of snapshot ${snapshot} of job ${job} (started ${startedAt}) to ${options.to}: ${formatBytes(bytes)} in ${seconds.toFixed(1)} s, every chunk checked by the server`,
      );
    else process.stderr.write(`restored ${what} of snapshot ${snapshot} of job ${job} (started ${startedAt}): ${formatBytes(bytes)}\n`);
  };
  if (kind !== 'directory' && options.file !== undefined)
    throw new UsageError(`--file picks one file out of a directory snapshot, but snapshot ${snapshot} of job ${job} is a ${kind} snapshot`);
  if (kind === 'directory' && !toStdout && options.file === undefined && range.offset === undefined && range.length === undefined) {
    // A directory snapshot restored as a tree.
    if (await stat(options.to).catch(() => undefined))
      throw new UsageError(`--to ${options.to} exists: a directory snapshot is restored into a new directory; name one that does not exist yet`);
    const source: ArchiveSource = { snapshot, length: total, read };
    const progress = ProgressLine.forCommand(options.json === true, { summary: true });
    const result = await extractArchive(source, options.to, { onProgress: (bytes) => progress.update(bytes, undefined) });
    progress.done();
    return done(result.bytes, `${result.files} files, ${result.directories} directories and ${result.symlinks} symlinks`);
  }
  let offset = range.offset ?? 0;
  let length = range.length ?? total - offset;
  let what = 'the stream';
  if (options.file !== undefined) {
    const source: ArchiveSource = { snapshot, length: total, read };
    const entry = findEntry(await readArchiveIndex(source), options.file, snapshot);
    readArchiveFile(source, entry); // checks it is a regular file
    offset = entry.offset;
    length = entry.size;
    what = options.file;
  }
  if (offset + length > total) throw new UsageError(`--offset/--length ${offset}+${length} is outside snapshot ${snapshot} (${total} bytes)`);
  let device = false;
  if (!toStdout) {
    const info = await stat(options.to).catch(() => undefined);
    if (info?.isDirectory()) throw new UsageError(`--to ${options.to} is a directory: give the path of the file to write`);
    device = info?.isBlockDevice() ?? false;
    if (info && !device && !options.force) throw new UsageError(`--to ${options.to} exists: restore elsewhere, or add --force to replace it`);
  }
  const progress = ProgressLine.forCommand(options.json || toStdout, { summary: true });
  let received = 0;
  const stream = { job, snapshot, offset, length };
  // Loaded for a restore to a file only: @hoard/agent's index brings pino and the policy parser.
  let agent: typeof import('@hoard/agent') | undefined;
  try {
    if (toStdout) {
      // stdout: holes become zeros here, not on the wire.
      const sink = new StreamSink(process.stdout);
      for await (const piece of client.restoreRange(job, snapshot, offset, length)) {
        await sink.write(piece);
        received += piece.length;
        progress.update(received, length);
      }
    } else {
      agent = await import('@hoard/agent');
      received = (await agent.restoreFramesToFile(client, stream, { path: options.to, device }, { onProgress: (bytes) => progress.update(bytes, length) }))
        .bytes;
    }
  } catch (err) {
    progress.done();
    const incomplete = agent !== undefined && err instanceof agent.RestoreIncompleteError ? err : undefined;
    const cause = incomplete ? incomplete.cause : err;
    const message = `restore of snapshot ${snapshot} of job ${job} ${incomplete ? incomplete.message : `broke off after ${received} of ${length} bytes: ${(err as Error).message}`}`;
    // Damage the server found (also after the last byte) is exit 3, like an embedded restore's.
    if (cause instanceof RestoreStreamError && cause.code === 'data_damaged') throw new RestoreDamagedError(message, { cause });
    throw new RestoreFailedError(message, { cause });
  }
  progress.done();
  done(received, what);
}
