/** `hoard init --repo R [--encrypt] [--pack-size MIB] [--compression C] [--object-lock [DAYS]] [--object-lock-mode compliance|governance]` */
import {
  COMPRESSION_SYNTAX,
  DEFAULT_OBJECT_LOCK_MODE,
  MAX_OBJECT_LOCK_DAYS,
  parseCompression,
  Repository,
  type BlobCompression,
  type ObjectLockConfig,
} from '@hoard/repository';
import { UsageError } from '../errors.js';
import { openObjectStore, passphrase, type RepoOptions } from '../repo-location.js';

export interface InitCommandOptions extends RepoOptions {
  encrypt?: boolean;
  packSize?: string;
  compression?: string;
  /** `--object-lock` alone is true; with a value, the days. */
  objectLock?: boolean | string;
  objectLockMode?: string;
  json?: boolean;
}

/** Days of retention when `--object-lock` gives none. */
export const DEFAULT_OBJECT_LOCK_DAYS = 30;

/** `--object-lock [DAYS]` and `--object-lock-mode`, checked; undefined without --object-lock. */
export function objectLockOption(options: InitCommandOptions): ObjectLockConfig | undefined {
  if (options.objectLock === undefined) {
    if (options.objectLockMode !== undefined) throw new UsageError('--object-lock-mode needs --object-lock');
    return undefined;
  }
  if (!options.repo?.startsWith('s3://')) {
    throw new UsageError(
      `--object-lock needs an S3 repository (--repo s3://bucket/prefix) whose bucket has Object Lock; ${options.repo ?? 'the repository'} is a directory, which cannot lock objects`,
    );
  }
  let days = DEFAULT_OBJECT_LOCK_DAYS;
  if (options.objectLock !== true) {
    days = Number(options.objectLock);
    if (!/^\d+$/.test(String(options.objectLock)) || days < 1 || days > MAX_OBJECT_LOCK_DAYS) {
      throw new UsageError(
        `--object-lock ${options.objectLock}: give the retention in whole days from 1 to ${MAX_OBJECT_LOCK_DAYS}, at least the longest retention of your policies plus the gc grace`,
      );
    }
  }
  const mode = (options.objectLockMode ?? DEFAULT_OBJECT_LOCK_MODE).toUpperCase();
  if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') throw new UsageError(`--object-lock-mode ${options.objectLockMode}: use compliance or governance`);
  return { mode, days };
}

export async function runInit(options: InitCommandOptions, out: (line: string) => void): Promise<void> {
  let packBytes: number | undefined;
  if (options.packSize !== undefined) {
    const mib = Number(options.packSize);
    if (!Number.isInteger(mib) || mib < 4 || mib > 128) throw new UsageError(`--pack-size ${options.packSize}: give a whole number of MiB from 4 to 128`);
    packBytes = mib * 1024 * 1024;
  }
  let compression: BlobCompression | undefined;
  if (options.compression !== undefined) {
    compression = parseCompression(options.compression);
    if (!compression) throw new UsageError(`--compression ${options.compression}: use ${COMPRESSION_SYNTAX}`);
  }
  const objectLock = objectLockOption(options);
  let secret: string | undefined;
  if (options.encrypt) {
    secret = await passphrase(options, { ask: true, confirm: true });
    if (secret === undefined) throw new UsageError('--encrypt needs a passphrase: set HOARD_PASSPHRASE, give --passphrase-file, or run on a terminal');
  }
  const objects = await openObjectStore(options.repo, { create: true, objectLock: objectLock !== undefined });
  const repo = await Repository.init(objects, { passphrase: secret, packBytes, compression, objectLock });
  const lock = repo.config.objectLock;
  if (options.json) {
    out(
      JSON.stringify({
        repository: repo.location,
        id: repo.config.id,
        encrypted: repo.encrypted,
        packBytes: repo.config.packBytes,
        compression: repo.config.compression,
        objectLock: lock ?? null,
      }),
    );
  } else {
    out(`created ${repo.encrypted ? 'encrypted ' : ''}repository ${repo.config.id} at ${repo.location} (compression ${repo.config.compression})`);
    if (lock)
      out(
        `object lock: packs, index segments, chunk-list pages and manifests are locked (${lock.mode.toLowerCase()}) for ${lock.days} day(s) after each write; keep the longest retention of your policies plus the gc grace below that`,
      );
    if (repo.encrypted) out('keep the passphrase safe: without it the data cannot be restored');
  }
}
