/**
 * `--repo` and the passphrase: how a command gets an open Repository.
 *
 *   --repo /srv/hoard            a local directory (fs object store)
 *   --repo s3://bucket/prefix    S3; endpoint, region and credentials from the usual AWS
 *                                environment (AWS_ENDPOINT_URL or HOARD_S3_ENDPOINT,
 *                                AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
 *
 * Passphrase (encrypted repositories): HOARD_PASSPHRASE, else the first line of
 * --passphrase-file, else a prompt when stdin is a terminal.
 */
import { readFile, stat } from 'node:fs/promises';
import { FsObjectStore, Repository, RepositoryNotFoundError, type ObjectStore } from '@hoard/repository';
import { UsageError } from './errors.js';
import { promptHidden } from './prompt.js';

export interface RepoOptions {
  repo?: string;
  passphraseFile?: string;
}

export async function openObjectStore(location: string | undefined, options: { create?: boolean; objectLock?: boolean } = {}): Promise<ObjectStore> {
  if (!location) throw new UsageError('--repo is required: a directory, or s3://bucket/prefix');
  if (location.startsWith('s3://')) {
    // The SDK warns on every run that Node 20 support ends; a backup's output is no place for it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const { S3ObjectStore } = await import('@hoard/repository/s3');
    return S3ObjectStore.open({ url: location, create: options.create, objectLock: options.objectLock });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new UsageError(`--repo ${location}: unsupported scheme; use a directory or s3://bucket/prefix`);
  }
  if (!options.create && !(await stat(location).catch(() => undefined))) throw new RepositoryNotFoundError(location);
  return FsObjectStore.open(location, { create: options.create });
}

/** The passphrase if one is available; `prompt` asks on a terminal when none is. */
export async function passphrase(options: RepoOptions, prompt: { ask: boolean; confirm?: boolean }): Promise<string | undefined> {
  const env = process.env.HOARD_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  if (options.passphraseFile) {
    let text: string;
    try {
      text = await readFile(options.passphraseFile, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --passphrase-file ${options.passphraseFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const line = text.split(/\r?\n/, 1)[0];
    if (!line) throw new UsageError(`--passphrase-file ${options.passphraseFile} is empty`);
    return line;
  }
  if (!prompt.ask || !process.stdin.isTTY) return undefined;
  const first = await promptHidden('repository passphrase: ');
  if (prompt.confirm && (await promptHidden('again: ')) !== first) throw new UsageError('the passphrases do not match');
  if (!first) throw new UsageError('the passphrase must not be empty');
  return first;
}

/**
 * Opens the repository. `needSecrets`: the command reads or writes data, so an encrypted
 * repository needs its passphrase (asked for on a terminal).
 */
export async function openRepository(options: RepoOptions, needSecrets: boolean): Promise<Repository> {
  // Damage that reading works around (a damaged index segment) is said on stderr, once.
  const onWarning = (message: string): void => void process.stderr.write(`hoard: warning: ${message}\n`);
  const repo = await Repository.open(await openObjectStore(options.repo), { onWarning });
  return repo.encrypted ? repo.withPassphrase(await passphrase(options, { ask: needSecrets })) : repo;
}
