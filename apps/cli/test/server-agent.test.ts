/**
 * End to end through the network: `hoard server start` and `hoard agent start` as separate
 * processes on loopback, driven by `hoard run`, `hoard snapshots --server` and
 * `hoard restore --server`, with real PostgreSQL, MariaDB and qemu-img, on fs storage and
 * on Ceph RGW (S3).
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type RunningMariadb } from '../../../test-support/mariadb.js';
import { run as runProgram, startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { makeQcow2, qemuCompare, runTool } from '../../../test-support/qemu.js';
import { s3TestServer } from '../../../test-support/s3-test-env.js';
import { STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

interface RunJson {
  state: string;
  error?: string;
  discovered: string[];
  targets: Array<{
    name: string;
    ok: boolean;
    error?: string;
    snapshot?: { id: string; startedAt: string };
    totals?: { bytesRead: number; bytesSent: number; bytesNew: number; bytesStored: number };
  }>;
}

async function runJob(server: ServerProcess, agent: string, job: string, sources: string[]): Promise<{ code: number; run: RunJson; stderr: string }> {
  const result = await server.cli(['run', '--agent', agent, '--job', job, ...sources.flatMap((s) => ['--source', s]), '--json']);
  expect(result.stderr).not.toMatch(STACK_TRACE);
  return { code: result.code, run: JSON.parse(result.stdout) as RunJson, stderr: result.stderr };
}

describe('server and agent processes on fs storage', () => {
  let server: ServerProcess;
  let work: string;

  beforeAll(async () => {
    server = await startServerProcess();
    await server.addAgent('kvm1');
    work = await mkdtemp(join(tmpdir(), 'hoard-e2e-'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  describe('PostgreSQL dumps', () => {
    let pg: RunningPostgres;
    beforeAll(async () => {
      pg = await startPostgres();
      await pg.createDatabase('shop');
      await pg.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int); INSERT INTO orders SELECT g, 'item-' || g, g % 7 FROM generate_series(1, 20000) g;",
        'shop',
      );
    });
    afterAll(async () => pg?.stop());

    const contents = (db: string): Promise<string> => pg.psql('SELECT id, item, qty FROM orders ORDER BY id', db);

    it('dumps through the agent, twice, and each snapshot restores into a fresh database as the data was then', async () => {
      const source = `${pg.urlFor('shop')}?format=custom`;
      const before = await contents('shop');
      const first = await runJob(server, 'kvm1', 'shop-db', [source]);
      expect(first.code).toBe(0);
      expect(first.run.state).toBe('succeeded');
      await pg.psql(
        "UPDATE orders SET qty = qty + 100 WHERE id % 50 = 0; DELETE FROM orders WHERE id > 19000; INSERT INTO orders VALUES (99999, 'late', 1);",
        'shop',
      );
      const after = await contents('shop');
      const second = await runJob(server, 'kvm1', 'shop-db', [source]);
      expect(second.code).toBe(0);
      const t2 = second.run.targets[0]!;
      // Most of the second dump was already on the server: far fewer bytes crossed the wire.
      expect(t2.totals!.bytesSent).toBeLessThan(t2.totals!.bytesRead * 0.6);
      for (const [run, expected, db] of [
        [first.run, before, 'restore_one'],
        [second.run, after, 'restore_two'],
      ] as const) {
        const file = join(work, `${db}.dump`);
        const restored = await server.cli(['restore', 'shop-db', '--snapshot', run.targets[0]!.snapshot!.id, '--to', file]);
        expect(restored.code, restored.stderr).toBe(0);
        await pg.createDatabase(db);
        await runProgram(pg.bin('pg_restore'), ['--no-owner', '-d', pg.urlFor(db), file]);
        expect(await contents(db)).toBe(expected);
      }
    });

    it('a dump that fails (no such database) fails the run and commits no snapshot', async () => {
      const listed = async (): Promise<number> => (JSON.parse((await server.cli(['snapshots', '--job', 'shop-db', '--json'])).stdout) as unknown[]).length;
      const count = await listed();
      const failed = await runJob(server, 'kvm1', 'shop-db', [pg.urlFor('no_such_db')]);
      expect(failed.code).toBe(1);
      expect(failed.run.state).toBe('failed');
      expect(failed.run.targets[0]!.error).toMatch(/no_such_db|does not exist/);
      expect(failed.run.targets[0]!.error).toMatch(/no snapshot was committed/);
      expect(await listed()).toBe(count);
    });
  });

  describe('MariaDB dumps', () => {
    let db: RunningMariadb;
    beforeAll(async () => {
      db = await startMariadb();
      await db.createDatabase('crm');
      await db.mysql(
        'CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64)); INSERT INTO people SELECT seq, CONCAT("person-", seq) FROM seq_1_to_5000;',
        'crm',
      );
    });
    afterAll(async () => db?.stop());

    it('mysqldump through the agent, twice; each snapshot restores into a fresh database as it was', async () => {
      const rows = (name: string): Promise<string> => db.mysql('SELECT id, name FROM people ORDER BY id', name);
      const before = await rows('crm');
      const first = await runJob(server, 'kvm1', 'crm-db', [db.urlFor('crm')]);
      expect(first.code, JSON.stringify(first.run)).toBe(0);
      await db.mysql("UPDATE people SET name = 'renamed' WHERE id % 100 = 0; INSERT INTO people VALUES (9999, 'new');", 'crm');
      const after = await rows('crm');
      const second = await runJob(server, 'kvm1', 'crm-db', [db.urlFor('crm')]);
      expect(second.code).toBe(0);
      for (const [run, expected, name] of [
        [first.run, before, 'crm_one'],
        [second.run, after, 'crm_two'],
      ] as const) {
        const restored = await server.cli(['restore', 'crm-db', '--snapshot', run.targets[0]!.snapshot!.id, '--to', '-']);
        expect(restored.code, restored.stderr).toBe(0);
        await db.createDatabase(name);
        await db.mysql(restored.stdout, name);
        expect(await rows(name)).toBe(expected);
      }
    });
  });

  describe('qcow2 VM images', () => {
    it('backs up the guest view, picks up a VM that appears later, and restores images qemu-img compare calls identical', async () => {
      const images = join(work, 'images');
      await runTool('mkdir', ['-p', images]);
      const web = join(images, 'web.qcow2');
      const MiB = 1 << 20;
      await makeQcow2(web, 64 * MiB, [
        { offset: 0, length: 4 * MiB, pattern: 0x5a },
        { offset: 20 * MiB, length: 3 * MiB, pattern: 0x17 },
      ]);
      const first = await runJob(server, 'kvm1', 'vms', [`vm:${images}/*.qcow2`]);
      expect(first.code, JSON.stringify(first.run)).toBe(0);
      const webDay0 = join(work, 'web-day0.qcow2');
      await copyFile(web, webDay0);
      // Day 1: the guest changed a little, and a new VM appeared.
      await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x99 ${10 * MiB} ${MiB}`, web]);
      await makeQcow2(join(images, 'db.qcow2'), 32 * MiB, [{ offset: MiB, length: 2 * MiB, pattern: 0x33 }]);
      const second = await runJob(server, 'kvm1', 'vms', [`vm:${images}/*.qcow2`]);
      expect(second.code, JSON.stringify(second.run)).toBe(0);
      expect(second.run.targets.map((t) => t.name).sort()).toEqual([join(images, 'db.qcow2'), web].sort());
      expect(second.run.discovered).toEqual([join(images, 'db.qcow2')]);
      const webSecond = second.run.targets.find((t) => t.name === web)!;
      // 1 MiB changed in a 64 MiB disk: a few chunks cross the wire, not the disk.
      expect(webSecond.totals!.bytesSent).toBeLessThan(4 * MiB);
      for (const [snapshot, original] of [
        [first.run.targets[0]!.snapshot!.id, webDay0],
        [webSecond.snapshot!.id, web],
      ] as const) {
        const raw = join(work, `restored-${snapshot}.raw`);
        const restored = await server.cli(['restore', 'vms', '--snapshot', snapshot, '--to', raw]);
        expect(restored.code, restored.stderr).toBe(0);
        expect(await qemuCompare(original, raw)).toBe(true);
      }
    });
  });

  it('an agent whose connection drops mid-upload resumes the same session and commits', async () => {
    // A TCP proxy that cuts the agent's first connection after 2 MiB; the agent retries the
    // interrupted batch under the same number and the server applies it once.
    let cut = false;
    const target = new URL(server.url);
    const proxy: Server = createServer((client: Socket) => {
      const upstream = connect(Number(target.port), target.hostname);
      let bytes = 0;
      client.on('data', (d: Buffer) => {
        bytes += d.length;
        if (!cut && bytes > 2 * 1024 * 1024) {
          cut = true;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => client.write(d));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    const port = (proxy.address() as { port: number }).port;
    try {
      const added = JSON.parse((await server.cli(['agent', 'add', 'flaky', '--json'])).stdout) as { token: string };
      const { spawn } = await import('node:child_process');
      const hoard = new URL('../dist/main.js', import.meta.url).pathname;
      const agent = spawn(process.execPath, [hoard, 'agent', 'start', '--server', `http://127.0.0.1:${port}`, '--token', added.token], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const file = join(work, 'random.bin');
        await runTool('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', 'count=12', 'status=none']);
        const result = await runJob(server, 'flaky', 'flaky-job', [`file:${file}`]);
        expect(cut).toBe(true);
        expect(result.code, JSON.stringify(result.run)).toBe(0);
        const restored = await server.cli(['restore', 'flaky-job', '--to', join(work, 'random.back')]);
        expect(restored.code, restored.stderr).toBe(0);
        expect((await readFile(join(work, 'random.back'))).equals(await readFile(file))).toBe(true);
      } finally {
        agent.kill('SIGTERM');
      }
    } finally {
      proxy.close();
    }
  });

  it('pre and post hooks run on the agent around the sources; a failing pre hook reads nothing', async () => {
    const log = join(work, 'hooks.log');
    const hooked = await server.cli([
      'run',
      '--agent',
      'kvm1',
      '--job',
      'hooked',
      '--source',
      `cmd:cat ${log}`,
      '--pre',
      `echo "$HOARD_PHASE $HOARD_JOB" > ${log}`,
      '--post',
      `echo "$HOARD_PHASE $HOARD_RESULT" >> ${log}`,
      '--json',
    ]);
    expect(hooked.code, hooked.stderr).toBe(0);
    const run = JSON.parse(hooked.stdout) as RunJson;
    // The source saw what the pre hook wrote; the post hook ran after it.
    const restored = await server.cli(['restore', 'hooked', '--snapshot', run.targets[0]!.snapshot!.id, '--to', '-']);
    expect(restored.stdout).toBe('pre hooked\n');
    expect(await readFile(log, 'utf8')).toBe('pre hooked\npost succeeded\n');

    const failing = await server.cli([
      'run',
      '--agent',
      'kvm1',
      '--job',
      'hooked',
      '--source',
      `cmd:cat ${log}`,
      '--pre',
      'echo frozen-fs-busy >&2; exit 4',
      '--post',
      `echo post >> ${log}.post`,
      '--json',
    ]);
    expect(failing.code).toBe(1);
    const failed = JSON.parse(failing.stdout) as RunJson;
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/pre hook .*exited with status 4: frozen-fs-busy; no source was read/);
    expect(failed.targets).toEqual([]);
    await expect(readFile(`${log}.post`)).rejects.toThrow();
  });

  it('bad input through the CLI is a clear error, not a stack trace', async () => {
    const noAgent = await server.cli(['run', '--agent', 'nobody', '--job', 'x', '--source', 'cmd:true']);
    expect(noAgent.code).toBe(2);
    expect(noAgent.stderr).toMatch(/no agent nobody/);
    const badSpec = await server.cli(['run', '--agent', 'kvm1', '--job', 'x', '--source', 'vm:relative/*.qcow2']);
    expect(badSpec.code).toBe(2);
    expect(badSpec.stderr).toMatch(/absolute/);
    for (const r of [noAgent, badSpec]) expect(r.stderr).not.toMatch(STACK_TRACE);
  });
});

describe('server and agent processes on S3 storage (Ceph RGW)', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    const s3 = s3TestServer();
    server = await startServerProcess({
      storage: `s3://hoard-e2e-${process.pid}-${Date.now() % 100000}/site-a`,
      env: { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' },
    });
    await server.addAgent('db1');
  });
  afterAll(async () => server?.stop());

  it('streams a command dump twice and restores each point in time byte for byte', async () => {
    const day0 = 'cmd:seq 1 300000';
    const first = await runJob(server, 'db1', 'numbers', [day0]);
    expect(first.code, JSON.stringify(first.run)).toBe(0);
    const second = await runJob(server, 'db1', 'numbers', [day0]);
    expect(second.code).toBe(0);
    expect(second.run.targets[0]!.totals!.bytesNew).toBe(0);
    const at = first.run.targets[0]!.snapshot!.startedAt;
    const restored = await server.cli(['restore', 'numbers', '--at', at, '--to', '-']);
    expect(restored.code, restored.stderr).toBe(0);
    const expected = Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join('');
    expect(restored.stdout).toBe(expected);
    const listed = JSON.parse((await server.cli(['snapshots', '--job', 'numbers', '--json'])).stdout) as Array<{ id: string }>;
    expect(listed.map((s) => s.id).sort()).toEqual([first.run.targets[0]!.snapshot!.id, second.run.targets[0]!.snapshot!.id].sort());
  });
});
