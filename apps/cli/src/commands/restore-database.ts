/**
 * Restoring a database dump straight into a database (`hoard restore JOB --to URL`), and
 * the sinks `--verify-only` uses. Shared by the embedded (`--repo`) and the server
 * (`--server`) restores. This file reads the options; the sink that runs the database's
 * tool (DatabaseSink) is @hoard/repository's (database/database-sink.ts), shared with the
 * media server's restore drill:
 *
 *   --to postgres://user@host:port/db   (or postgresql://)
 *       the first bytes decide: `PGDMP` is a custom-format dump ->
 *         pg_restore --dbname=URL --no-owner --exit-on-error --no-password  (reads stdin)
 *       anything else is SQL ->
 *         psql --dbname=URL -X -q -v ON_ERROR_STOP=1 --single-transaction --no-password -f -
 *   --to mysql://user:pass@host:port/db (or mariadb://)
 *         mysql --host=H [--port=P] [--user=U] [--socket=S] -- DB   (or `mariadb`)
 *
 * With `--jobs N` (PostgreSQL, custom-format dump only) the dump is not streamed: it is
 * written to a file in a new private directory under `--temp-dir` (default os.tmpdir();
 * free space checked with statfs against the snapshot's logical bytes first), and when
 * every byte has arrived and been checked, finish() runs
 *         pg_restore --dbname=URL --no-owner --exit-on-error --no-password --jobs=N FILE
 * (parallel restore needs a seekable file). The directory is removed in every case:
 * success, failure, abort(), SIGINT/SIGTERM/SIGHUP, and process exit. A plain SQL dump
 * with --jobs is refused (UsageError, nothing written), as is --jobs with a MySQL target.
 *
 * The URL is read the way the agent reads a source spec of the same form (the protocol's
 * parseSourceSpec, the agent's pg_dump/mysqldump invocations): the password goes to the
 * tool in PGPASSWORD or MYSQL_PWD, never on its command line. The dump is streamed into
 * the tool's stdin with backpressure, never held whole. The tool's stdout is dropped;
 * its stderr tail goes into the error when it fails.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import type { DatabaseTarget, ParallelRestore, RestoreSink } from '@hoard/repository';
import { UsageError } from '../errors.js';

export {
  checkTempSpace,
  damagedAfterData,
  DatabaseSink,
  DatabaseToolError,
  RestoreDamagedError,
  type DatabaseTarget,
  type ParallelRestore,
} from '@hoard/repository';

/** `--jobs` takes 1..MAX_JOBS. */
export const MAX_JOBS = 64;

/** The options of `hoard restore` that --jobs/--temp-dir are checked against. */
export interface ParallelRestoreFlags {
  jobs?: string;
  tempDir?: string;
  to?: string;
  verifyOnly?: boolean;
}

/**
 * Checks `--jobs`/`--temp-dir` before anything is read (UsageError, exit 2): a whole
 * number 1..64, only with `--to postgres://...`, and a temp dir that exists and is
 * writable. Undefined without --jobs (the default: streaming).
 */
export async function parseParallelRestore(flags: ParallelRestoreFlags): Promise<ParallelRestore | undefined> {
  if (flags.jobs === undefined) {
    if (flags.tempDir !== undefined)
      throw new UsageError('--temp-dir is where --jobs keeps the dump for a parallel pg_restore: add --jobs N, or drop --temp-dir');
    return undefined;
  }
  const text = String(flags.jobs).trim();
  const jobs = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) {
    throw new UsageError(`--jobs ${flags.jobs}: give the number of parallel pg_restore jobs, a whole number from 1 to ${MAX_JOBS} (e.g. --jobs 4)`);
  }
  if (flags.verifyOnly) throw new UsageError('--jobs is for restoring into PostgreSQL (--to postgres://...); --verify-only writes nothing: drop --jobs');
  const to = flags.to?.trim() ?? '';
  if (!isDatabaseUrl(to))
    throw new UsageError(
      `--jobs runs pg_restore in parallel, so it needs --to postgres://user@host:port/db${to ? `, not --to ${to}` : ''}; drop --jobs to restore elsewhere`,
    );
  if (!/^postgres(ql)?:\/\//i.test(to))
    throw new UsageError(
      '--jobs needs a PostgreSQL custom-format dump (pg_dump -Fc) restored --to postgres://...; a MySQL/MariaDB dump is always streamed into mysql: drop --jobs',
    );
  const tempDir = resolve(flags.tempDir ?? tmpdir());
  const info = await stat(tempDir).catch(() => undefined);
  if (!info) throw new UsageError(`--temp-dir ${tempDir}: no such directory (it holds the whole dump while pg_restore --jobs reads it)`);
  if (!info.isDirectory()) throw new UsageError(`--temp-dir ${tempDir} is not a directory`);
  try {
    await access(tempDir, constants.W_OK | constants.X_OK);
  } catch {
    throw new UsageError(`--temp-dir ${tempDir}: not writable by this user`);
  }
  return { jobs, tempDir };
}

/** True when `--to` names a database rather than a path. */
export function isDatabaseUrl(to: string): boolean {
  return /^(postgres|postgresql|mysql|mariadb):\/\//i.test(to.trim());
}

/** Parses `--to` as a database URL; UsageError when it is malformed or names no database. */
export async function parseDatabaseTarget(to: string, env: NodeJS.ProcessEnv = process.env): Promise<DatabaseTarget> {
  // Loaded here: every restore loads this module, few restore into a database.
  const { parseSourceSpec, SourceSpecError } = await import('@hoard/protocol/client');
  const { mysqldumpInvocation, pgDumpInvocation } = await import('@hoard/agent');
  let spec;
  try {
    spec = parseSourceSpec(to);
  } catch (err) {
    if (err instanceof SourceSpecError) throw new UsageError(`--to: ${err.message}`);
    throw err;
  }
  if (spec.type === 'postgres') {
    const inv = pgDumpInvocation(spec, env);
    const dbname = inv.args.find((a) => a.startsWith('--dbname='));
    const database = new URL(spec.url).pathname.replace(/^\//, '');
    if (!dbname || database === '')
      throw new UsageError(`--to ${inv.name}: name the database to restore into, e.g. postgres://postgres@localhost:5432/shop_copy`);
    return { engine: 'postgres', name: inv.name, database: decodeURIComponent(database), connectArgs: [dbname], env: inv.env };
  }
  if (spec.type === 'mysql') {
    const inv = mysqldumpInvocation(spec, env);
    // The connection options of mysqldump's command line (--host= ... -- DB) are the mysql client's too.
    const from = inv.args.findIndex((a) => a.startsWith('--host='));
    const database = inv.args[inv.args.length - 1] ?? '';
    if (from < 0 || database === '') throw new UsageError(`--to ${inv.name}: name the database to restore into, e.g. mysql://root@localhost:3306/shop_copy`);
    return { engine: 'mysql', name: inv.name, database, connectArgs: inv.args.slice(from), env: inv.env };
  }
  throw new UsageError(`--to ${to}: expected postgres://, postgresql://, mysql:// or mariadb://`);
}

/**
 * Pull-side adapter of a RestoreSink: restore() pushes into the sink, the consumer
 * iterates; each write waits until the consumer took the previous piece (one piece in
 * flight, so memory stays bounded).
 */
export function sinkToIterable(run: (sink: RestoreSink) => Promise<unknown>): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      type Item = { value: Uint8Array } | { done: true } | { error: unknown };
      let waiting: ((item: Item) => void) | undefined;
      const queue: Item[] = [];
      let taken: (() => void) | undefined;
      let stopped = false;
      const deliver = (item: Item): void => {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w(item);
        } else queue.push(item);
      };
      const sink: RestoreSink = {
        write: (data) =>
          stopped
            ? Promise.reject(new Error('the reader stopped'))
            : new Promise<void>((resolve) => {
                taken = resolve;
                deliver({ value: Buffer.from(data) });
              }),
        zeros: async (length) => {
          const block = Buffer.alloc(Math.min(length, 1 << 20));
          for (let left = length; left > 0; left -= block.length) await sink.write(left >= block.length ? block : block.subarray(0, left));
        },
        finish: async () => {},
        abort: async () => {},
      };
      let started = false;
      const next = (): Promise<IteratorResult<Uint8Array>> => {
        if (!started) {
          started = true;
          run(sink).then(
            () => deliver({ done: true }),
            (error) => deliver({ error }),
          );
        }
        const t = taken;
        taken = undefined;
        t?.();
        const item = queue.shift();
        const settle = (i: Item): IteratorResult<Uint8Array> => {
          if ('error' in i) throw i.error;
          if ('done' in i) return { done: true, value: undefined };
          return { done: false, value: i.value };
        };
        if (item) return Promise.resolve().then(() => settle(item));
        return new Promise<Item>((resolve) => (waiting = resolve)).then(settle);
      };
      return {
        next,
        return: async () => {
          stopped = true;
          const t = taken;
          taken = undefined;
          t?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
