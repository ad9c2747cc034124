/**
 * `hoard server start [--config FILE] [--listen HOST:PORT] [--storage fs:DIR|s3://bucket/prefix] [--data DIR]`
 *
 * Settings come from the config file (JSON; reference in docs/operations.md), then the
 * command line. A storage location without a repository gets one (`--encrypt` with a
 * passphrase file makes it encrypted). The first start creates an admin token, prints it
 * once and writes it to <data>/admin-token (mode 0600).
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MediaServer } from '@hoard/media-server';
import { parseSchedule } from '@hoard/protocol';
import { Repository, RepositoryNotFoundError } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { untilStopSignal } from '../signals.js';
import { openObjectStore, passphrase } from '../repo-location.js';

export interface ServerConfig {
  listen?: string;
  storage?: string;
  data?: string;
  tls?: { cert: string; key: string };
  passphraseFile?: string;
  encrypt?: boolean;
  sessionIdleSeconds?: number;
  /** How long a run lives without its agent renewing its lease (docs/protocol.md, "Leases"). */
  runLeaseSeconds?: number;
  /** Repository quota in bytes for `hoard report`'s fill date. */
  quotaBytes?: number;
  verifyUploads?: boolean;
  logLevel?: string;
  /** Nightly GC: a cron expression or calendar word, or "off". */
  gcSchedule?: string;
  gcTimeZone?: string;
  gcGraceHours?: number;
}

export interface ServerStartOptions {
  config?: string;
  listen?: string;
  storage?: string;
  data?: string;
  tlsCert?: string;
  tlsKey?: string;
  passphraseFile?: string;
  encrypt?: boolean;
  logLevel?: string;
}

const CONFIG_KEYS = new Set(['listen', 'storage', 'data', 'tls', 'passphraseFile', 'encrypt', 'sessionIdleSeconds', 'runLeaseSeconds', 'verifyUploads', 'logLevel', 'quotaBytes', 'gcSchedule', 'gcTimeZone', 'gcGraceHours']);

export async function loadServerConfig(file: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--config ${file} must hold a JSON object`);
  for (const key of Object.keys(value)) {
    if (!CONFIG_KEYS.has(key)) throw new UsageError(`--config ${file}: unknown setting "${key}"; known: ${[...CONFIG_KEYS].join(', ')}`);
  }
  const c = value as ServerConfig;
  if (c.tls !== undefined && (typeof c.tls.cert !== 'string' || typeof c.tls.key !== 'string')) throw new UsageError(`--config ${file}: tls needs "cert" and "key" file paths`);
  if (c.quotaBytes !== undefined && !(typeof c.quotaBytes === 'number' && Number.isSafeInteger(c.quotaBytes) && c.quotaBytes > 0)) throw new UsageError(`--config ${file}: quotaBytes must be a whole number of bytes > 0`);
  if (c.gcSchedule !== undefined) {
    if (typeof c.gcSchedule !== 'string') throw new UsageError(`--config ${file}: gcSchedule must be a cron expression such as "30 4 * * *", a calendar word (daily, weekly) or "off"`);
    if (c.gcSchedule !== 'off') {
      try {
        parseSchedule(c.gcSchedule, c.gcTimeZone ?? 'UTC');
      } catch (err) {
        throw new UsageError(`--config ${file}: gcSchedule: ${(err as Error).message}`);
      }
    }
  }
  if (c.gcGraceHours !== undefined && !(typeof c.gcGraceHours === 'number' && c.gcGraceHours >= 0 && c.gcGraceHours <= 24 * 365)) throw new UsageError(`--config ${file}: gcGraceHours must be a number of hours from 0 to 8760`);
  if (c.sessionIdleSeconds !== undefined && !(typeof c.sessionIdleSeconds === 'number' && c.sessionIdleSeconds >= 1)) throw new UsageError(`--config ${file}: sessionIdleSeconds must be a number of seconds >= 1`);
  if (c.runLeaseSeconds !== undefined && !(typeof c.runLeaseSeconds === 'number' && c.runLeaseSeconds >= 1 && c.runLeaseSeconds <= 86_400)) throw new UsageError(`--config ${file}: runLeaseSeconds must be a number of seconds from 1 to 86400`);
  return c;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen ${text}: give HOST:PORT, e.g. 0.0.0.0:8420 or 127.0.0.1:8420`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** The storage location: fs:DIR (or a plain directory) or s3://bucket/prefix. */
function storageLocation(text: string): string {
  if (text.startsWith('fs:')) return resolve(text.slice(3));
  if (text.startsWith('s3://') || !/^[a-z][a-z0-9+.-]*:/i.test(text)) return text.startsWith('s3://') ? text : resolve(text);
  throw new UsageError(`--storage ${text}: use fs:/path/to/dir or s3://bucket/prefix`);
}

export async function startServerFromOptions(options: ServerStartOptions, out: (line: string) => void): Promise<MediaServer> {
  const config = options.config ? await loadServerConfig(options.config) : {};
  const storage = options.storage ?? config.storage;
  if (!storage) throw new UsageError('--storage is required (or "storage" in --config): fs:/srv/hoard or s3://bucket/prefix');
  const dataDir = resolve(options.data ?? config.data ?? '/var/lib/hoard/server');
  const listen = parseListen(options.listen ?? config.listen ?? '127.0.0.1:8420');
  const certFile = options.tlsCert ?? config.tls?.cert;
  const keyFile = options.tlsKey ?? config.tls?.key;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('TLS needs both --tls-cert and --tls-key');
  const location = storageLocation(storage);
  const secretOptions = { passphraseFile: options.passphraseFile ?? config.passphraseFile };
  // A new deployment: the directory or the bucket is created when missing.
  const objects = await openObjectStore(location, { create: true });
  let repo: Repository;
  try {
    repo = await Repository.open(objects);
  } catch (err) {
    if (!(err instanceof RepositoryNotFoundError)) throw err;
    const encrypt = options.encrypt ?? config.encrypt ?? false;
    const secret = encrypt ? await passphrase(secretOptions, { ask: true, confirm: true }) : undefined;
    if (encrypt && !secret) throw new UsageError('--encrypt needs a passphrase: HOARD_PASSPHRASE or --passphrase-file');
    repo = await Repository.init(objects, { passphrase: secret });
    process.stderr.write(`hoard server: created a new ${encrypt ? 'encrypted ' : ''}repository at ${location}\n`);
  }
  if (repo.encrypted) repo = repo.withPassphrase(await passphrase(secretOptions, { ask: true }));
  await mkdir(dataDir, { recursive: true });
  const { server, adminToken } = await MediaServer.start({
    repo,
    catalogDir: join(dataDir, 'catalog'),
    host: listen.host,
    port: listen.port,
    tls: certFile && keyFile ? { certFile, keyFile } : undefined,
    sessionIdleMs: config.sessionIdleSeconds !== undefined ? config.sessionIdleSeconds * 1000 : undefined,
    runLeaseMs: config.runLeaseSeconds !== undefined ? Math.round(config.runLeaseSeconds * 1000) : undefined,
    verifyUploads: config.verifyUploads,
    quotaBytes: config.quotaBytes,
    gcSchedule: config.gcSchedule === 'off' ? null : config.gcSchedule,
    gcTimeZone: config.gcTimeZone,
    gcGraceMs: config.gcGraceHours !== undefined ? Math.round(config.gcGraceHours * 3600_000) : undefined,
    logLevel: options.logLevel ?? config.logLevel,
  });
  if (adminToken) {
    const file = join(dataDir, 'admin-token');
    await writeFile(file, `${adminToken}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    process.stderr.write(`hoard server: first start; the admin token (also in ${file}):\n  ${adminToken}\n`);
  }
  out(`hoard server listening on ${server.url} (repository ${repo.location}, catalog ${join(dataDir, 'catalog')})`);
  return server;
}

/** Runs until SIGINT/SIGTERM, then finishes open packs and closes the catalog. */
export async function runServerStart(options: ServerStartOptions, out: (line: string) => void): Promise<void> {
  const server = await startServerFromOptions(options, out);
  await untilStopSignal();
  process.stderr.write('hoard server: stopping\n');
  await server.close();
}
