/**
 * mysql:// sources against a real MariaDB (test-support/mariadb.ts): dump with
 * mysqldump, restore with the mysql client into a fresh database, same contents,
 * routines and triggers included; failures carry mysqldump's reason; the password never
 * reaches a command line.
 */
import { parseSourceSpec, type MysqlSourceSpec } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqldumpInvocation, resolveSource, SourceFailedError, type SourceTarget } from '../dist/sources/index.js';
import { startMariadb, type RunningMariadb } from '../../../test-support/mariadb.js';

let db: RunningMariadb;

beforeAll(async () => {
  const started = Date.now();
  db = await startMariadb();
  process.stderr.write(`test MariaDB on port ${db.port}, started in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  await db.createDatabase('shop');
  await db.mysql(
    `CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL, email VARCHAR(200) UNIQUE, photo BLOB, balance DECIMAL(12,2), created DATETIME NOT NULL DEFAULT '2026-01-01 00:00:00') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
     CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, note TEXT, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
     CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT, at DATETIME) ENGINE=InnoDB;
     CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id, at) VALUES (NEW.id, '2026-01-02 00:00:00');
     CREATE PROCEDURE order_count(IN cid INT) SELECT COUNT(*) FROM orders WHERE customer_id = cid;
     CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
     INSERT INTO customers (name, email, photo, balance)
       SELECT CONCAT('customer ', seq, IF(seq % 7 = 0, ' Zoë Ærø 東京', '')),
              IF(seq % 11 = 0, NULL, CONCAT('c', seq, '@example.com')),
              IF(seq % 5 = 0, UNHEX(CONCAT(MD5(seq), MD5(seq * 3), '00FF0A0D5C27')), NULL),
              (seq * 17 % 100000) / 100
       FROM seq_1_to_3000;
     INSERT INTO orders (customer_id, note)
       SELECT 1 + (seq * 7919 % 3000), IF(seq % 13 = 0, CONCAT('line one\\nline two\\ttab ''quoted'' ', seq), NULL)
       FROM seq_1_to_6000;`,
    'shop',
  );
});

afterAll(async () => {
  await db?.stop();
});

/** A digest of every table's contents in key order, plus the routines and triggers. */
async function contents(name: string): Promise<string> {
  return db.mysql(
    `SET SESSION group_concat_max_len = 1073741824;
     SELECT
       (SELECT MD5(GROUP_CONCAT(CONCAT_WS('/', id, name, IFNULL(email, 'NULL'), IFNULL(HEX(photo), 'NULL'), balance, created) ORDER BY id SEPARATOR '|')) FROM customers),
       (SELECT MD5(GROUP_CONCAT(CONCAT_WS('/', id, customer_id, IFNULL(note, 'NULL')) ORDER BY id SEPARATOR '|')) FROM orders),
       (SELECT COUNT(*) FROM audit),
       (SELECT GROUP_CONCAT(ROUTINE_NAME ORDER BY ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()),
       (SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()),
       double_it(21);`,
    name,
  );
}

async function target(spec: string): Promise<SourceTarget> {
  const targets = await resolveSource(parseSourceSpec(spec));
  expect(targets).toHaveLength(1);
  return targets[0];
}

describe('mysql:// sources (MariaDB)', () => {
  it('mysqldump output restores with the mysql client into a fresh database with the same contents, routines and triggers', async () => {
    const t = await target(db.urlFor('shop'));
    expect(t).toMatchObject({ name: `mysql://127.0.0.1:${db.port}/shop`, kind: 'stream', chunking: 'db-dump' });
    const opened = await t.open();
    const parts: Uint8Array[] = [];
    for await (const part of opened.stream!) parts.push(part);
    await opened.done;
    const dump = Buffer.concat(parts);
    expect(dump.toString('utf8', 0, 300)).toMatch(/(MariaDB|MySQL) dump/);
    expect(dump.includes(Buffer.from('CREATE DEFINER'))).toBe(true); // routines/triggers are in it

    await db.createDatabase('shop_restored');
    await db.mysql(dump, 'shop_restored'); // bytes as they are: the dump holds binary strings
    const original = await contents('shop');
    expect(original.split('\t')).toHaveLength(6);
    expect(original).toMatch(/\t6000\tdouble_it,order_count\torders_audit\t42$/);
    expect(await contents('shop_restored')).toBe(original);
  });

  it("a database that does not exist: done rejects with mysqldump's reason", async () => {
    const opened = await (await target(db.urlFor('no_such_db'))).open();
    for await (const _ of opened.stream!) void _;
    const err = (await opened.done.catch((e: unknown) => e)) as SourceFailedError;
    expect(err).toBeInstanceOf(SourceFailedError);
    expect(err.exitCode).not.toBe(0);
    expect(err.message).toMatch(new RegExp(`^mysql://127\\.0\\.0\\.1:${db.port}/no_such_db: mysqldump exited with status \\d+`));
    expect(err.message).toMatch(/Unknown database 'no_such_db'/);
  });

  it('a wrong password: access denied, and the password is not in the message', async () => {
    const opened = await (await target(`mysql://${db.user}:wrong-pw-456@127.0.0.1:${db.port}/shop`)).open();
    for await (const _ of opened.stream!) void _;
    const err = (await opened.done.catch((e: unknown) => e)) as SourceFailedError;
    expect(err).toBeInstanceOf(SourceFailedError);
    expect(err.message).toMatch(/Access denied for user 'hoard'/);
    expect(err.message).not.toContain('wrong-pw-456');
  });

  it('passes the password in MYSQL_PWD, never on the command line; mariadb:// works the same', async () => {
    const inv = mysqldumpInvocation(parseSourceSpec(db.urlFor('shop')) as MysqlSourceSpec, process.env);
    expect(inv.args.join(' ')).not.toContain(db.password);
    expect(inv.env.MYSQL_PWD).toBe(db.password);
    expect(inv.args).toEqual(
      expect.arrayContaining(['--single-transaction', '--routines', '--events', '--triggers', `--port=${db.port}`, '--user=hoard', '--', 'shop']),
    );
    const t = await target(db.urlFor('shop').replace(/^mysql:/, 'mariadb:'));
    expect(t.name).toBe(`mysql://127.0.0.1:${db.port}/shop`);
    const opened = await t.open();
    let bytes = 0;
    for await (const part of opened.stream!) bytes += part.length;
    await opened.done;
    expect(bytes).toBeGreaterThan(100_000);
  });
});
