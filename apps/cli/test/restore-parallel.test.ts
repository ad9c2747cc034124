/**
 * `hoard restore ... --to postgres://... --jobs N [--temp-dir DIR]` against a real
 * PostgreSQL (test-support/postgres.ts) and the built `hoard`:
 * - a custom-format dump of several tables restored with --jobs 2, embedded and through
 *   a media server: the same rows (count and md5 per table); pg_restore ran with
 *   --jobs=2 on a file in DIR (a wrapper first on PATH logs its arguments), and DIR is
 *   empty afterwards;
 * - pg_restore failing (no such database): exit 1 with its message, DIR empty;
 * - SIGINT while pg_restore runs: pg_restore stopped, DIR empty, exit 1;
 * - bad --jobs values and combinations: exit 2 with the message, nothing written;
 * - a plain SQL dump with --jobs: exit 2, nothing written;
 * - the free-space check (a fake statfs).
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { checkTempSpace } from '../dist/commands/restore-database.js';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

let pg: RunningPostgres;
let dir: string;
let repo: string;
/** --temp-dir of every restore here: must be empty after each. */
let temp: string;
/** A directory with a pg_restore wrapper, put first on PATH. */
let shim: string;
let dumpBytes: number;

const TABLES = ['customers', 'products', 'orders', 'order_items'];

function capture(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer', maxBuffer: 256 << 20, env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${stderr.toString()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** Per table: row count and an md5 over all rows in key order. */
async function checksums(db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) out[t] = await pg.psql(`SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '-') FROM ${t} x`, db);
  return out;
}

/** The wrapper's environment: log its arguments to `log`; with `sleep`, wait instead of restoring. */
function shimEnv(log: string, mode: 'run' | 'sleep' = 'run'): Record<string, string> {
  return { PATH: `${shim}:${process.env.PATH ?? ''}`, HOARD_TEST_PG_RESTORE_LOG: log, HOARD_TEST_PG_RESTORE_MODE: mode };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-test-restore-parallel-'));
  repo = join(dir, 'repo');
  temp = join(dir, 'temp');
  shim = join(dir, 'shim');
  await Promise.all([mkdir(temp), mkdir(shim)]);
  pg = await startPostgres();
  await writeFile(
    join(shim, 'pg_restore'),
    [
      '#!/bin/sh',
      // The last argument is the dump file: log the arguments and the file's size.
      'for last; do :; done',
      '{ printf "%s\\n" "$@"; echo "pid $$"; echo "size $(stat -c %s "$last")"; } > "$HOARD_TEST_PG_RESTORE_LOG"',
      'if [ "$HOARD_TEST_PG_RESTORE_MODE" = sleep ]; then exec sleep 60; fi',
      `exec ${pg.bin('pg_restore')} "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(join(shim, 'pg_restore'), 0o755);
  await pg.createDatabase('shop');
  await pg.psql(
    `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, photo bytea);
     CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE NOT NULL, price numeric(10,2), attrs jsonb);
     CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), placed timestamptz, note text);
     CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id), product_id int NOT NULL REFERENCES products(id), qty int);
     CREATE INDEX ON orders (customer_id);
     CREATE INDEX ON order_items (order_id);
     INSERT INTO customers (name, email, photo)
       SELECT 'customer ' || i || CASE WHEN i % 7 = 0 THEN ' Zoë 東京' ELSE '' END, 'c' || i || '@example.com',
              CASE WHEN i % 5 = 0 THEN decode(md5(i::text), 'hex') END
       FROM generate_series(1, 5000) AS i;
     INSERT INTO products (sku, price, attrs) SELECT 'SKU-' || i, (i * 37 % 10000) / 100.0, jsonb_build_object('colour', i % 12) FROM generate_series(1, 1000) AS i;
     INSERT INTO orders (customer_id, placed, note)
       SELECT 1 + (i * 7919 % 5000), timestamptz '2026-01-01 00:00+00' + i * interval '17 minutes',
              CASE WHEN i % 13 = 0 THEN E'line one\\nline two\\t''quoted''' END
       FROM generate_series(1, 20000) AS i;
     INSERT INTO order_items (order_id, product_id, qty) SELECT 1 + i % 20000, 1 + (i * 31 % 1000), 1 + i % 9 FROM generate_series(1, 60000) AS i;`,
    'shop',
  );
  const env = { ...process.env, PGPASSWORD: pg.password };
  const hostArgs = ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'shop'];
  // Both to a pipe, as the agent's postgres:// source writes them.
  const [custom, plain] = await Promise.all([
    capture(pg.bin('pg_dump'), [...hostArgs, '--format=custom'], env),
    capture(pg.bin('pg_dump'), [...hostArgs, '--format=plain'], env),
  ]);
  expect(custom.subarray(0, 5).toString()).toBe('PGDMP');
  dumpBytes = custom.length;
  expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
  for (const [job, data] of [
    ['pg-custom', custom],
    ['pg-plain', plain],
  ] as const) {
    const r = await hoardCli(['backup', '--repo', repo, '--job', job, '-'], { stdin: data });
    expect(r.code).toBe(0);
  }
}, 240_000);

afterAll(async () => {
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('restore --to postgres://... --jobs N', () => {
  it('a custom-format dump restored with --jobs 2 from --repo: same rows per table, pg_restore --jobs=2 on a file in --temp-dir, removed after', async () => {
    await pg.createDatabase('copy_jobs');
    const log = join(dir, 'jobs.log');
    const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('copy_jobs'), '--jobs', '2', '--temp-dir', temp], {
      env: shimEnv(log),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^restored snapshot [0-9a-f]+ of job pg-custom \\(started .+\\) into postgres://127\\.0\\.0\\.1:${pg.port}/copy_jobs with pg_restore\\n`),
    );
    expect(r.stdout).not.toContain(pg.password);
    const args = (await readFile(log, 'utf8')).split('\n');
    expect(args).toContain('--jobs=2');
    expect(args).toContain('--no-owner');
    expect(args.some((a) => a.startsWith('--dbname='))).toBe(true);
    const file = args[args.indexOf(args.find((a) => a.startsWith('pid '))!) - 1]!;
    expect(file.startsWith(`${temp}/hoard-pg-restore-`)).toBe(true);
    expect(args).toContain(`size ${dumpBytes}`);
    expect(await readdir(temp)).toEqual([]);
    const copy = await checksums('copy_jobs');
    expect(copy).toEqual(await checksums('shop'));
    expect(copy['order_items']).toMatch(/^60000 [0-9a-f]{32}$/);
  });

  it('the default (no --jobs) still streams into pg_restore: no file argument', async () => {
    await pg.createDatabase('copy_stream');
    const log = join(dir, 'stream.log');
    const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('copy_stream')], { env: shimEnv(log) });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const args = (await readFile(log, 'utf8')).split('\n');
    expect(args.some((a) => a.startsWith('--jobs'))).toBe(false);
    expect(args).toContain('--exit-on-error');
    expect(await checksums('copy_stream')).toEqual(await checksums('shop'));
  });

  it('pg_restore failing (the database does not exist): exit 1 with its message, the temporary dump removed', async () => {
    const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('no_such_db'), '--jobs', '2', '--temp-dir', temp]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hoard: pg_restore exited with status 1 restoring into postgres:\/\/127\.0\.0\.1:\d+\/no_such_db; its last output on stderr:\n/);
    expect(r.stderr).toContain('database "no_such_db" does not exist');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stderr).not.toContain(pg.password);
    expect(await readdir(temp)).toEqual([]);
  });

  it('SIGINT while pg_restore runs: pg_restore stopped, the temporary dump removed, exit 1', async () => {
    await pg.createDatabase('copy_interrupted');
    const log = join(dir, 'sigint.log');
    const hoard = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [hoard, 'restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('copy_interrupted'), '--jobs', '3', '--temp-dir', temp],
      {
        env: { ...process.env, ...shimEnv(log, 'sleep') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let text = '';
    for (let i = 0; i < 300 && !/^size /m.test(text); i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = await readFile(log, 'utf8').catch(() => '');
    }
    expect(text).toContain('--jobs=3');
    expect((await readdir(temp)).length).toBe(1);
    const pid = Number(/^pid (\d+)$/m.exec(text)![1]);
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toContain('hoard: interrupted (SIGINT): pg_restore was stopped');
    expect(stderr).not.toMatch(STACK_TRACE);
    expect(await readdir(temp)).toEqual([]);
    // The stand-in pg_restore (sleep 60) got SIGTERM.
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });

  it('bad --jobs values and combinations: exit 2 naming what is wrong and what is right, nothing written', async () => {
    await pg.createDatabase('copy_untouched');
    const url = pg.urlFor('copy_untouched');
    for (const value of ['0', '65', 'abc', '1.5', '-1', '', '4x']) {
      const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', url, `--jobs=${value}`, '--temp-dir', temp]);
      expect(r.code, value).toBe(2);
      expect(r.stderr).toBe(`hoard: --jobs ${value}: give the number of parallel pg_restore jobs, a whole number from 1 to 64 (e.g. --jobs 4)\n`);
    }
    const cases: [string[], string][] = [
      [
        ['--to', 'mysql://root@127.0.0.1:3306/crm', '--jobs', '2'],
        'hoard: --jobs needs a PostgreSQL custom-format dump (pg_dump -Fc) restored --to postgres://...',
      ],
      [['--to', join(dir, 'out.dump'), '--jobs', '2'], 'hoard: --jobs runs pg_restore in parallel, so it needs --to postgres://user@host:port/db, not --to '],
      [['--verify-only', '--jobs', '2'], 'hoard: --jobs is for restoring into PostgreSQL'],
      [['--to', url, '--jobs', '2', '--temp-dir', join(dir, 'missing')], `hoard: --temp-dir ${join(dir, 'missing')}: no such directory`],
      [['--to', url, '--jobs', '2', '--temp-dir', join(shim, 'pg_restore')], 'is not a directory'],
      [['--to', url, '--temp-dir', temp], 'hoard: --temp-dir is where --jobs keeps the dump'],
    ];
    for (const [args, message] of cases) {
      const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
    await expect(stat(join(dir, 'out.dump'))).rejects.toThrow();
    expect(await readdir(temp)).toEqual([]);
    expect(await pg.psql(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`, 'copy_untouched')).toBe('0');
  });

  it('a plain SQL dump with --jobs: exit 2, it needs pg_dump -Fc; nothing written', async () => {
    const r = await hoardCli(['restore', '--repo', repo, 'pg-plain', '--to', pg.urlFor('copy_untouched'), '--jobs', '2', '--temp-dir', temp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'hoard: --jobs needs a PostgreSQL custom-format dump (pg_dump -Fc), and this snapshot is a plain SQL dump, which psql reads as one stream: drop --jobs to restore it; nothing was written to the database\n',
    );
    expect(await readdir(temp)).toEqual([]);
    expect(await pg.psql(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`, 'copy_untouched')).toBe('0');
  });

  it('free space: the check names the directory, the bytes needed and the bytes free', async () => {
    const fake = async () => ({ bavail: 10, bsize: 4096 });
    await expect(checkTempSpace('/var/tmp', 40960, fake)).resolves.toBeUndefined();
    await expect(checkTempSpace('/var/tmp', 40961, fake)).rejects.toThrow(
      '--temp-dir /var/tmp has 40960 bytes (40 KiB) free, but pg_restore --jobs needs the whole dump there: 40961 bytes (40.00 KiB); give --temp-dir on a file system with room, or drop --jobs to stream the dump; nothing was written to the database',
    );
    await expect(checkTempSpace('/var/tmp', 1, async () => ({ bavail: 0n, bsize: 4096n }))).rejects.toThrow(/has 0 bytes \(0 B\) free/);
    // The real statfs of a real directory.
    await expect(checkTempSpace(temp, 1)).resolves.toBeUndefined();
    await expect(checkTempSpace(temp, Number.MAX_SAFE_INTEGER)).rejects.toThrow(`--temp-dir ${temp} has `);
  });
});

describe('through a media server', () => {
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('--jobs 2 with --server: same rows per table, the temporary dump removed; a failing pg_restore too', async () => {
    server = await startServerProcess({ storage: `fs:${repo}` });
    await pg.createDatabase('copy_server_jobs');
    const log = join(dir, 'server.log');
    const r = await server.cli(['restore', 'pg-custom', '--to', pg.urlFor('copy_server_jobs'), '--jobs', '2', '--temp-dir', temp], shimEnv(log));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`into postgres://127.0.0.1:${pg.port}/copy_server_jobs with pg_restore`);
    expect((await readFile(log, 'utf8')).split('\n')).toContain('--jobs=2');
    expect(await readdir(temp)).toEqual([]);
    expect(await checksums('copy_server_jobs')).toEqual(await checksums('shop'));

    const fail = await server.cli(['restore', 'pg-custom', '--to', pg.urlFor('no_such_db'), '--jobs', '2', '--temp-dir', temp]);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain('database "no_such_db" does not exist');
    expect(await readdir(temp)).toEqual([]);

    const plain = await server.cli(['restore', 'pg-plain', '--to', pg.urlFor('copy_server_jobs'), '--jobs', '2', '--temp-dir', temp]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('--jobs needs a PostgreSQL custom-format dump (pg_dump -Fc)');
    expect(await readdir(temp)).toEqual([]);
  }, 120_000);
});
