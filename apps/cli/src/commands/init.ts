/** `hoard init --repo R [--encrypt] [--pack-size MIB]` */
import { Repository } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { openObjectStore, passphrase, type RepoOptions } from '../repo-location.js';

export interface InitCommandOptions extends RepoOptions {
  encrypt?: boolean;
  packSize?: string;
  json?: boolean;
}

export async function runInit(options: InitCommandOptions, out: (line: string) => void): Promise<void> {
  let packBytes: number | undefined;
  if (options.packSize !== undefined) {
    const mib = Number(options.packSize);
    if (!Number.isInteger(mib) || mib < 4 || mib > 128) throw new UsageError(`--pack-size ${options.packSize}: give a whole number of MiB from 4 to 128`);
    packBytes = mib * 1024 * 1024;
  }
  let secret: string | undefined;
  if (options.encrypt) {
    secret = await passphrase(options, { ask: true, confirm: true });
    if (secret === undefined) throw new UsageError('--encrypt needs a passphrase: set HOARD_PASSPHRASE, give --passphrase-file, or run on a terminal');
  }
  const objects = await openObjectStore(options.repo, { create: true });
  const repo = await Repository.init(objects, { passphrase: secret, packBytes });
  if (options.json) {
    out(JSON.stringify({ repository: repo.location, id: repo.config.id, encrypted: repo.encrypted, packBytes: repo.config.packBytes }));
  } else {
    out(`created ${repo.encrypted ? 'encrypted ' : ''}repository ${repo.config.id} at ${repo.location}`);
    if (repo.encrypted) out('keep the passphrase safe: without it the data cannot be restored');
  }
}
