/** `hoard backup --repo R --job NAME [--store S] <file|device|->` */
import { open, stat } from 'node:fs/promises';
import { fileSource, formatBytes } from '@hoard/chunker';
import { backup, type BackupSource } from '@hoard/repository';
import { dedupFactor, formatDedup } from '../dedup.js';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';

export interface BackupCommandOptions extends RepoOptions {
  job: string;
  store?: string;
  name?: string;
  size?: string;
  chunking?: string;
  json?: boolean;
}

const CHUNKING = ['vm-image', 'db-dump', 'file'] as const;

/**
 * The source, and the size progress shows percent and ETA against: `--size`, a file's
 * size, or a block device's (from sysfs; only a hint for progress, not a size the
 * backup is held to).
 */
async function openSource(path: string, options: BackupCommandOptions): Promise<BackupSource & { progressTotal?: number }> {
  let expectedBytes: number | undefined;
  if (options.size !== undefined) {
    expectedBytes = Number(options.size);
    if (!Number.isSafeInteger(expectedBytes) || expectedBytes < 0)
      throw new UsageError(`--size ${options.size}: give the exact number of bytes the source will produce`);
  }
  if (path === '-') {
    return { stream: process.stdin, name: options.name ?? 'stdin', kind: 'stream', expectedBytes, progressTotal: expectedBytes };
  }
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot back up ${path}: ${code === 'ENOENT' ? 'no such file or device' : code === 'EACCES' ? 'permission denied' : String(code ?? err)}`,
    );
  }
  if (info.isDirectory()) throw new UsageError(`${path} is a directory: back up a file, a block device, or - for stdin`);
  const kind = info.isBlockDevice() ? 'block-device' : info.isFile() ? 'file' : 'stream';
  // Fail now on a permission problem rather than after the repository is opened.
  await (await open(path, 'r')).close();
  let deviceBytes: number | undefined;
  if (kind === 'block-device' && expectedBytes === undefined) {
    // Loaded only for a device: @hoard/agent's index brings the protocol's schemas and pino.
    const { blockDeviceSize } = await import('@hoard/agent');
    deviceBytes = await blockDeviceSize(path, path, await stat(path, { bigint: true })).catch(() => undefined);
  }
  return {
    progressTotal: expectedBytes ?? (kind === 'file' ? info.size : deviceBytes),
    // Read straight into the chunker's segments.
    stream: fileSource(path),
    name: options.name ?? path,
    kind,
    expectedBytes: expectedBytes ?? (kind === 'file' ? info.size : undefined),
  };
}

export async function runBackup(path: string, options: BackupCommandOptions, out: (line: string) => void): Promise<void> {
  if (options.chunking !== undefined && !(CHUNKING as readonly string[]).includes(options.chunking)) {
    throw new UsageError(`--chunking ${options.chunking}: use one of ${CHUNKING.join(', ')}`);
  }
  const source = await openSource(path, options);
  const repo = await openRepository(options, true);
  const progress = ProgressLine.forCommand(options.json, { summary: true });
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted: no snapshot was committed'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await backup(repo, source, {
      job: options.job,
      store: options.store,
      chunking: options.chunking as (typeof CHUNKING)[number] | undefined,
      signal: controller.signal,
      onProgress: (p) =>
        progress.update(p.bytesRead, source.progressTotal, () => `new ${formatBytes(p.bytesNew)}  dedup ${formatDedup(p.bytesRead, p.bytesNew)}`),
    });
    progress.done();
    const seconds = result.durationMs / 1000;
    if (options.json) {
      out(
        JSON.stringify({
          snapshot: result.snapshot.id,
          key: result.snapshot.key,
          job: options.job,
          store: result.store,
          source: source.name,
          bytesRead: result.bytesRead,
          bytesNew: result.bytesNew,
          bytesStored: result.bytesStored,
          bytesZero: result.bytesZero,
          chunks: result.chunks,
          chunksNew: result.chunksNew,
          packs: result.packs,
          dedupRatio: dedupFactor(result.bytesRead, result.bytesNew),
          seconds,
          streamHash: result.snapshot.meta.streamHash,
        }),
      );
    } else {
      out(`snapshot ${result.snapshot.id} of job ${options.job} (store ${result.store})`);
      out(
        `  read ${formatBytes(result.bytesRead)} in ${seconds.toFixed(1)} s (${formatBytes(Math.round(result.bytesRead / Math.max(seconds, 1e-3)))}/s); ` +
          `new ${formatBytes(result.bytesNew)}, stored ${formatBytes(result.bytesStored)} in ${result.packs} pack(s); zero ${formatBytes(result.bytesZero)}`,
      );
      out(`  ${result.chunks} chunks, ${result.chunksNew} new; dedup ${formatDedup(result.bytesRead, result.bytesNew)}`);
    }
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
