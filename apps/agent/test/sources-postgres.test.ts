/**
 * postgres:// sources against a real PostgreSQL (test-support/postgres.ts): dump, restore
 * into a fresh database, same table contents; failures carry pg_dump's reason; the
 * password never reaches a command line.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSourceSpec, type PostgresSourceSpec } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgDumpInvocation, resolveSource, SourceClosedError, SourceFailedError, type OpenedSource, type SourceTarget } from '../dist/sources/index.js';
import { runWithInput, startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';

let pg: RunningPostgres;
let dir: string;

beforeAll(async () => {
  const started = Date.now();
  pg = await startPostgres();
  process.stderr.write(`test PostgreSQL on port ${pg.port}, started in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  dir = await mkdtemp(join(tmpdir(), 'hoard-test-pgdump-'));
  await pg.createDatabase('shop');
  await pg.psql(
    `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, photo bytea, balance numeric(12,2), created timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z');
     CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), items jsonb, note text);
     CREATE INDEX orders_customer ON orders (customer_id);
     CREATE VIEW big_spenders AS SELECT c.name, count(o.id) AS orders FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name HAVING count(o.id) > 3;
     CREATE FUNCTION order_count(cid int) RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM orders WHERE customer_id = cid $$;
     INSERT INTO customers (name, email, photo, balance)
       SELECT 'customer ' || i || CASE WHEN i % 7 = 0 THEN ' Zoë Ærø 東京' ELSE '' END,
              CASE WHEN i % 11 = 0 THEN NULL ELSE 'c' || i || '@example.com' END,
              CASE WHEN i % 5 = 0 THEN decode(md5(i::text) || md5((i * 3)::text), 'hex') END,
              (i * 17 % 100000) / 100.0
       FROM generate_series(1, 3000) AS i;
     INSERT INTO orders (customer_id, items, note)
       SELECT 1 + (i * 7919 % 3000), jsonb_build_object('sku', 'SKU-' || i, 'qty', i % 9, 'tags', jsonb_build_array('a', i % 3)),
              CASE WHEN i % 13 = 0 THEN E'line one\\nline two\\ttab ''quoted''' END
       FROM generate_series(1, 8000) AS i;
     INSERT INTO customers (name) VALUES ('hoard-marker-row-e3b0c442');`,
    'shop',
  );
});

afterAll(async () => {
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A digest of every table's contents, in key order, as psql prints it. */
async function contents(db: string): Promise<string> {
  return pg.psql(
    `SELECT (SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM customers c),
            (SELECT md5(string_agg(o::text, '|' ORDER BY id)) FROM orders o),
            (SELECT count(*) FROM big_spenders),
            (SELECT order_count(1)),
            (SELECT last_value FROM orders_id_seq)`,
    db,
  );
}

async function target(spec: string): Promise<SourceTarget> {
  const targets = await resolveSource(parseSourceSpec(spec));
  expect(targets).toHaveLength(1);
  return targets[0];
}

async function dumpTo(t: SourceTarget, file: string): Promise<Buffer> {
  const opened = await t.open();
  const parts: Uint8Array[] = [];
  for await (const part of opened.stream!) parts.push(part);
  await opened.done;
  await opened.close();
  const bytes = Buffer.concat(parts);
  await writeFile(file, bytes);
  return bytes;
}

describe('postgres:// sources', () => {
  it('custom format (default): the stream restores with pg_restore into a fresh database with the same contents', async () => {
    const t = await target(pg.urlFor('shop'));
    expect(t).toMatchObject({ name: `postgres://127.0.0.1:${pg.port}/shop`, kind: 'stream', chunking: 'db-dump' });
    const file = join(dir, 'shop.dump');
    const bytes = await dumpTo(t, file);
    expect(bytes.subarray(0, 5).toString()).toBe('PGDMP');
    // Written uncompressed (-Z0), so that unchanged rows dedup between dumps.
    expect(bytes.includes(Buffer.from('hoard-marker-row-e3b0c442'))).toBe(true);

    await pg.createDatabase('shop_restored');
    await runWithInput(pg.bin('pg_restore'), ['--exit-on-error', '-h', pg.socketDir, '-p', String(pg.port), '-U', 'postgres', '-d', 'shop_restored', file], '');
    const original = await contents('shop');
    expect(original.split('|')).toHaveLength(5);
    expect(await contents('shop_restored')).toBe(original);
  });

  it('plain format: SQL that psql restores to the same contents', async () => {
    const t = await target(`${pg.urlFor('shop')}?format=plain`);
    expect(t.name).toBe(`postgres://127.0.0.1:${pg.port}/shop`);
    const file = join(dir, 'shop.sql');
    const bytes = await dumpTo(t, file);
    expect(bytes.toString('utf8', 0, 200)).toMatch(/PostgreSQL database dump/);
    await pg.createDatabase('shop_plain');
    await pg.psql(await readFile(file), 'shop_plain');
    expect(await contents('shop_plain')).toBe(await contents('shop'));
  });

  it("a database that does not exist: done rejects with a SourceFailedError carrying pg_dump's reason", async () => {
    const opened = await (await target(pg.urlFor('no_such_db'))).open();
    const parts: Uint8Array[] = [];
    for await (const part of opened.stream!) parts.push(part);
    const err = await opened.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceFailedError);
    const failed = err as SourceFailedError;
    expect(failed.program).toBe('pg_dump');
    expect(failed.exitCode).toBe(1);
    expect(failed.message).toMatch(new RegExp(`^postgres://127\\.0\\.0\\.1:${pg.port}/no_such_db: pg_dump exited with status 1`));
    expect(failed.message).toMatch(/database "no_such_db" does not exist/);
    expect(failed.message).not.toContain(pg.password);
  });

  it('a wrong password: password authentication failed, and the password is not in the message', async () => {
    const opened = await (await target(`postgres://postgres:wrong-pw-123@127.0.0.1:${pg.port}/shop`)).open();
    for await (const _ of opened.stream!) void _;
    const err = (await opened.done.catch((e: unknown) => e)) as SourceFailedError;
    expect(err).toBeInstanceOf(SourceFailedError);
    expect(err.message).toMatch(/password authentication failed for user "postgres"/);
    expect(err.message).not.toContain('wrong-pw-123');
  });

  it('passes the password in PGPASSWORD, never on the command line (checked on the running pg_dump), and close() stops a blocked dump', async () => {
    const spec = parseSourceSpec(pg.urlFor('shop')) as PostgresSourceSpec;
    const inv = pgDumpInvocation(spec, { PATH: '/usr/bin' });
    expect(inv.args.join(' ')).not.toContain(pg.password);
    expect(inv.env.PGPASSWORD).toBe(pg.password);
    expect(inv.args).toContain('--compress=0');

    // Hold a lock that makes pg_dump wait, so that it can be looked at while it runs.
    const locker = spawn(
      pg.bin('psql'),
      [
        '-X',
        '-h',
        pg.socketDir,
        '-p',
        String(pg.port),
        '-U',
        'postgres',
        '-d',
        'shop',
        '-c',
        'BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);',
      ],
      { stdio: 'ignore' },
    );
    let opened: OpenedSource | undefined;
    try {
      for (let i = 0; i < 100; i++) {
        if ((await pg.psql(`SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'orders'::regclass`, 'shop')) === '1') break;
        await sleep(50);
      }
      opened = await (await target(pg.urlFor('shop'))).open();
      let dumpPid: number | undefined;
      for (let i = 0; i < 100 && dumpPid === undefined; i++) {
        for (const entry of await readdir('/proc')) {
          if (!/^\d+$/.test(entry)) continue;
          const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
          if (argv.some((a) => a.endsWith('pg_dump')) && argv.some((a) => a.includes(`:${pg.port}/shop`))) {
            dumpPid = Number(entry);
            expect(argv.join(' ')).not.toContain(pg.password);
            const environ = (await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '')).split('\0');
            expect(environ).toContain(`PGPASSWORD=${pg.password}`);
          }
        }
        if (dumpPid === undefined) await sleep(50);
      }
      expect(dumpPid).toBeDefined();
      await sleep(200); // blocked on the lock now
      await opened.close();
      await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
      expect(await readFile(`/proc/${dumpPid}/cmdline`, 'utf8').catch(() => 'gone')).toBe('gone');
    } finally {
      await opened?.close();
      locker.kill('SIGKILL');
      await pg.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'shop' AND pid <> pg_backend_pid()`, 'postgres');
    }
  });
});
