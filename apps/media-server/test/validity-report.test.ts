/**
 * The backup-validity report over 90 simulated days: a real catalog holding a policy's
 * daily runs (some failed, one day missed), the snapshots they made, verify tasks (one
 * with findings) and a restore drill; the report must match what happened, day by day.
 * Then on a running server: a real restore drill of a real backup passes, and one of a
 * damaged pack fails and the report says so. A policy's `drill:` restores a real
 * pg_dump into a scratch database of the harness's real PostgreSQL and runs its query.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog, type RunRecord, type SnapshotRecord, type TaskRecord } from '@hoard/catalog';
import type { ValidityReport } from '@hoard/protocol';
import { FsObjectStore, Repository } from '@hoard/repository';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { buildValidityReport } from '../dist/index.js';
import { addAgent, backup, call, defineJob, randomData, SCRYPT, startServer, type TestServer } from './helpers.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const hex16 = (n: number) => n.toString(16).padStart(16, '0');

let dir: string | undefined;
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('validity report', () => {
  it('matches 90 simulated days of runs, snapshots, verifies and drills', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-validity-'));
    const catalog = await Catalog.open(join(dir, 'catalog'));
    const repo = await Repository.init(await FsObjectStore.open(join(dir, 'repo'), { create: true }), { scryptCost: SCRYPT });
    try {
      // The policy is made now; the 90 days that follow are written with their own times
      // and the report is asked for at their end.
      const start = Date.now();
      await catalog.addAgent('db-host', 'a'.repeat(64));
      await catalog.putJob({ name: 'db', agent: 'db-host', sources: ['cmd:true'], store: 'global' });
      await catalog.putPolicy('db', {
        name: 'db',
        sources: [{ agent: 'db-host', specs: ['cmd:true'] }],
        schedule: { timezone: 'UTC', full: '0 1 * * *' },
        retention: { 'keep-daily': 7, 'keep-weekly': 4 },
        'alert-after': '26h',
      });
      const now = start + 90 * DAY + 3_600_000;
      // Fire times: 01:00 UTC of each day in the report's 90 days (after the policy was
      // made, which is before them), up to now. The period starts an hour after `start`:
      // between 00:00 and 01:00 UTC the first 01:00 is after start but before the period.
      const since = now - 90 * DAY;
      const fires: number[] = [];
      for (let d = Math.floor(start / DAY); d * DAY <= now; d++) {
        const at = d * DAY + 3_600_000;
        if (at > Math.max(start, since) && at <= now) fires.push(at);
      }
      const expected = { runs: 0, succeeded: 0, failed: 0, days: new Map<string, string>() };
      let lastSnapshot: SnapshotRecord | undefined;
      const made: SnapshotRecord[] = [];
      for (const [i, at] of fires.entries()) {
        const day = iso(at).slice(0, 10);
        if (i === 44) {
          expected.days.set(day, 'missed');
          continue; // the agent was off: nothing ran that day
        }
        const failed = i % 10 === 9;
        const snapshot: SnapshotRecord | undefined = failed
          ? undefined
          : {
              job: 'db',
              id: hex16(i + 1),
              key: `snapshots/db/${hex16(i + 1)}`,
              source: { name: 'cmd:true', kind: 'stream' },
              startedAt: iso(at + 2000),
              finishedAt: iso(at + 50_000),
              logicalBytes: 1000 + i,
              store: 'ab',
            };
        const run: RunRecord = {
          id: `run-${i}`,
          agent: 'db-host',
          job: 'db',
          sources: ['cmd:true'],
          state: failed ? 'failed' : 'succeeded',
          createdAt: iso(at),
          startedAt: iso(at + 1000),
          finishedAt: iso(at + 60_000),
          sessions: [],
          ...(failed ? { error: 'pg_dump failed' } : {}),
          // A run's result names the snapshot it made, so it is known after a prune too.
          result: { targets: snapshot ? [{ name: 'cmd:true', ok: true, snapshot }] : [] },
        };
        await catalog.putRun(run);
        expected.runs++;
        expected[failed ? 'failed' : 'succeeded']++;
        expected.days.set(day, failed ? 'failed' : 'ok');
        if (snapshot) {
          made.push(snapshot);
          lastSnapshot = snapshot;
          await catalog.putSnapshot(snapshot);
        }
      }
      // Two snapshots gone: an old one, which the retention lets go, and the second newest,
      // which keep-daily 7 keeps (pruned wrongly, or lost).
      const oldOne = made[10]!;
      const recent = made[made.length - 2]!;
      await catalog.deleteSnapshot('db', oldOne.id);
      await catalog.deleteSnapshot('db', recent.id);
      const task = (id: string, kind: TaskRecord['kind'], at: number, fields: Partial<TaskRecord>): TaskRecord => ({
        id,
        kind,
        job: 'db',
        state: 'succeeded',
        startedAt: iso(at),
        finishedAt: iso(at + 5000),
        ...fields,
      });
      await catalog.putTask(task('verify-1', 'verify', start + 30 * DAY, { result: { findings: [] } }));
      await catalog.putTask(
        task('verify-2', 'verify', start + 60 * DAY, {
          state: 'failed',
          error: '2 problem(s)',
          result: {
            findings: [
              { object: 'packs/aa/x', problem: 'checksum' },
              { object: 'packs/bb/y', problem: 'missing' },
            ],
          },
        }),
      );
      await catalog.putTask(task('drill-1', 'drill', start + 89 * DAY, { result: { snapshot: lastSnapshot!.id, bytes: 4096, ms: 120 } }));

      const report: ValidityReport = await buildValidityReport(catalog, repo, { now: new Date(now), days: 90, server: 'backup-1' });
      expect(report.server).toBe('backup-1');
      expect(report.jobs).toHaveLength(1);
      const [job] = report.jobs;
      expect(job).toMatchObject({
        job: 'db',
        policy: 'db',
        agent: 'db-host',
        planned: fires.length,
        runs: expected.runs,
        succeeded: expected.succeeded,
        failed: expected.failed,
        cancelled: 0,
        lastGood: { snapshot: lastSnapshot!.id, at: lastSnapshot!.finishedAt, logicalBytes: lastSnapshot!.logicalBytes },
        verify: { runs: 2, findings: 2, lastOk: false, lastAt: iso(start + 60 * DAY + 5000) },
        drills: { runs: 1, failed: 0, last: { ok: true, snapshot: lastSnapshot!.id, bytes: 4096, ms: 120, error: null } },
      });
      expect(job!.successRate).toBeCloseTo(expected.succeeded / expected.runs, 3);
      // Day by day: what ran, what failed, the day nothing ran although it was planned.
      for (const d of job!.days) expect(d.state, d.day).toBe(expected.days.get(d.day) ?? 'none');
      expect(job!.days.filter((d) => d.state === 'missed')).toHaveLength(1);
      // Exact retention: keep-daily 7 keeps the newest snapshot of each of the 7 newest UTC
      // days with snapshots (failed days use no slot), the recent one deleted among them;
      // keep-weekly 4 the newest of each of the 4 newest ISO weeks, which is the deleted one
      // only when no newer snapshot shares its week. The old deleted one is kept by neither.
      const isoWeek = (t: string) => Math.floor((Math.floor(Date.parse(t) / DAY) + 3) / 7);
      const weeklyKept = !made.some((m) => m.startedAt > recent.startedAt && isoWeek(m.startedAt) === isoWeek(recent.startedAt));
      expect(job!.retention).toEqual([
        { rule: 'keep-daily 7', expected: 7, present: 6, ok: false, missing: [recent.id] },
        weeklyKept
          ? { rule: 'keep-weekly 4', expected: 4, present: 3, ok: false, missing: [recent.id] }
          : { rule: 'keep-weekly 4', expected: 4, present: 4, ok: true },
      ]);
      expect(job!.problems).toContain(`keep-daily 7: 1 of the 7 snapshot(s) it keeps are missing (${recent.id})`);
      expect(job!.snapshotsKept).toBe(expected.succeeded - 2);
      expect(job!.ok).toBe(false);
      expect(job!.problems).toContain('verify found 2 problem(s)');
      expect(job!.problems).toContain('1 day(s) with planned runs and none run');
      expect(report.ok).toBe(false);
    } finally {
      await catalog.close();
    }
  });

  it('a restore drill on the server restores a real backup and checks it; a damaged pack fails it and the report says so', async () => {
    t = await startServer();
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name, 'drilled');
    const data = randomData(300 * 1024, 3);
    const { snapshot } = await backup(t, { token: agent.token, job }, data);
    const drill = await call(t.url, 'POST', '/v1/reports/drills', { token: t.admin, json: { jobs: [job] } });
    expect(drill.status, JSON.stringify(drill.json)).toBe(200);
    expect(drill.json.drills).toEqual([{ job, ok: true, snapshot: snapshot.id, bytes: data.length, ms: expect.any(Number), error: null }]);

    const packDir = join(t.repoDir, 'packs');
    const sub = (await readdir(packDir))[0]!;
    const packFile = join(packDir, sub, (await readdir(join(packDir, sub)))[0]!);
    const bytes = await readFile(packFile);
    bytes[200] ^= 0x01;
    await chmod(packFile, 0o644);
    await writeFile(packFile, bytes);
    const failed = await call(t.url, 'POST', '/v1/reports/drills', { token: t.admin, json: {} });
    expect(failed.json.drills).toMatchObject([{ job, ok: false, snapshot: null }]);
    expect(String((failed.json.drills as { error: string }[])[0]!.error)).toMatch(/damaged|corrupt|fingerprint|checksum|authentication/i);

    const report = await call(t.url, 'GET', '/v1/reports/validity?since=7d', { token: t.admin });
    expect(report.status, JSON.stringify(report.json)).toBe(200);
    const [entry] = (report.json as unknown as ValidityReport).jobs;
    expect(entry).toMatchObject({ job, drills: { runs: 2, failed: 1, last: { ok: false } }, ok: false });
    expect(entry!.days).toHaveLength(7);
    expect(entry!.problems.some((p) => p.startsWith('the last restore drill failed'))).toBe(true);
    const bad = await call(t.url, 'GET', '/v1/reports/validity?since=ninety', { token: t.admin });
    expect(bad.status).toBe(400);
    expect(String(bad.json.message)).toContain('since');
  });
});

describe('restore drill into a scratch PostgreSQL database (policy drill:)', () => {
  let pg: RunningPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
  });

  const pgDump = (url: string): Promise<Buffer> =>
    new Promise((resolve, reject) =>
      execFile(
        pg.bin('pg_dump'),
        [`--dbname=${url}`, '--format=custom', '--compress=0', '--no-password'],
        { encoding: 'buffer', maxBuffer: 1 << 26 },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
  const policy = (name: string, agent: string, query: string) =>
    JSON.stringify({
      name,
      sources: [{ agent, specs: [pg.urlFor('shop')] }],
      schedule: { timezone: 'UTC', full: '0 1 * * 0' },
      drill: { 'postgres-url': pg.url, query },
    });

  it('restores the newest dump into a scratch database, runs the query, drops the database; a failing query fails the drill with the database error', async () => {
    await pg.createDatabase('shop');
    await pg.psql("create table accounts (id int primary key, owner text); insert into accounts values (1, 'ada'), (2, 'brian'), (3, 'cleo');", 'shop');
    const dump = await pgDump(pg.urlFor('shop'));
    expect(dump.subarray(0, 5).toString()).toBe('PGDMP');

    t = await startServer();
    const agent = await addAgent(t);
    // One agent: the policy's job is named as the policy.
    const job = await defineJob(t, agent.name, 'shopdb');
    const applied = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policy(job, agent.name, 'select count(*) from accounts') } });
    expect(applied.status, JSON.stringify(applied.json)).toBe(200);
    const source = `postgres://127.0.0.1:${pg.port}/shop`;
    const { snapshot } = await backup(t, { token: agent.token, job }, dump, source);

    const drill = await call(t.url, 'POST', '/v1/reports/drills', { token: t.admin, json: { jobs: [job] } });
    expect(drill.status, JSON.stringify(drill.json)).toBe(200);
    expect(drill.json.drills).toEqual([
      {
        job,
        ok: true,
        snapshot: snapshot.id,
        bytes: dump.length,
        ms: expect.any(Number),
        error: null,
        database: {
          server: `postgres://127.0.0.1:${pg.port}`,
          database: expect.stringMatching(/^hoard_drill_[0-9a-z]+_[0-9a-f]{6}$/),
          tool: 'pg_restore',
          query: 'select count(*) from accounts',
          rows: 1,
          firstRow: '3',
        },
      },
    ]);
    // The scratch database is gone again.
    expect((await pg.psql("select count(*) from pg_database where datname like 'hoard_drill_%'")).trim()).toBe('0');
    const report = await call(t.url, 'GET', '/v1/reports/validity?since=7d', { token: t.admin });
    const [passed] = (report.json as unknown as ValidityReport).jobs;
    expect(passed!.drills.last).toMatchObject({ ok: true, database: { tool: 'pg_restore', rows: 1, firstRow: '3' } });

    // A query the restored database cannot answer fails the drill, naming the database's error.
    const replaced = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policy(job, agent.name, 'select * from no_such_table') } });
    expect(replaced.status, JSON.stringify(replaced.json)).toBe(200);
    const failed = await call(t.url, 'POST', '/v1/reports/drills', { token: t.admin, json: { jobs: [job] } });
    expect(failed.json.drills).toMatchObject([{ job, ok: false, snapshot: null }]);
    const error = String((failed.json.drills as { error: string }[])[0]!.error);
    expect(error).toContain('select * from no_such_table');
    expect(error).toContain('relation "no_such_table" does not exist');
    expect((await pg.psql("select count(*) from pg_database where datname like 'hoard_drill_%'")).trim()).toBe('0');
    const after = await call(t.url, 'GET', '/v1/reports/validity?since=7d', { token: t.admin });
    const [entry] = (after.json as unknown as ValidityReport).jobs;
    expect(entry).toMatchObject({ job, drills: { runs: 2, failed: 1, last: { ok: false } }, ok: false });
    expect(entry!.problems.find((p) => p.startsWith('the last restore drill failed'))).toContain('relation "no_such_table" does not exist');
  }, 120_000);
});
