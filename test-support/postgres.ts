/**
 * A real PostgreSQL server for tests: Debian's binaries (/usr/lib/postgresql/NN/bin),
 * `initdb` into `<tmpdir>/hoard-pg-XXXXXX/data`, `pg_ctl start` on a free loopback port
 * with its unix socket in the same directory. Local (socket) connections are trusted;
 * TCP connections need the password (scram-sha-256), so the `url` exercises the way a
 * real backup job authenticates. As root, everything runs as the `postgres` OS user
 * (initdb refuses root) through runuser.
 *
 * Cleanup: stop() shuts the server down and removes the directory. If the test process
 * dies instead, a watchdog (its own session, polling the owner pid every second) runs
 * the directory's cleanup.sh; the next start also reaps directories whose owner is gone.
 * The helpers at the bottom (free ports, watchdog, reaping) are shared with mariadb.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningPostgres {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres` (TCP, password auth). */
  url: string;
  /** The same for another database. */
  urlFor(db: string): string;
  port: number;
  password: string;
  /** Directory holding data, socket, log and cleanup script. */
  dir: string;
  dataDir: string;
  socketDir: string;
  /** Path of a PostgreSQL program of the server's version (psql, pg_restore, pg_dump, ...). */
  bin(program: string): string;
  /** Runs SQL through psql over the unix socket as the superuser; returns unaligned, tuples-only output. Fails on the first error. */
  psql(sql: string | Buffer, db?: string): Promise<string>;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const DIR_PREFIX = 'hoard-pg-';
const PASSWORD = 'hoard-test-pw';

/** The newest /usr/lib/postgresql/NN/bin that has initdb, pg_ctl and postgres. */
export async function postgresBinDir(): Promise<string> {
  const base = '/usr/lib/postgresql';
  const versions = (await readdir(base).catch(() => [] as string[])).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(base, version, 'bin');
    const ok = await Promise.all(
      ['initdb', 'pg_ctl', 'postgres'].map((p) =>
        stat(join(dir, p)).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (ok.every(Boolean)) return dir;
  }
  throw new Error(
    `no PostgreSQL server binaries under ${base}/*/bin; install them: apt-get install -y --no-install-recommends postgresql (scripts/ensure-test-deps.sh does)`,
  );
}

export async function startPostgres(): Promise<RunningPostgres> {
  await reapStale(DIR_PREFIX);
  const binDir = await postgresBinDir();
  const bin = (program: string): string => join(binDir, program);
  const asRoot = process.getuid?.() === 0;
  // initdb refuses to run as root: as root, the server runs as the postgres OS user.
  const asServer = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', bin(program), ...args]] : [bin(program), args];

  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const dataDir = join(dir, 'data');
  const socketDir = dir;
  const logFile = join(dir, 'server.log');
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  await writeFile(join(dir, 'pwfile'), `${PASSWORD}\n`);
  const [stopCmd, stopArgs] = asServer('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '20']);
  await writeCleanupScript(dir, [
    `${[stopCmd, ...stopArgs].map(shellQuote).join(' ')} >/dev/null 2>&1 || true`,
    // pg_ctl unavailable or failed: kill the postmaster by its pid file (its backends follow it).
    `pid=$(head -n 1 ${shellQuote(join(dataDir, 'postmaster.pid'))} 2>/dev/null || true)`,
    `[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true`,
  ]);
  if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
  const watchdog = startWatchdog(dir);

  const stop = async (): Promise<void> => {
    stopWatchdog(watchdog);
    await run('sh', [join(dir, 'cleanup.sh')]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const port = await freePort();
    const [initCmd, initArgs] = asServer('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      `--pwfile=${join(dir, 'pwfile')}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await run(initCmd, initArgs, { timeout: 120_000 });
    const options = [
      `-p ${port}`,
      `-k ${socketDir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=20',
      '-c shared_buffers=32MB',
    ].join(' ');
    const [startCmd, startArgs] = asServer('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', options]);
    await run(startCmd, startArgs, { timeout: 90_000 });

    const psql = (sql: string | Buffer, db = 'postgres'): Promise<string> =>
      runWithInput(
        bin('psql'),
        ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', db, '-f', '-'],
        sql,
      );
    const urlFor = (db: string): string => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
    return {
      url: urlFor('postgres'),
      urlFor,
      port,
      password: PASSWORD,
      dir,
      dataDir,
      socketDir,
      bin,
      psql,
      createDatabase: async (name) => {
        await psql(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      },
      stop,
    };
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await stop();
    throw new Error(`could not start PostgreSQL: ${(err as Error).message}${log ? `\nserver log:\n${log.split('\n').slice(-15).join('\n')}` : ''}`, {
      cause: err,
    });
  }
}

// ---- shared with mariadb.ts ------------------------------------------------------------

/** Runs a program; rejects with its stderr in the message. */
export function run(command: string, args: string[], options: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20, timeout: options.timeout ?? 60_000, env: options.env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(String(stdout));
    });
  });
}

/** Runs a program with `input` on stdin; resolves to stdout, rejects with stderr. */
export function runWithInput(command: string, args: string[], input: string | Buffer, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(stdout.replace(/\n$/, ''));
      else
        reject(
          new Error(`${command} ${code !== null ? `exited with status ${code}` : `was killed by ${signal}`}: ${Buffer.concat(err).toString('utf8').trim()}`),
        );
    });
    child.stdin.end(input);
  });
}

/** A loopback TCP port that is free now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Writes DIR/cleanup.sh: the given lines (stopping the daemon), then removing DIR. */
export async function writeCleanupScript(dir: string, lines: string[]): Promise<void> {
  const path = join(dir, 'cleanup.sh');
  await writeFile(path, ['#!/bin/sh', ...lines, `rm -rf ${shellQuote(dir)}`, ''].join('\n'));
  await chmod(path, 0o755);
}

/**
 * A watchdog in its own session: once this process is gone (however it ended), it runs
 * DIR/cleanup.sh. Returns its pid, for stopWatchdog.
 */
export function startWatchdog(dir: string): number | undefined {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; exec sh ${shellQuote(join(dir, 'cleanup.sh'))}`;
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
  return child.pid;
}

export function stopWatchdog(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Cleans up `<tmpdir>/PREFIX*` directories whose owner process is gone (a run killed so hard its watchdog died too). */
export async function reapStale(prefix: string): Promise<void> {
  const base = tmpdir();
  for (const name of await readdir(base).catch(() => [] as string[])) {
    // Exactly PREFIX + mkdtemp's 6 characters: never another harness's or test's directory.
    if (!name.startsWith(prefix) || !/^[A-Za-z0-9]{6}$/.test(name.slice(prefix.length))) continue;
    const dir = join(base, name);
    const owner = Number.parseInt(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => ''), 10);
    if (Number.isNaN(owner)) {
      const age = await stat(dir).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age < 60_000) continue;
    } else if (isAlive(owner)) {
      continue;
    }
    await run('sh', [join(dir, 'cleanup.sh')]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
