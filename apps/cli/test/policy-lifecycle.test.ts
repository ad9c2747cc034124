/**
 * Issue 5's "done" test: a media server and an agent (in this process, on one simulated
 * clock) run a weekly-full / daily-incremental policy with `keep-within 2m` for 90 days
 * over a real PostgreSQL database and a raw VM image that change every day. The server's
 * own schedules prune after every run, collect garbage every night and verify daily
 * (structure) and weekly (10% of the data).
 *
 * At the end it proves:
 *   - exactly the snapshots keep-within 2m keeps (computed here independently) remain,
 *     in the bucket and in the catalog;
 *   - GC returned the space: the bytes under packs/ (listed here, not taken from GC's
 *     report) shrink across GC runs, end far below everything ever stored, and match GC's
 *     own "after";
 *   - `hoard restore --at` (the real CLI) for ten random past times gives exactly the
 *     data of that time: the image byte for byte, the database table by checksum after
 *     pg_restore into a fresh database.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentDaemon } from '@hoard/agent';
import { MediaServer } from '@hoard/media-server';
import { FsObjectStore, Repository, listAll, type GcReport } from '@hoard/repository';
import { runWithInput, startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { hoardCli, STACK_TRACE } from './helpers.js';

const DAY = 86400_000;
/** Monday 2027-01-04 00:00 UTC: later than any real clock the objects are written at, so GC's age rule sees them as old. */
const START = Date.UTC(2027, 0, 4);
const DAYS = 90;
const IMAGE_BYTES = 4 * 1024 * 1024;
const REGION = 16 * 1024;

let now = START;
const clock = { now: () => now };

let dir: string;
let pg: RunningPostgres;
let server: MediaServer;
let agent: AgentDaemon;
let adminToken: string;
let objects: FsObjectStore;
const imagePath = () => join(dir, 'vm', 'web.img');

/** xorshift32 from a seed: the same seed gives the same numbers. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error}`);
  return json;
}

/** The orders table as "rows:md5" of every row in id order. */
const CHECKSUM_SQL = `SELECT count(*) || ':' || md5(string_agg(id || '/' || day || '/' || amount || '/' || note, ',' ORDER BY id)) FROM orders`;

/**
 * Day d's change: new orders, some amounts changed, some old orders deleted; returns the
 * table's checksum after it. One psql for both (psql -q prints only the SELECT's row): a
 * process start fewer on each of the 90 days.
 */
async function changeDatabase(day: number): Promise<string> {
  const output = await pg.psql(
    `INSERT INTO orders SELECT ${day} * 1000 + i, ${day}, (i * 7919 + ${day}) % 10000, 'order ' || i || ' of day ${day}' FROM generate_series(1, 200) i;
     UPDATE orders SET amount = amount + ${day} WHERE id % 11 = ${day % 11};
     DELETE FROM orders WHERE day < ${day - 20} AND id % 5 = ${day % 5};
     ${CHECKSUM_SQL};`,
    'shop',
  );
  return checksumLine(output);
}

async function tableChecksum(db: string): Promise<string> {
  return checksumLine(await pg.psql(CHECKSUM_SQL, db));
}

/** psql's output must be exactly the checksum row: anything else (a stray notice, a second row) fails the test here. */
function checksumLine(output: string): string {
  const line = output.trim();
  if (!/^\d+:[0-9a-f]{32}$/.test(line)) throw new Error(`expected one "rows:md5" line from psql, got ${JSON.stringify(output)}`);
  return line;
}

/** Day d's change to the image: a few 16 KiB regions rewritten; returns the image's SHA-256. */
async function changeImage(day: number): Promise<string> {
  const random = prng(day * 7877 + 13);
  const file = await open(imagePath(), 'r+');
  try {
    for (let n = 0; n < 6; n++) {
      const region = Buffer.alloc(REGION);
      for (let i = 0; i < REGION; i += 4) region.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
      await file.write(region, 0, REGION, Math.floor(random() * (IMAGE_BYTES / REGION)) * REGION);
    }
  } finally {
    await file.close();
  }
  return createHash('sha256')
    .update(await readFile(imagePath()))
    .digest('hex');
}

async function packBytes(): Promise<number> {
  let total = 0;
  for await (const info of listAll(objects, 'packs/')) total += info.size;
  return total;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-lifecycle-'));
  pg = await startPostgres();
  await pg.createDatabase('shop');
  await pg.psql('CREATE TABLE orders (id integer PRIMARY KEY, day integer NOT NULL, amount integer NOT NULL, note text NOT NULL)', 'shop');
  await mkdir(join(dir, 'vm'));
  await writeFile(imagePath(), Buffer.alloc(IMAGE_BYTES));
  objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
  const repo = await Repository.init(objects, {});
  const started = await MediaServer.start({
    repo,
    catalogDir: join(dir, 'catalog'),
    port: 0,
    logLevel: 'silent',
    scheduler: false,
    clock,
    gcSchedule: '30 4 * * *',
  });
  server = started.server;
  adminToken = started.adminToken!;
  const { token } = await api<{ token: string }>('POST', '/v1/agents', { name: 'host1' });
  agent = new AgentDaemon({ server: server.url, token, clock: clock.now });
  await agent.start();
}, 120_000);

afterAll(async () => {
  await agent?.close();
  await server?.close();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('90 days of a weekly-full / daily-incremental policy with keep-within 2m', () => {
  it('keeps exactly what the rules keep, gives the space back, and restores any past time exactly', async () => {
    const dbSource = pg.urlFor('shop');
    const policy = `
name: shop
sources:
  - agent: host1
    specs:
      - ${dbSource}
      - file:${imagePath()}
schedule:
  timezone: UTC
  full: "0 1 * * 0"
  incremental: "0 1 * * 1-6"
retention:
  keep-within: 2m
verify:
  structure: daily
  read-data: weekly
  subset: 10%
`;
    await api('POST', '/v1/policies', { document: policy, format: 'yaml', mode: 'create' });
    await server.scheduler.tick(); // first sight: the schedules start from now
    await server.maintenanceScheduler.tick();

    const expectedDb = new Map<number, string>();
    const expectedImage = new Map<number, string>();
    const created: { source: string; id: string; startedAt: string; day: number }[] = [];
    const gcReports: GcReport[] = [];
    const packBytesBeforeGc: number[] = [];
    const packBytesAfterGc: number[] = [];
    let fullRuns = 0;

    for (let day = 0; day < DAYS; day++) {
      const midnight = START + day * DAY;
      now = midnight + 30 * 60_000;
      expectedDb.set(day, await changeDatabase(day));
      expectedImage.set(day, await changeImage(day));

      now = midnight + 3600_000; // 01:00: the backup
      const dispatched = await server.scheduler.tick();
      expect(dispatched).toHaveLength(1);
      const run = dispatched[0]!;
      expect(run.kind).toBe(new Date(now).getUTCDay() === 0 ? 'full' : 'incremental');
      if (run.kind === 'full') fullRuns++;
      // ?wait= is a long poll: the server answers when the run ends, instead of 20 ms polls
      // that share this process's one thread with the server and the agent doing the run.
      const finished = await waitFor('the run to finish', async () => {
        const view = await api<{
          state: string;
          targets: { name: string; ok: boolean; error?: string; snapshot?: { id: string; startedAt: string }; totals?: { bytesStored: number } }[];
        }>('GET', `/v1/runs/${run.run!.id}?wait=30`);
        return view.state === 'queued' || view.state === 'running' ? undefined : view;
      });
      expect(finished.state, JSON.stringify(finished.targets)).toBe('succeeded');
      expect(finished.targets).toHaveLength(2);
      for (const t of finished.targets) {
        expect(t.snapshot!.startedAt).toBe(new Date(now).toISOString());
        created.push({ source: t.name, id: t.snapshot!.id, startedAt: t.snapshot!.startedAt, day });
      }
      // The prune that follows every successful run (recorded as a task).
      await waitFor('the prune after the run', async () =>
        (await server.catalog.listTasks({ job: 'shop', kind: 'prune' })).filter((t) => t.state !== 'running').length === day + 1 ? true : undefined,
      );
      await server.settled();

      now = midnight + 4.5 * 3600_000; // 04:30: GC (and the day's verify)
      packBytesBeforeGc.push(await packBytes());
      const done = await server.maintenanceScheduler.tick();
      expect(done.filter((d) => d.kind === 'gc')).toEqual([{ kind: 'gc', ok: true }]);
      const [gcTask] = await server.catalog.listTasks({ kind: 'gc', newestFirst: true, limit: 1 });
      gcReports.push(gcTask!.result as GcReport);
      packBytesAfterGc.push(await packBytes());
    }
    // Day 0 is a Monday: Sundays are days 6, 13, ..., 83.
    expect(fullRuns).toBe(12);

    // --- exactly the snapshots keep-within 2m keeps --------------------------------------
    const remaining = await server.repo.snapshots('shop');
    const sources = [...new Set(created.map((c) => c.source))].sort();
    expect(sources).toEqual([`postgres://127.0.0.1:${pg.port}/shop`, imagePath()].sort());
    for (const source of sources) {
      const mine = created.filter((c) => c.source === source);
      expect(mine.length, `snapshots of ${source}`).toBe(DAYS);
      const newest = new Date(mine[mine.length - 1]!.startedAt);
      const cutoff = new Date(newest);
      cutoff.setUTCMonth(cutoff.getUTCMonth() - 2);
      const expected = mine
        .filter((c) => Date.parse(c.startedAt) >= cutoff.getTime())
        .map((c) => c.id)
        .sort();
      const actual = remaining
        .filter((s) => s.meta.source.name === source)
        .map((s) => s.id)
        .sort();
      expect(actual, `kept snapshots of ${source}`).toEqual(expected);
      expect(expected.length).toBeGreaterThan(55);
      expect(expected.length).toBeLessThan(DAYS);
    }
    const catalogIds = (await server.catalog.listSnapshots({ job: 'shop' })).map((s) => s.id).sort();
    expect(catalogIds).toEqual(remaining.map((s) => s.id).sort());

    // --- GC gave the space back -----------------------------------------------------------
    // Measured from the listing of packs/, and checked against what each GC reported.
    let reclaimed = 0;
    let added = 0;
    for (let i = 0; i < DAYS; i++) {
      const report = gcReports[i]!;
      expect(report.bytes.before, `GC of day ${i}`).toBe(packBytesBeforeGc[i]);
      expect(report.bytes.after, `GC of day ${i}`).toBe(packBytesAfterGc[i]);
      expect(packBytesBeforeGc[i]! - packBytesAfterGc[i]!).toBe(report.bytes.deleted - report.bytes.written);
      reclaimed += packBytesBeforeGc[i]! - packBytesAfterGc[i]!;
      added += packBytesBeforeGc[i]! - (i === 0 ? 0 : packBytesAfterGc[i - 1]!);
    }
    const final = packBytesAfterGc[DAYS - 1]!;
    expect(final).toBe(added - reclaimed);
    // Two months of 90 days stay: roughly a third of what was written is gone again.
    expect(reclaimed).toBeGreaterThan(added * 0.15);
    expect(gcReports.some((r) => r.packs.deleted > 0)).toBe(true);
    process.stderr.write(`90 days: backups wrote ${added} bytes of packs, GC reclaimed ${reclaimed}; ${final} bytes remain\n`);

    // --- verification ran on schedule, and found nothing -------------------------------------
    const verifies = await server.catalog.listTasks({ job: 'shop', kind: 'verify' });
    expect(verifies.length).toBeGreaterThanOrEqual(DAYS - 1);
    expect(verifies.filter((v) => v.state !== 'succeeded')).toEqual([]);
    expect(verifies.filter((v) => /data of/.test(v.summary ?? '')).length).toBeGreaterThanOrEqual(12);

    // --- restore --at ten random past times -----------------------------------------------
    const random = prng(20261122);
    const oldestKept = Math.min(...remaining.map((s) => Date.parse(s.meta.startedAt)));
    const end = START + DAYS * DAY - 1;
    const dbName = `postgres://127.0.0.1:${pg.port}/shop`;
    const imageName = imagePath();
    for (let i = 0; i < 10; i++) {
      const at = oldestKept + Math.floor(random() * (end - oldestKept));
      // The newest backup at or before `at`: backups ran at 01:00 every day.
      const day = Math.floor((at - START - 3600_000) / DAY);
      const common = ['restore', 'shop', '--server', server.url, '--token', adminToken, '--at', new Date(at).toISOString()];
      const image = join(dir, `restored-${i}.img`);
      const img = await hoardCli([...common, '--source', imageName, '--to', image, '--json']);
      expect(img.code, img.stderr).toBe(0);
      expect(JSON.parse(img.stdout).startedAt).toBe(new Date(START + day * DAY + 3600_000).toISOString());
      expect(
        createHash('sha256')
          .update(await readFile(image))
          .digest('hex'),
        `image at ${new Date(at).toISOString()} (day ${day})`,
      ).toBe(expectedImage.get(day));
      await rm(image);

      const dump = await hoardCli([...common, '--source', dbName, '--to', '-']);
      expect(dump.code, dump.stderr).toBe(0);
      expect(dump.stderr).not.toMatch(STACK_TRACE);
      const db = `shop_at_${i}`;
      await pg.createDatabase(db);
      await runWithInput(
        pg.bin('pg_restore'),
        ['--exit-on-error', '--no-owner', '-h', pg.socketDir, '-p', String(pg.port), '-U', 'postgres', '-d', db],
        dump.stdoutBytes,
      );
      expect(await tableChecksum(db), `database at ${new Date(at).toISOString()} (day ${day})`).toBe(expectedDb.get(day));
    }
    // 90 days of backups, prunes, GCs and verifies, then ten restores: about 4 minutes on an
    // idle 2-core machine, over 10 beside another test file on a loaded one.
  }, 1_500_000);
});
