/**
 * Restoring a database dump straight into a database: a RestoreSink that feeds the
 * database's own tool. Used by the CLI's `hoard restore JOB --to URL` (the URL is read
 * there, apps/cli/src/commands/restore-database.ts) and by the media server's restore
 * drill into a scratch PostgreSQL database (apps/media-server/src/drill-database.ts).
 *
 *   PostgreSQL: the first bytes decide: `PGDMP` is a custom-format dump ->
 *         pg_restore --dbname=URL --no-owner --exit-on-error --no-password  (reads stdin)
 *       anything else is SQL ->
 *         psql --dbname=URL -X -q -v ON_ERROR_STOP=1 --single-transaction --no-password -f -
 *   MySQL/MariaDB:
 *         mysql --host=H [--port=P] [--user=U] [--socket=S] -- DB   (or `mariadb`)
 *
 * With `parallel` (PostgreSQL, custom-format dump only) the dump is not streamed: it is
 * written to a file in a new private directory under `parallel.tempDir` (free space
 * checked with statfs against the snapshot's logical bytes first), and when every byte
 * has arrived and been checked, finish() runs
 *         pg_restore --dbname=URL --no-owner --exit-on-error --no-password --jobs=N FILE
 * (parallel restore needs a seekable file). The directory is removed in every case:
 * success, failure, abort(), SIGINT/SIGTERM/SIGHUP, and process exit.
 *
 * The password goes to the tool in PGPASSWORD or MYSQL_PWD (DatabaseTarget.env), never
 * on its command line. The dump is streamed into the tool's stdin with backpressure,
 * never held whole. The tool's stdout is dropped; its stderr tail goes into the error
 * when it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, open, rm, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes } from '@hoard/chunker';
import type { ErrorCode } from '@hoard/errors';
import type { RestoreSink } from '../repo/restore-sink.js';
import { findPostgresProgram, findProgram } from './programs.js';

/** The custom-format archive's magic (pg_dump -Fc). */
const PGDMP = Buffer.from('PGDMP');
const STDERR_TAIL_BYTES = 2048;
const KILL_GRACE_MS = 3000;
/** Writes to the temporary dump are gathered into pieces of this size. */
const TEMP_WRITE_BYTES = 1 << 20;

/** A parallel pg_restore from a temporary file (`hoard restore --jobs N --temp-dir DIR`, checked). */
export interface ParallelRestore {
  jobs: number;
  /** Absolute; an existing, writable directory. */
  tempDir: string;
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

/** The database tool failed (exit status, missing program, killed): exit 1. Nothing hoard wrote is to blame. */
export class DatabaseToolError extends Error {
  override readonly name = 'RestoreFailedError';
  readonly code: ErrorCode = 'work_failed';
}

/** A restore the dump cannot take (a parallel restore of a plain SQL dump): nothing was written; exit 2. */
export class DatabaseRestoreRefusedError extends Error {
  override readonly name = 'UsageError';
  readonly code: ErrorCode = 'invalid_arguments';
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
    const t = this.target;
    if (t.engine !== 'postgres' || !head.subarray(0, PGDMP.length).equals(PGDMP)) {
      throw new DatabaseRestoreRefusedError(
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
