/** `hoard init --repo R [--encrypt [--fingerprints-from R2]] [--pack-size MIB] [--compression C] [--object-lock [DAYS]] [--object-lock-mode compliance|governance]` */
import {
  COMPRESSION_SYNTAX,
  DEFAULT_OBJECT_LOCK_MODE,
  MAX_OBJECT_LOCK_DAYS,
  parseCompression,
  GLOBAL_STORE,
  Repository,
  type BlobCompression,
  type ObjectLockConfig,
  type StorePairing,
} from '@hoard/repository';
import { UsageError } from '../errors.js';
import { openObjectStore, passphrase, type RepoOptions } from '../repo-location.js';
import { openSide } from './sync.js';

export interface InitCommandOptions extends RepoOptions {
  encrypt?: boolean;
  packSize?: string;
  compression?: string;
  /** `--object-lock` alone is true; with a value, the days. */
  objectLock?: boolean | string;
  objectLockMode?: string;
  /** Pair the new global store with this repository's (sync.md, "Paired stores"). */
  fingerprintsFrom?: string;
  fromPassphraseFile?: string;
  fromEndpoint?: string;
  json?: boolean;
}

/**
 * `--fingerprints-from REPO`: the pairing of REPO's global store, for a new encrypted
 * repository that will hold copies of it (copies then read only what the target lacks).
 */
async function globalPairingFrom(options: InitCommandOptions): Promise<StorePairing | undefined> {
  if (options.fingerprintsFrom === undefined) {
    if (options.fromPassphraseFile !== undefined || options.fromEndpoint !== undefined)
      throw new UsageError('--from-passphrase-file and --from-endpoint go with --fingerprints-from REPO');
    return undefined;
  }
  if (!options.encrypt)
    throw new UsageError('--fingerprints-from pairs two encrypted repositories: add --encrypt (an unencrypted repository fingerprints without a key)');
  const source = await openSide('from', options.fingerprintsFrom, options.fromEndpoint, options.fromPassphraseFile);
  if (!source.encrypted)
    throw new UsageError(
      `--fingerprints-from ${options.fingerprintsFrom}: that repository is not encrypted, so it has no fingerprint key to share; copies from it need no pairing`,
    );
  const pairing = (await source.storeByName(GLOBAL_STORE)).pairing();
  if (!pairing) throw new UsageError(`--fingerprints-from ${options.fingerprintsFrom}: its global store has no keys`);
  return pairing;
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
  const globalPairing = await globalPairingFrom(options);
  let secret: string | undefined;
  if (options.encrypt) {
    secret = await passphrase(options, { ask: true, confirm: true });
    if (secret === undefined) throw new UsageError('--encrypt needs a passphrase: set HOARD_PASSPHRASE, give --passphrase-file, or run on a terminal');
  }
  const objects = await openObjectStore(options.repo, { create: true, objectLock: objectLock !== undefined });
  const repo = await Repository.init(objects, { passphrase: secret, packBytes, compression, objectLock, globalPairing });
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
        pairedWith: options.fingerprintsFrom ?? null,
      }),
    );
  } else {
    out(`created ${repo.encrypted ? 'encrypted ' : ''}repository ${repo.config.id} at ${repo.location} (compression ${repo.config.compression})`);
    if (lock)
      out(
        `object lock: packs, index segments, chunk-list pages and manifests are locked (${lock.mode.toLowerCase()}) for ${lock.days} day(s) after each write; keep the longest retention of your policies plus the gc grace below that`,
      );
    if (globalPairing)
      out(`its global store shares the fingerprint key of ${options.fingerprintsFrom}'s (not its data key): copies from there read only what is missing here`);
    if (repo.encrypted) out('keep the passphrase safe: without it the data cannot be restored');
  }
}
