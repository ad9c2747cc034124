/**
 * The restore operator's side, against real servers (test-support/postgres.ts,
 * mariadb.ts) and the built `hoard`:
 * - `restore --to postgres://...` of a custom-format and of a plain pg_dump (pg_restore
 *   and psql picked by the first bytes), `--to mysql://...` of a mysqldump: each into a
 *   fresh database, compared row by row with the original;
 * - the tool's failure (a database that does not exist) is exit 1 with the tool's own
 *   message and no stack trace;
 * - `--verify-only` on a good snapshot (exit 0, nothing written) and on a repository
 *   with one corrupted pack byte (exit 3, naming the pack);
 * - `snapshots --repo` with --source/--since/--until;
 * - the same restore and --verify-only through a media server process.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type RunningMariadb } from '../../../test-support/mariadb.js';
import { startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

let pg: RunningPostgres;
let maria: RunningMariadb;
let dir: string;
let repo: string;

/** A program's stdout as bytes (a custom-format dump is binary). */
function capture(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer', maxBuffer: 256 << 20, env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${stderr.toString()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

async function listFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

/** Every row of every table of the shop database, in key order, as psql prints it. */
function pgContents(db: string): Promise<string> {
  return pg.psql(
    `SELECT (SELECT count(*) FROM customers), (SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM customers c),
            (SELECT count(*) FROM orders), (SELECT md5(string_agg(o::text, '|' ORDER BY id)) FROM orders o),
            (SELECT last_value FROM orders_id_seq), (SELECT count(*) FROM big_spenders)`,
    db,
  );
}

function mariaContents(db: string): Promise<string> {
  return maria.mysql('SELECT id, name, HEX(photo), balance, note FROM accounts ORDER BY id; SELECT COUNT(*), SUM(amount) FROM payments;', db);
}

async function backup(repoDir: string, job: string, data: Buffer, name?: string): Promise<{ snapshot: string; startedAt: string }> {
  const r = await hoardCli(['backup', '--repo', repoDir, '--job', job, ...(name ? ['--name', name] : []), '--json', '-'], { stdin: data });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const snapshot = (JSON.parse(r.stdout) as { snapshot: string }).snapshot;
  const list = await hoardCli(['snapshots', '--repo', repoDir, '--job', job, '--json']);
  const found = (JSON.parse(list.stdout) as { id: string; startedAt: string }[]).find((s) => s.id === snapshot)!;
  return { snapshot, startedAt: found.startedAt };
}

const snapshots: Record<string, { snapshot: string; startedAt: string }> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-test-restore-targets-'));
  repo = join(dir, 'repo');
  [pg, maria] = await Promise.all([startPostgres(), startMariadb()]);
  await pg.createDatabase('shop');
  await pg.psql(
    `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, photo bytea, balance numeric(12,2));
     CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), items jsonb, note text);
     CREATE VIEW big_spenders AS SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 3;
     INSERT INTO customers (name, email, photo, balance)
       SELECT 'customer ' || i || CASE WHEN i % 7 = 0 THEN ' Zoë Ærø 東京' ELSE '' END,
              CASE WHEN i % 11 = 0 THEN NULL ELSE 'c' || i || '@example.com' END,
              CASE WHEN i % 5 = 0 THEN decode(md5(i::text), 'hex') END, (i * 17 % 100000) / 100.0
       FROM generate_series(1, 2000) AS i;
     INSERT INTO orders (customer_id, items, note)
       SELECT 1 + (i * 7919 % 2000), jsonb_build_object('sku', 'SKU-' || i, 'qty', i % 9),
              CASE WHEN i % 13 = 0 THEN E'line one\\nline two\\t''quoted''' END
       FROM generate_series(1, 6000) AS i;`,
    'shop',
  );
  await maria.createDatabase('crm');
  await maria.mysql(
    `CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4, photo BLOB, balance DECIMAL(12,2), note TEXT);
     CREATE TABLE payments (id INT AUTO_INCREMENT PRIMARY KEY, account_id INT, amount DECIMAL(10,2), FOREIGN KEY (account_id) REFERENCES accounts(id)) ENGINE=InnoDB;
     INSERT INTO accounts SELECT seq, CONCAT('account ', seq, IF(seq % 7 = 0, ' Zoë 東京', '')), IF(seq % 5 = 0, UNHEX(MD5(seq)), NULL), seq * 3.25, IF(seq % 9 = 0, 'tab\\there ''q''', NULL) FROM seq_1_to_1500;
     INSERT INTO payments (account_id, amount) SELECT 1 + seq % 1500, seq / 100 FROM seq_1_to_4000;`,
    'crm',
  );
  const pgEnv = { ...process.env, PGPASSWORD: pg.password };
  const hostArgs = ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'shop'];
  const [custom, plain, mysqlDump] = await Promise.all([
    capture(pg.bin('pg_dump'), [...hostArgs, '--format=custom', '--compress=0'], pgEnv),
    capture(pg.bin('pg_dump'), [...hostArgs, '--format=plain'], pgEnv),
    capture('mariadb-dump', ['--no-defaults', `--socket=${maria.socket}`, '-uroot', '--single-transaction', '--routines', '--triggers', 'crm']),
  ]);
  expect(custom.subarray(0, 5).toString()).toBe('PGDMP');
  expect(await hoardCli(['init', '--repo', repo])).toMatchObject({ code: 0 });
  snapshots['pg-custom'] = await backup(repo, 'pg-custom', custom);
  snapshots['pg-plain'] = await backup(repo, 'pg-plain', plain);
  snapshots['crm'] = await backup(repo, 'crm', mysqlDump);
}, 240_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), maria?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('restore --to a database', () => {
  it('a custom-format pg_dump goes through pg_restore into a fresh database, row for row', async () => {
    await pg.createDatabase('copy_custom');
    const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('copy_custom')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = snapshots['pg-custom']!;
    expect(r.stdout).toContain(
      `restored snapshot ${s.snapshot} of job pg-custom (started ${s.startedAt}) into postgres://127.0.0.1:${pg.port}/copy_custom with pg_restore`,
    );
    expect(r.stdout).not.toContain(pg.password);
    expect(await pgContents('copy_custom')).toBe(await pgContents('shop'));
  });

  it('a plain pg_dump goes through psql (postgresql://), quietly: --json stdout is only the summary', async () => {
    await pg.createDatabase('copy_plain');
    const url = pg.urlFor('copy_plain').replace(/^postgres:/, 'postgresql:');
    const r = await hoardCli(['restore', '--repo', repo, 'pg-plain', '--to', url, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { snapshot: string; tool: string; bytes: number; to: string };
    expect(summary).toMatchObject({ snapshot: snapshots['pg-plain']!.snapshot, tool: 'psql', to: `postgres://127.0.0.1:${pg.port}/copy_plain` });
    expect(await pgContents('copy_plain')).toBe(await pgContents('shop'));
  });

  it('a mysqldump goes through mysql (password in MYSQL_PWD) into a fresh database, row for row', async () => {
    await maria.createDatabase('crm_copy');
    const r = await hoardCli(['restore', '--repo', repo, 'crm', '--to', maria.urlFor('crm_copy')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `restored snapshot ${snapshots['crm']!.snapshot} of job crm \\(started .+\\) into mysql://127\\.0\\.0\\.1:${maria.port}/crm_copy with (mysql|mariadb)`,
      ),
    );
    const copy = await mariaContents('crm_copy');
    expect(copy).toBe(await mariaContents('crm'));
    expect(copy.split('\n').length).toBeGreaterThan(1500);
  });

  it('the tool failing (no such database) is exit 1 naming the tool, its status and its stderr, no stack trace', async () => {
    const pgFail = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('no_such_db')]);
    expect(pgFail.code).toBe(1);
    expect(pgFail.stderr).toMatch(
      /^hoard: pg_restore exited with status 1 restoring into postgres:\/\/127\.0\.0\.1:\d+\/no_such_db; its last output on stderr:\n/,
    );
    expect(pgFail.stderr).toContain('database "no_such_db" does not exist');
    expect(pgFail.stderr).not.toMatch(STACK_TRACE);
    expect(pgFail.stderr).not.toContain(pg.password);

    const psqlFail = await hoardCli(['restore', '--repo', repo, 'pg-plain', '--to', pg.urlFor('no_such_db')]);
    expect(psqlFail.code).toBe(1);
    expect(psqlFail.stderr).toMatch(/^hoard: psql exited with status 2 restoring into/);
    expect(psqlFail.stderr).toContain('does not exist');
    expect(psqlFail.stderr).not.toMatch(STACK_TRACE);

    const myFail = await hoardCli(['restore', '--repo', repo, 'crm', '--to', maria.urlFor('no_such_db').replace(/^mysql:/, 'mariadb:')]);
    expect(myFail.code).toBe(1);
    expect(myFail.stderr).toMatch(/^hoard: (mysql|mariadb) exited with status 1 restoring into mysql:\/\/127\.0\.0\.1:\d+\/no_such_db/);
    expect(myFail.stderr).toContain("Unknown database 'no_such_db'");
    expect(myFail.stderr).not.toMatch(STACK_TRACE);
  });

  it('a database URL without a database, or with --offset, is a usage error (exit 2)', async () => {
    const noDb = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', `postgres://postgres@127.0.0.1:${pg.port}/`]);
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain('names no database');
    expect(noDb.stderr).not.toMatch(STACK_TRACE);
    const ranged = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--to', pg.urlFor('x'), '--offset', '10']);
    expect(ranged.code).toBe(2);
    expect(ranged.stderr).not.toMatch(STACK_TRACE);
  });

  it('--to - still says which snapshot it restored (on stderr), the stream on stdout', async () => {
    const r = await hoardCli(['restore', '--repo', repo, 'pg-plain', '--to', '-']);
    expect(r.code).toBe(0);
    const s = snapshots['pg-plain']!;
    expect(r.stderr).toContain(`restored snapshot ${s.snapshot} of job pg-plain (started ${s.startedAt})`);
    expect(r.stdout).toContain('CREATE TABLE public.customers');
  });
});

describe('restore --verify-only', () => {
  it('checks a good snapshot and writes nothing (exit 0), also as --json', async () => {
    const before = await listFiles(dir);
    const r = await hoardCli(['restore', '--repo', repo, 'pg-custom', '--verify-only']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = snapshots['pg-custom']!;
    expect(r.stdout).toMatch(
      new RegExp(
        `^verified snapshot ${s.snapshot} of job pg-custom \\(started ${s.startedAt.replace(/[.]/g, '\\.')}\\): \\d+ bytes \\(.+\\), every chunk and the stream hash checked; nothing was written\\n$`,
      ),
    );
    const j = await hoardCli(['restore', '--repo', repo, 'crm', '--verify-only', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ snapshot: snapshots['crm']!.snapshot, job: 'crm', verified: true, streamHashChecked: true });
    expect(await listFiles(dir)).toEqual(before);
  });

  it('finds one corrupted pack byte: exit 3, naming the pack', async () => {
    const damaged = join(dir, 'damaged');
    await cp(repo, damaged, { recursive: true });
    const packs = (await readdir(join(damaged, 'packs'), { recursive: true })).map(String).filter((p) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(p));
    let hit: string | undefined;
    for (const pack of packs) {
      // Corrupt a byte inside the first blob of each pack in turn until crm's restore notices.
      const fh = await open(join(damaged, 'packs', pack), 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 100);
      await fh.write(Buffer.from([b[0]! ^ 0xff]), 0, 1, 100);
      await fh.close();
      const r = await hoardCli(['restore', '--repo', damaged, 'crm', '--verify-only']);
      if (r.code !== 0) {
        expect(r.code).toBe(3);
        expect(r.stderr).toContain(`packs/${pack}`);
        expect(r.stderr).not.toMatch(STACK_TRACE);
        expect(r.stdout).toBe('');
        hit = pack;
        break;
      }
    }
    expect(hit).toBeDefined();
  });
});

describe('snapshots --repo filters', () => {
  it('--source, --since (inclusive) and --until (exclusive) as with --server', async () => {
    const r2 = join(dir, 'filters');
    expect((await hoardCli(['init', '--repo', r2])).code).toBe(0);
    const a = await backup(r2, 'db', Buffer.from('one\n'), 'alpha');
    const b = await backup(r2, 'db', Buffer.from('two\n'), 'beta');
    const c = await backup(r2, 'db', Buffer.from('three\n'), 'alpha');
    const ids = async (...args: string[]): Promise<string[]> => {
      const r = await hoardCli(['snapshots', '--repo', r2, '--json', ...args]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id);
    };
    expect(await ids()).toEqual([c.snapshot, b.snapshot, a.snapshot]);
    expect(await ids('--source', 'alpha')).toEqual([c.snapshot, a.snapshot]);
    expect(await ids('--job', 'db', '--since', b.startedAt)).toEqual([c.snapshot, b.snapshot]);
    expect(await ids('--until', b.startedAt)).toEqual([a.snapshot]);
    expect(await ids('--since', b.startedAt, '--until', c.startedAt)).toEqual([b.snapshot]);
    expect(await ids('--source', 'beta', '--until', b.startedAt)).toEqual([]);
    const none = await hoardCli(['snapshots', '--repo', r2, '--source', 'gamma']);
    expect(none).toMatchObject({ code: 0, stdout: 'no snapshots match\n' });
    const bad = await hoardCli(['snapshots', '--repo', r2, '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(STACK_TRACE);
  });
});

describe('through a media server', () => {
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('restores into PostgreSQL and verifies, over HTTP', async () => {
    server = await startServerProcess({ storage: `fs:${repo}` });
    await pg.createDatabase('copy_server');
    const r = await server.cli(['restore', 'pg-plain', '--to', pg.urlFor('copy_server')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `restored snapshot ${snapshots['pg-plain']!.snapshot} of job pg-plain (started ${snapshots['pg-plain']!.startedAt}) into postgres://127.0.0.1:${pg.port}/copy_server with psql`,
    );
    expect(await pgContents('copy_server')).toBe(await pgContents('shop'));

    const v = await server.cli(['restore', 'pg-custom', '--verify-only', '--json']);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ snapshot: snapshots['pg-custom']!.snapshot, verified: true });

    const fail = await server.cli(['restore', 'crm', '--to', maria.urlFor('no_such_db')]);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain("Unknown database 'no_such_db'");
    expect(fail.stderr).not.toMatch(STACK_TRACE);
  }, 120_000);
});
