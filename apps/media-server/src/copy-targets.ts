/**
 * The server's copy targets (config `copyTargets`): second repositories a policy's
 * `copy-to` names, into which each successful run's snapshots are copied with
 * `syncRepositories` (docs/sync.md). A target is opened afresh for every copy (its
 * index read from its bucket), since other processes (its own prune and gc, a `hoard
 * sync` by hand) may change it between copies; copies into one target run one at a time.
 */
import { readFile } from 'node:fs/promises';
import { FsObjectStore, Repository, type ObjectStore } from '@hoard/repository';
import { Serial } from './serial.js';

export interface CopyTargetConfig {
  /** A directory or s3://bucket/prefix, created with `hoard init`. */
  repository: string;
  /** S3 endpoint when it is not the environment's. */
  endpoint?: string;
  /** First line: the passphrase of an encrypted target. */
  passphraseFile?: string;
  /** Collect the target's garbage on the server's gcSchedule (default true). */
  gc?: boolean;
}

/** A policy names a copy target the server config does not have. */
export class UnknownCopyTargetError extends Error {
  override readonly name = 'UnknownCopyTargetError';
  readonly code = 'invalid_config';
}

export class CopyTargets {
  private readonly serials = new Map<string, Serial>();

  constructor(private readonly targets: Readonly<Record<string, CopyTargetConfig>> = {}) {}

  get names(): string[] {
    return Object.keys(this.targets).sort();
  }

  /** The targets whose garbage this server collects (all but those with `gc: false`). */
  get collected(): string[] {
    return this.names.filter((name) => this.targets[name]!.gc !== false);
  }

  /** Runs `work` on the target opened afresh, after any copy into it still running; closes it afterwards. */
  async with<T>(name: string, work: (target: Repository) => Promise<T>): Promise<T> {
    const config = this.targets[name];
    if (!config) {
      const known = this.names;
      throw new UnknownCopyTargetError(
        `no copy target named ${name} in the server config (copyTargets${known.length > 0 ? `: ${known.join(', ')}` : ' is empty'}); add it there or change the policy's copy-to`,
      );
    }
    let serial = this.serials.get(name);
    if (!serial) this.serials.set(name, (serial = new Serial()));
    return serial.run(async () => {
      const objects = await openStore(config);
      try {
        const repo = await Repository.open(objects);
        return await work(repo.encrypted ? repo.withPassphrase(await passphrase(name, config)) : repo);
      } finally {
        (objects as { close?: () => void }).close?.();
      }
    });
  }
}

async function openStore(config: CopyTargetConfig): Promise<ObjectStore> {
  if (config.repository.startsWith('s3://')) {
    const { S3ObjectStore } = await import('@hoard/repository/s3');
    return S3ObjectStore.open({ url: config.repository, ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}) });
  }
  return FsObjectStore.open(config.repository);
}

async function passphrase(name: string, config: CopyTargetConfig): Promise<string | undefined> {
  if (config.passphraseFile === undefined) return undefined;
  const line = (await readFile(config.passphraseFile, 'utf8')).split(/\r?\n/, 1)[0];
  if (!line) throw new UnknownCopyTargetError(`copy target ${name}: its passphraseFile ${config.passphraseFile} is empty`);
  return line;
}
