/**
 * `hoard server start [--config FILE] [--listen HOST:PORT] [--storage fs:DIR|s3://bucket/prefix] [--data DIR]`
 *
 * Settings come from the config file (JSON, or YAML for .yaml/.yml; reference in
 * docs/operations.md), then the command line; @hoard/media-server checks and merges them.
 * A storage location without a repository gets one (`--encrypt` with a passphrase file
 * makes it encrypted). The first start creates an admin token, prints it
 * once and writes it to <data>/admin-token (mode 0600).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadServerConfig, MediaServer, resolveServerSettings, type ServerConfigOverrides } from '@hoard/media-server';
import { Repository, RepositoryNotFoundError } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { untilStopSignal } from '../signals.js';
import { openObjectStore, passphrase } from '../repo-location.js';

export interface ServerStartOptions extends ServerConfigOverrides {
  config?: string;
}

/**
 * Starts the server from --config and the command line (both checked by @hoard/media-server:
 * a bad setting is a ServerConfigError, exit 2). Opens or creates the repository first.
 */
export async function startServerFromOptions(options: ServerStartOptions, out: (line: string) => void): Promise<MediaServer> {
  const config = options.config ? await loadServerConfig(options.config) : {};
  const settings = resolveServerSettings(config, options, options.config ? `--config ${options.config}` : undefined);
  const { storage, dataDir } = settings;
  const secretOptions = { passphraseFile: settings.passphraseFile };
  // A new deployment: the directory or the bucket is created when missing.
  const objects = await openObjectStore(storage, { create: true, objectLock: settings.objectLock !== undefined });
  let repo: Repository;
  try {
    repo = await Repository.open(objects);
  } catch (err) {
    if (!(err instanceof RepositoryNotFoundError)) throw err;
    const { encrypt } = settings;
    const secret = encrypt ? await passphrase(secretOptions, { ask: true, confirm: true }) : undefined;
    if (encrypt && !secret) throw new UsageError('--encrypt needs a passphrase: HOARD_PASSPHRASE or --passphrase-file');
    repo = await Repository.init(objects, { passphrase: secret, objectLock: settings.objectLock });
    const lock = repo.config.objectLock;
    const locked = lock ? `, its immutable objects locked (${lock.mode.toLowerCase()}) for ${lock.days} day(s)` : '';
    process.stderr.write(`hoard server: created a new ${encrypt ? 'encrypted ' : ''}repository at ${storage}${locked}\n`);
  }
  if (settings.objectLock && !repo.config.objectLock) {
    // The setting applies when the repository is created; an existing one keeps its own.
    process.stderr.write(`hoard server: warning: objectLockDays is set but the repository at ${storage} was created without Object Lock; nothing is locked\n`);
  }
  if (repo.encrypted) repo = repo.withPassphrase(await passphrase(secretOptions, { ask: true }));
  await mkdir(dataDir, { recursive: true });
  const { server, adminToken, adopted } = await MediaServer.start({ ...settings.server, repo });
  if (adminToken) {
    const file = join(dataDir, 'admin-token');
    await writeFile(file, `${adminToken}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    const why = adopted ? 'server state adopted from the bucket; a new admin token (the adopted ones work too)' : 'first start; the admin token';
    process.stderr.write(`hoard server: ${why} (also in ${file}):\n  ${adminToken}\n`);
  }
  out(`hoard server listening on ${server.url} (repository ${repo.location}, catalog ${settings.server.catalogDir})`);
  return server;
}

/** Runs until SIGINT/SIGTERM, then finishes open packs and closes the catalog. */
export async function runServerStart(options: ServerStartOptions, out: (line: string) => void): Promise<void> {
  const server = await startServerFromOptions(options, out);
  await untilStopSignal();
  process.stderr.write('hoard server: stopping\n');
  await server.close();
}
