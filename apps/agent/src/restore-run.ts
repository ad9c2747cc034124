/**
 * A restore run (`hoard restore --server URL JOB --to agent:NAME:PATH`): the agent
 * streams the snapshot the server pinned at queue time through the restore route (the
 * server checks every chunk and, for a whole stream, the stream hash) and writes it on
 * this host:
 *
 * - a file or block device snapshot, or `--file` (one file of a directory snapshot):
 *   to PATH (restore-to-file.ts): a file as `PATH.partial`, sparse, synced and renamed
 *   into place only when the server said every byte checked out; an existing PATH is
 *   refused unless `force`. A block device is overwritten in place.
 * - a directory snapshot: as a tree in the new directory PATH (extractArchive builds it
 *   in `PATH.partial` and renames it); PATH must not exist.
 * - a dump with `database`: into that database with its own tool (restore-into-database.ts).
 *
 * The result (bytes, snapshot, path) or the failure goes back to the server as the run's
 * one target; the CLI that queued the run prints it.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HoardClient, FinishRunRequest, RestoreResult, RestoreRunSpec, RunProgress, RunView } from '@hoard/protocol/agent';
import type { ErrorCode } from '@hoard/errors';
import { extractArchive, findEntry, readArchiveFile, readArchiveIndex, type ArchiveSource } from '@hoard/repository';
import { restoreIntoDatabase } from './restore-into-database.js';
import { restoreFramesToFile } from './restore-to-file.js';

const PROGRESS_EVERY_MS = 1_000;

/** What makes a restore impossible on this host (path exists, not a directory...). */
export class RestoreRefusedError extends Error {
  override readonly name = 'RestoreRefusedError';
  constructor(
    message: string,
    /** target_exists when the path exists and would be replaced; invalid_target otherwise. */
    readonly code: ErrorCode = 'invalid_target',
  ) {
    super(message);
  }
}

export interface RestoreRunOptions {
  /** This agent's name, for messages. */
  agent: string;
  /** Environment of the database tools (a database restore); default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export async function executeRestoreRun(client: HoardClient, run: RunView, options: RestoreRunOptions): Promise<FinishRunRequest> {
  const spec = run.restore!;
  const started = Date.now();
  let last = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const progress = (bytes: number, total?: number): void => {
    const now = Date.now();
    if (now - last < PROGRESS_EVERY_MS) return;
    last = now;
    const p: RunProgress = { target: spec.path, bytesRead: bytes, bytesSent: 0, bytesNew: 0, ...(total !== undefined ? { bytesTotal: total } : {}) };
    pending = client.runProgress(run.id, p).catch(() => undefined);
  };
  try {
    const restored = await restoreOnHost(client, run.job, spec, options, progress);
    await pending;
    return { state: 'succeeded', targets: [{ name: spec.path, ok: true, restored, durationMs: Date.now() - started }] };
  } catch (err) {
    await pending;
    const message = (err as Error).message;
    return {
      state: 'failed',
      targets: [{ name: spec.path, ok: false, error: message, durationMs: Date.now() - started }],
      error: `restore of snapshot ${spec.snapshot} of job ${run.job} to ${spec.path} on agent ${options.agent} failed: ${message}`,
    };
  }
}

async function restoreOnHost(
  client: HoardClient,
  job: string,
  spec: RestoreRunSpec,
  options: RestoreRunOptions,
  progress: (bytes: number, total?: number) => void,
): Promise<RestoreResult> {
  if (spec.database !== undefined)
    return restoreIntoDatabase(client, job, { ...spec, database: spec.database }, { env: options.env ?? process.env, signal: options.signal, progress });
  const path = spec.path;
  const read = (offset: number, length: number): AsyncIterable<Uint8Array> => client.restoreRange(job, spec.snapshot, offset, length, options.signal);
  const source: ArchiveSource = { snapshot: spec.snapshot, length: spec.logicalBytes, read };
  const parent = dirname(path);
  if (!(await stat(parent).catch(() => undefined))?.isDirectory())
    throw new RestoreRefusedError(`${parent} is not a directory on agent ${options.agent}; create it first, or restore elsewhere`);

  if (spec.kind === 'directory' && spec.file === undefined) {
    if (await stat(path).catch(() => undefined)) {
      throw new RestoreRefusedError(
        `${path} exists on agent ${options.agent}: a directory snapshot is restored into a new directory; name one that does not exist yet`,
        'target_exists',
      );
    }
    const result = await extractArchive(source, path, { onProgress: (bytes) => progress(bytes) });
    return {
      snapshot: spec.snapshot,
      path,
      bytes: result.bytes,
      wrote: 'tree',
      files: result.files,
      directories: result.directories,
      symlinks: result.symlinks,
    };
  }

  let offset = 0;
  let length = spec.logicalBytes;
  if (spec.file !== undefined) {
    const entry = findEntry(await readArchiveIndex(source), spec.file, spec.snapshot);
    readArchiveFile(source, entry); // refuses a directory or a symlink
    offset = entry.offset;
    length = entry.size;
  }
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) throw new RestoreRefusedError(`${path} is a directory on agent ${options.agent}: give the path of the file to write`);
  const device = info?.isBlockDevice() ?? false;
  if (info && !device && !spec.force)
    throw new RestoreRefusedError(`${path} exists on agent ${options.agent}: restore elsewhere, or add --force to replace it`, 'target_exists');
  if (device && info!.size > 0 && length > info!.size) throw new RestoreRefusedError(`block device ${path} holds ${info!.size} bytes, the snapshot ${length}`);
  // Sparse for a new file: holes arrive as counts, never as zeros on the wire.
  const { bytes: written } = await restoreFramesToFile(
    client,
    { job, snapshot: spec.snapshot, offset, length },
    { path, device },
    { signal: options.signal, onProgress: (bytes) => progress(bytes, length) },
  );
  return { snapshot: spec.snapshot, path, bytes: written, wrote: spec.file !== undefined ? 'file' : 'stream', ...(device ? { device: true } : {}) };
}
