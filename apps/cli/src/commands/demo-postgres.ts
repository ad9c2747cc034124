/**
 * The real PostgreSQL of `hoard demo`: a throwaway cluster in `<tmpdir>/hoard-demo-pg-XXXXXX`
 * (data directory, unix socket, log), listening on a free loopback port, with a `shop`
 * database of a few MB that the demo backs up through the agent's `postgres://` source.
 *
 * Server binaries: the newest /usr/lib/postgresql/NN/bin (Debian, Ubuntu), /usr/pgsql-NN/bin
 * (RHEL, Fedora), or a directory on PATH holding initdb, pg_ctl and postgres. As root, the
 * server runs as the `postgres` OS user (initdb refuses root) through runuser. The clients
 * (psql, pg_restore) connect over the unix socket, which trusts local connections; the
 * backup connects over TCP with a random password (scram-sha-256), like a real job.
 *
 * Cleanup: stop() shuts the server down and removes the directory; stopSync() does the same
 * from a signal handler. If the demo is killed outright, a watchdog (its own session,
 * polling the demo's pid every second) runs the same cleanup script.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, chmod, constants, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { pathDirs, postgresBinDirs } from '@hoard/agent';

export interface DemoPostgres {
  /** `16.4` */
  version: string;
  port: number;
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/shop`: the source spec the agent backs up. */
  sourceUrl: string;
  /** Environment for the agent: PATH starts with the server's bin directory, so pg_dump matches the server. */
  agentEnv: NodeJS.ProcessEnv;
  /** Creates the `shop` database: customers, products, orders. */
  load(): Promise<void>;
  /** A day of business: recent orders shipped, a few cancelled, 2,000 new; a few customers and prices changed. */
  change(): Promise<void>;
  /** Row counts and an md5 over every row of every table of `db`, in key order. */
  checksum(db?: string): Promise<DatabaseChecksum>;
  /** Creates database `db` and restores a custom-format dump into it from `dump` with pg_restore. */
  restore(db: string, dump: Readable): Promise<void>;
  stop(): Promise<void>;
  /** stop() for signal handlers: synchronous, best effort. */
  stopSync(): void;
}

export interface DatabaseChecksum {
  tables: number;
  rows: number;
  /** md5 over the per-table counts and row hashes. */
  md5: string;
}

const DIR_PREFIX = 'hoard-demo-pg-';
const TABLES = ['customers', 'products', 'orders'] as const;

/** The directory holding initdb, pg_ctl and postgres, or undefined when PostgreSQL is not installed. */
export async function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  // Server binaries are rarely on PATH (Debian keeps them in /usr/lib/postgresql/NN/bin): versioned directories first.
  const candidates = [...postgresBinDirs(), ...pathDirs(env)];
  for (const dir of candidates) {
    if ((await Promise.all(['initdb', 'pg_ctl', 'postgres'].map((p) => isExecutable(join(dir, p))))).every(Boolean)) return dir;
  }
  return undefined;
}

/** Starts a cluster from the binaries in `binDir`; throws (having cleaned up) when it cannot. */
export async function startDemoPostgres(binDir: string): Promise<DemoPostgres> {
  const client = async (program: string): Promise<string> => ((await isExecutable(join(binDir, program))) ? join(binDir, program) : program);
  const asRoot = process.getuid?.() === 0;
  const asServer = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(binDir, program), ...args]] : [join(binDir, program), args];
  const version = (await run(join(binDir, 'postgres'), ['--version'])).match(/(\d+(?:\.\d+)*)/)?.[1] ?? '?';
  const [psqlBin, pgRestoreBin] = await Promise.all([client('psql'), client('pg_restore')]);

  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const password = randomBytes(12).toString('hex');
  const [stopCmd, stopArgs] = asServer('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '20']);
  const cleanup = join(dir, 'cleanup.sh');
  await writeFile(
    cleanup,
    [
      '#!/bin/sh',
      `${[stopCmd, ...stopArgs].map(shellQuote).join(' ')} >/dev/null 2>&1 || true`,
      // pg_ctl failed: kill the postmaster by its pid file (its backends follow it).
      `pid=$(head -n 1 ${shellQuote(join(dataDir, 'postmaster.pid'))} 2>/dev/null || true)`,
      `[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true`,
      `rm -rf ${shellQuote(dir)}`,
      '',
    ].join('\n'),
  );
  await chmod(cleanup, 0o755);
  await writeFile(join(dir, 'pwfile'), `${password}\n`);
  const watchdog = startWatchdog(cleanup);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    stopWatchdog(watchdog);
    await run('sh', [cleanup]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    stopWatchdog(watchdog);
    spawnSync('sh', [cleanup], { stdio: 'ignore', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
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
    await run(initCmd, initArgs, { timeout: 60_000 });
    await rm(join(dir, 'pwfile'), { force: true });
    const serverOptions = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=20',
      '-c shared_buffers=32MB',
    ].join(' ');
    const [startCmd, startArgs] = asServer('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', serverOptions]);
    await run(startCmd, startArgs, { timeout: 45_000 });

    const local = ['-h', dir, '-p', String(port), '-U', 'postgres'];
    const psql = (sql: string, db = 'shop'): Promise<string> =>
      runWithInput(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...local, '-d', db, '-f', '-'], sql);
    return {
      version,
      port,
      sourceUrl: `postgres://postgres:${password}@127.0.0.1:${port}/shop`,
      agentEnv: { ...process.env, PATH: [binDir, process.env.PATH].filter(Boolean).join(delimiter) },
      load: async () => {
        await psql('CREATE DATABASE shop', 'postgres');
        await psql(LOAD_SQL);
      },
      change: async () => {
        await psql(CHANGE_SQL);
      },
      checksum: async (db = 'shop') => {
        const lines = (await psql(CHECKSUM_SQL, db)).split('\n').filter((l) => l !== '');
        let rows = 0;
        for (const line of lines) rows += Number(line.split('|')[1]);
        return { tables: lines.length, rows, md5: createHash('md5').update(lines.join('\n')).digest('hex') };
      },
      restore: async (db, dump) => {
        await psql(`CREATE DATABASE "${db.replace(/"/g, '""')}"`, 'postgres');
        const child = spawn(pgRestoreBin, [...local, '-d', db, '--exit-on-error', '--no-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
        const stderr: Buffer[] = [];
        child.stderr.on('data', (c: Buffer) => stderr.push(c));
        const exited = new Promise<void>((resolve, reject) => {
          child.on('error', reject);
          child.on('close', (code, signal) =>
            code === 0
              ? resolve()
              : reject(
                  new Error(
                    `pg_restore ${code !== null ? `exited with status ${code}` : `was killed by ${signal}`}: ${Buffer.concat(stderr).toString('utf8').trim()}`,
                  ),
                ),
          );
        });
        exited.catch(() => {});
        // A pg_restore that fails early closes its stdin: report its error, not EPIPE.
        await pipeline(dump, child.stdin).catch(async (err: unknown) => {
          await exited;
          throw err;
        });
        await exited;
      },
      stop,
      stopSync,
    };
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await stop();
    const lastLog = log.trim().split('\n').slice(-3).join(' / ');
    throw new Error(`${firstLine((err as Error).message)}${lastLog ? ` (server log: ${lastLog})` : ''}`, { cause: err });
  }
}

// A small shop: 20,000 customers, 2,000 products, 100,000 orders (a custom-format dump of ~9 MB).
// Deterministic, so every run dumps the same bytes on day 0.
const LOAD_SQL = `
CREATE TABLE customers (
  id integer PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  city text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE products (
  id integer PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  title text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents > 0),
  description text NOT NULL
);
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers,
  product_id integer NOT NULL REFERENCES products,
  quantity integer NOT NULL,
  status text NOT NULL,
  ordered_at timestamptz NOT NULL,
  note text
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW revenue_by_city AS
  SELECT c.city, sum(o.quantity * p.price_cents) AS cents
  FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id
  GROUP BY c.city;
INSERT INTO customers
  SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
         (ARRAY['Berlin', 'Lyon', 'Porto', 'Oslo', 'Riga', 'Turin', 'Ghent'])[1 + i % 7],
         timestamptz '2024-01-01 00:00:00+00' + i * interval '17 minutes'
  FROM generate_series(1, 20000) AS i;
INSERT INTO products
  SELECT i, 'SKU-' || lpad(i::text, 6, '0'), 'Product ' || i, 100 + (i * 7919) % 90000,
         repeat(md5('product ' || i), 4)
  FROM generate_series(1, 2000) AS i;
INSERT INTO orders
  SELECT i, 1 + (i * 7907) % 20000, 1 + (i * 104729) % 2000, 1 + i % 5,
         (ARRAY['paid', 'paid', 'shipped', 'delivered'])[1 + i % 4],
         timestamptz '2025-01-01 00:00:00+00' + i * interval '3 minutes',
         CASE WHEN i % 3 = 0 THEN 'gift wrap; ' || md5('order ' || i) END
  FROM generate_series(1::bigint, 100000) AS i;
ANALYZE;
`;

// Like a real day, most changes are recent: the latest orders ship, a few are cancelled,
// new ones arrive; a handful of older rows change too (a customer moves, prices go up).
const CHANGE_SQL = `
UPDATE orders SET status = 'shipped' WHERE id > 97000 AND status = 'paid';
DELETE FROM orders WHERE id > 99000 AND id % 100 = 7;
INSERT INTO orders
  SELECT i, 1 + (i * 7907) % 20000, 1 + (i * 104729) % 2000, 1 + i % 5, 'paid',
         timestamptz '2025-01-01 00:00:00+00' + i * interval '3 minutes',
         CASE WHEN i % 3 = 0 THEN 'gift wrap; ' || md5('order ' || i) END
  FROM generate_series(100001::bigint, 102000) AS i;
UPDATE customers SET city = 'Lisbon' WHERE id IN (42, 4242, 14242);
UPDATE products SET price_cents = price_cents + 100 WHERE id IN (7, 777, 1777);
`;

const CHECKSUM_SQL = TABLES.map((t) => `SELECT '${t}', count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x.id), '')) FROM ${t} x;`).join('\n');

// ---- helpers -------------------------------------------------------------------------------

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? text
  );
}

/** Runs a program; rejects with its stderr in the message. */
function run(command: string, args: string[], options: { timeout?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 << 20, timeout: options.timeout ?? 30_000 }, (err, stdout, stderr) => {
      // runuser -u postgres -- /usr/lib/postgresql/16/bin/initdb ...: name the program, not runuser.
      const program = basename(command === 'runuser' ? (args[3] ?? command) : command);
      if (err) reject(new Error(`${program} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(String(stdout));
    });
  });
}

/** Runs a program with `input` on stdin; resolves to stdout, rejects with stderr. */
function runWithInput(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8').replace(/\n$/, ''));
      else
        reject(
          new Error(
            `${basename(command)} ${code !== null ? `exited with status ${code}` : `was killed by ${signal}`}: ${Buffer.concat(err).toString('utf8').trim()}`,
          ),
        );
    });
    child.stdin.end(input);
  });
}

/** A loopback TCP port that is free now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no free loopback port');
  return address.port;
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A watchdog in its own session: once this process is gone (however it ended), it runs `script`. */
function startWatchdog(script: string): number | undefined {
  const child = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; exec sh ${shellQuote(script)}`], {
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', () => {});
  child.unref();
  return child.pid;
}

function stopWatchdog(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
