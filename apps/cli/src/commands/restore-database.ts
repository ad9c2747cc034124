/**
 * Restoring a database dump straight into a database (`hoard restore JOB --to URL`), and
 * the sinks `--verify-only` uses. Shared by the embedded (`--repo`) and the server
 * (`--server`) restores.
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
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, rmSync } from 'node:fs';
import { access, mkdtemp, open, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatBytes } from '@hoard/chunker';
import type { ErrorCode } from '@hoard/errors';
import type { RestoreSink } from '@hoard/repository';
import { UsageError } from '../errors.js';

/** The custom-format archive's magic (pg_dump -Fc). */
const PGDMP = Buffer.from('PGDMP');
const STDERR_TAIL_BYTES = 2048;
const KILL_GRACE_MS = 3000;
/** `--jobs` takes 1..MAX_JOBS. */
export const MAX_JOBS = 64;
/** Writes to the temporary dump are gathered into pieces of this size. */
const TEMP_WRITE_BYTES = 1 << 20;

/** `--jobs N --temp-dir DIR`, checked: a parallel pg_restore from a temporary file. */
export interface ParallelRestore {
  jobs: number;
  /** Absolute; an existing, writable directory. */
  tempDir: string;
}

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

/** Space for the temporary dump: `need` bytes free in `dir`, else DatabaseToolError naming both figures. */
export async function checkTempSpace(
  dir: string,
  need: number,
  fsStat: (path: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }> = statfs,
): Promise<void> {
  const s = await fsStat(dir);
  const free = Number(BigInt(s.bavail) * BigInt(s.bsize));
  if (free < need) {
    throw new DatabaseToolError(
      `--temp-dir ${dir} has ${free} bytes (${formatBytes(free)}) free, but pg_restore --jobs needs the whole dump there: ${need} bytes (${formatBytes(need)}); give --temp-dir on a file system with room, or drop --jobs to stream the dump; nothing was written to the database`,
    );
  }
}

/** Temporary dump directories to remove when the process is stopped or exits. */
const liveTempDirs = new Set<string>();
const liveChildren = new Set<ChildProcess>();
let handlersInstalled = false;

function removeLiveTempDirs(): void {
  for (const dir of liveTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: the process is going away
    }
  }
  liveTempDirs.clear();
}

function onStopSignal(signal: NodeJS.Signals): void {
  for (const child of liveChildren) child.kill('SIGTERM');
  const dirs = [...liveTempDirs].join(', ');
  removeLiveTempDirs();
  process.stderr.write(
    `\nhoard: interrupted (${signal}): ${liveChildren.size > 0 ? 'pg_restore was stopped (the database may hold part of the dump); ' : 'nothing was written to the database; '}the temporary dump ${dirs} was removed\n`,
  );
  process.exit(1);
}

function trackTempDir(dir: string): void {
  liveTempDirs.add(dir);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('SIGINT', onStopSignal);
  process.on('SIGTERM', onStopSignal);
  process.on('SIGHUP', onStopSignal);
  process.on('exit', removeLiveTempDirs);
}

function untrackTempDir(dir: string): void {
  liveTempDirs.delete(dir);
  if (liveTempDirs.size > 0 || !handlersInstalled) return;
  handlersInstalled = false;
  process.off('SIGINT', onStopSignal);
  process.off('SIGTERM', onStopSignal);
  process.off('SIGHUP', onStopSignal);
  process.off('exit', removeLiveTempDirs);
}

/** The custom-format dump on disk for `pg_restore --jobs`: a new 0700 directory holding one 0600 file. */
class TempDump {
  private buf = Buffer.allocUnsafe(TEMP_WRITE_BYTES);
  private used = 0;
  private closed = false;
  bytes = 0;

  private constructor(
    readonly dir: string,
    readonly file: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(parent: string): Promise<TempDump> {
    const dir = await mkdtemp(join(parent, 'hoard-pg-restore-'));
    trackTempDir(dir);
    try {
      const file = join(dir, 'dump.pgdmp');
      return new TempDump(dir, file, await open(file, 'wx', 0o600));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      untrackTempDir(dir);
      throw err;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    let from = 0;
    while (from < data.length) {
      const n = Math.min(data.length - from, this.buf.length - this.used);
      this.buf.set(data.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
      if (this.used === this.buf.length) await this.flush();
    }
    this.bytes += data.length;
  }

  private async flush(): Promise<void> {
    let off = 0;
    while (off < this.used) off += (await this.fh.write(this.buf, off, this.used - off)).bytesWritten;
    this.used = 0;
  }

  /** Everything written and the file closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.fh.close();
    }
  }

  /** Removes the directory and the file (also when writing failed). */
  async remove(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
    untrackTempDir(this.dir);
  }
}

export interface DatabaseTarget {
  engine: 'postgres' | 'mysql';
  /** The URL without user or password, for messages: `postgres://127.0.0.1:5432/shop`. */
  name: string;
  /** The database name. */
  database: string;
  /** The connection part of the tool's arguments. */
  connectArgs: string[];
  env: NodeJS.ProcessEnv;
}

/** True when `--to` names a database rather than a path. */
export function isDatabaseUrl(to: string): boolean {
  return /^(postgres|postgresql|mysql|mariadb):\/\//i.test(to.trim());
}

/** Parses `--to` as a database URL; UsageError when it is malformed or names no database. */
export async function parseDatabaseTarget(to: string, env: NodeJS.ProcessEnv = process.env): Promise<DatabaseTarget> {
  // Loaded here: every restore loads this module, few restore into a database.
  const { parseSourceSpec, SourceSpecError } = await import('@hoard/protocol');
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

/** The database tool failed (exit status, missing program, killed): exit 1. Nothing the CLI wrote is to blame. */
export class DatabaseToolError extends Error {
  override readonly name = 'RestoreFailedError';
  readonly code: ErrorCode = 'work_failed';
}

/** Restored data failed a check after part of it had gone into the database (exit 3). */
export class RestoreDamagedError extends Error {
  override readonly name = 'RestoreDamagedError';
  readonly code: ErrorCode = 'data_damaged';
}

/** Keeps the last `limit` bytes of a stream as text. */
class Tail {
  private buf = Buffer.alloc(0);
  constructor(private readonly limit = STDERR_TAIL_BYTES) {}
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.limit * 2) this.buf = this.buf.subarray(this.buf.length - this.limit);
  }
  text(): string {
    let b = this.buf.length > this.limit ? this.buf.subarray(this.buf.length - this.limit) : this.buf;
    if (b !== this.buf) {
      const nl = b.indexOf(0x0a);
      if (nl >= 0 && nl < 200) b = b.subarray(nl + 1);
    }
    return b
      .toString('utf8')
      .replace(/^\uFFFD+/, '')
      .trim();
  }
}

type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

/**
 * A RestoreSink that feeds a database tool's stdin. The tool starts with the first bytes
 * (they decide between pg_restore and psql). restore() calls abort() on any failure,
 * which kills the tool (SIGTERM): psql's single transaction then rolls back.
 */
export class DatabaseSink implements RestoreSink {
  private head: Buffer[] = [];
  private headBytes = 0;
  private child: ChildProcess | undefined;
  private program = '';
  private stderr = new Tail();
  private exited: Promise<ExitStatus> | undefined;
  private status: ExitStatus | undefined;
  private stdinBroken = false;
  /** Bytes handed to the tool so far. */
  bytesWritten = 0;

  private temp: TempDump | undefined;
  private readonly parallel: ParallelRestore | undefined;
  private readonly dumpBytes: number | undefined;

  /**
   * `parallel`: `--jobs`/`--temp-dir` (PostgreSQL only). `dumpBytes`: the snapshot's
   * logical bytes, for the free-space check of the temporary dump.
   */
  constructor(
    readonly target: DatabaseTarget,
    options: { parallel?: ParallelRestore; dumpBytes?: number } = {},
  ) {
    this.parallel = options.parallel;
    this.dumpBytes = options.dumpBytes;
  }

  /** The program that runs (or ran): `pg_restore`, `psql`, `mysql` or `mariadb`; '' before the first bytes. */
  get tool(): string {
    return this.program;
  }

  /** Whether any byte reached the tool (so the database may hold part of the dump). */
  get started(): boolean {
    return this.child !== undefined;
  }

  /** With --jobs: the temporary dump's directory while it exists (for tests and messages). */
  get tempDir(): string | undefined {
    return this.temp?.dir;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.temp) return this.temp.write(data);
    if (!this.child) {
      this.head.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      this.headBytes += data.length;
      if (this.headBytes < PGDMP.length) return;
      const head = Buffer.concat(this.head);
      this.head = [];
      if (this.parallel) {
        await this.startTempDump(head);
        return this.temp!.write(head);
      }
      await this.start(head);
      return this.push(head);
    }
    return this.push(data);
  }

  async zeros(length: number): Promise<void> {
    const block = Buffer.alloc(Math.min(length, 1 << 20));
    for (let left = length; left > 0; left -= block.length) await this.write(left >= block.length ? block : block.subarray(0, left));
  }

  async finish(): Promise<void> {
    if (this.parallel) return this.finishParallel();
    if (!this.child) {
      const head = Buffer.concat(this.head);
      this.head = [];
      await this.start(head);
      if (head.length > 0) await this.push(head);
    }
    const child = this.child!;
    if (!this.stdinBroken) await new Promise<void>((resolve) => child.stdin!.end(resolve));
    const status = await this.exited!;
    if (status.code !== 0) throw this.failure(status);
  }

  async abort(): Promise<void> {
    try {
      const child = this.child;
      if (!child || this.status) return;
      child.stdin?.destroy();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    } finally {
      await this.temp?.remove();
    }
  }

  /** --jobs: the first bytes decided; the dump goes to a temporary file, after the checks. */
  private async startTempDump(head: Buffer): Promise<void> {
    const { findPostgresProgram } = await import('@hoard/agent');
    const t = this.target;
    if (t.engine !== 'postgres' || !head.subarray(0, PGDMP.length).equals(PGDMP)) {
      throw new UsageError(
        `--jobs needs a PostgreSQL custom-format dump (pg_dump -Fc), and this snapshot is ${t.engine === 'postgres' ? 'a plain SQL dump, which psql reads as one stream' : 'not one'}: drop --jobs to restore it; nothing was written to the database`,
      );
    }
    this.program = 'pg_restore';
    if (!findPostgresProgram('pg_restore', t.env)) {
      throw new DatabaseToolError(
        `restoring into ${t.name} needs pg_restore, which is not installed or not on PATH (Debian/Ubuntu: apt-get install postgresql-client); nothing was written to the database`,
      );
    }
    if (this.dumpBytes !== undefined) await checkTempSpace(this.parallel!.tempDir, this.dumpBytes);
    this.temp = await TempDump.create(this.parallel!.tempDir);
  }

  /** --jobs: every byte is in the temporary file; run pg_restore on it, then remove it. */
  private async finishParallel(): Promise<void> {
    const { findPostgresProgram } = await import('@hoard/agent');
    try {
      if (!this.temp) {
        // Fewer than 5 bytes in all: not a custom-format dump.
        await this.startTempDump(Buffer.concat(this.head));
      }
      const temp = this.temp!;
      await temp.close();
      const t = this.target;
      const found = findPostgresProgram('pg_restore', t.env)!;
      const args = [...t.connectArgs, '--no-owner', '--exit-on-error', '--no-password', `--jobs=${this.parallel!.jobs}`, temp.file];
      const child = spawn(found, args, { stdio: ['ignore', 'ignore', 'pipe'], env: t.env });
      child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk));
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) => reject(new DatabaseToolError(`restoring into ${t.name}: could not start pg_restore (${found}): ${err.message}`)));
      });
      this.child = child;
      liveChildren.add(child);
      this.bytesWritten = temp.bytes;
      this.exited = new Promise<ExitStatus>((resolve) => {
        child.once('close', (code, signal) => {
          liveChildren.delete(child);
          this.status = { code, signal };
          resolve(this.status);
        });
      });
      const status = await this.exited;
      if (status.code !== 0) throw this.failure(status);
    } finally {
      await this.temp?.remove();
    }
  }

  private async start(head: Buffer): Promise<void> {
    const { findPostgresProgram, findProgram } = await import('@hoard/agent');
    const t = this.target;
    let args: string[];
    let found: string | undefined;
    let hint: string;
    if (t.engine === 'postgres') {
      const custom = head.subarray(0, PGDMP.length).equals(PGDMP);
      this.program = custom ? 'pg_restore' : 'psql';
      found = findPostgresProgram(this.program, t.env);
      args = custom
        ? [...t.connectArgs, '--no-owner', '--exit-on-error', '--no-password']
        : [...t.connectArgs, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '--no-password', '-f', '-'];
      hint = 'postgresql-client';
    } else {
      found = findProgram('mysql', t.env);
      this.program = 'mysql';
      if (!found && (found = findProgram('mariadb', t.env))) this.program = 'mariadb';
      args = [...t.connectArgs];
      hint = 'mariadb-client (or default-mysql-client)';
    }
    if (!found)
      throw new DatabaseToolError(
        `restoring into ${t.name} needs ${this.program}, which is not installed or not on PATH (Debian/Ubuntu: apt-get install ${hint}); nothing was written to the database`,
      );
    const child = spawn(found, args, { stdio: ['pipe', 'ignore', 'pipe'], env: t.env });
    child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    child.stdin!.on('error', () => {
      // EPIPE: the tool stopped reading (it failed); its exit status tells why.
      this.stdinBroken = true;
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new DatabaseToolError(`restoring into ${t.name}: could not start ${this.program} (${found}): ${err.message}`)));
    });
    this.child = child;
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once('close', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
  }

  private async push(data: Uint8Array): Promise<void> {
    const child = this.child!;
    if (this.status || this.stdinBroken) throw await this.earlyExit();
    this.bytesWritten += data.length;
    if (child.stdin!.write(data)) return;
    const drained = new Promise<boolean>((resolve) => child.stdin!.once('drain', () => resolve(true)));
    const ended = this.exited!.then(() => false);
    if (!(await Promise.race([drained, ended]))) throw await this.earlyExit();
  }

  /** The tool exited (or closed its stdin) before the dump was all written. */
  private async earlyExit(): Promise<Error> {
    const status = await this.exited!;
    if (status.code === 0)
      return new DatabaseToolError(
        `${this.program} exited with status 0 before reading the whole dump (restoring into ${this.target.name}); the database may hold part of it`,
      );
    return this.failure(status);
  }

  private failure(status: ExitStatus): Error {
    const how = status.code !== null ? `exited with status ${status.code}` : `was killed by ${status.signal}`;
    const tail = this.stderr.text();
    const where = this.target.engine === 'postgres' && this.program === 'psql' ? ' (it ran in one transaction, so nothing of it was committed)' : '';
    return new DatabaseToolError(
      `${this.program} ${how} restoring into ${this.target.name}${where}${tail ? `; its last output on stderr:\n${tail}` : ' (it wrote nothing on stderr)'}`,
    );
  }
}

/**
 * What to say when restored data failed a check (`cause`, an IntegrityError or the like)
 * after `sink` had handed bytes to the database tool.
 */
export function damagedAfterData(cause: Error, sink: DatabaseSink): RestoreDamagedError {
  const rollback =
    sink.tool === 'psql'
      ? ' psql ran the dump in one transaction and was stopped before its end, so it should have rolled back; check before relying on it.'
      : ` ${sink.tool} was stopped; what it had restored is committed.`;
  return new RestoreDamagedError(
    `${cause.message}. This was found after ${sink.bytesWritten} bytes of the dump had gone to ${sink.tool}: ${sink.target.name} may hold partial data of this restore.${rollback} Drop the database (or restore another snapshot into a new one), and run \`hoard verify --read-data\`.`,
    { cause },
  );
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
