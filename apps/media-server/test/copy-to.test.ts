/**
 * A policy's copy-to (issue 15, item 6; docs/sync.md): after each successful run of the
 * policy's job the server copies the job's snapshots into the copy target named in its
 * config, prunes the copies there by copy-keep, and records a `copy` task; a copy that
 * fails is a failed task, never a failed run. A policy naming a target the config lacks is
 * refused.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { FsObjectStore, Repository, verify } from '@hoard/repository';
import { addAgent, backup, call, randomData, startServer, type TestServer } from './helpers.js';

let t: TestServer;
let targetDir: string;
// A Sunday later than any real clock the objects are written at, so GC's age rule sees them as old.
let now = Date.parse('2027-11-07T00:00:00Z');
const clock = { now: () => now };

beforeEach(async () => {
  now = Date.parse('2027-11-07T00:00:00Z');
  targetDir = join(await mkdtemp(join(tmpdir(), 'hoard-copy-to-')), 'offsite');
  await Repository.init(await FsObjectStore.open(targetDir, { create: true }));
  t = await startServer({ server: { scheduler: false, clock, gcGraceMs: 0, copyTargets: { offsite: { repository: targetDir } } } });
});
afterEach(async () => {
  await t?.close();
  await rm(join(targetDir, '..'), { recursive: true, force: true });
});

const policyYaml = (agent: string, copyTo: string) => `
name: copied
sources:
  - agent: ${agent}
    specs: ["cmd:echo hello"]
schedule:
  timezone: UTC
  full: "0 1 * * *"
copy-to: ${copyTo}
copy-keep:
  keep-last: 1
`;

/** The next scheduled run: queued by the scheduler, claimed, one session backed up, finished succeeded. */
async function scheduledRun(agent: { token: string }, seed: number): Promise<{ run: RunView; snapshot: string }> {
  now += 24 * 3_600_000;
  expect(await t.server.scheduler.tick()).toHaveLength(1);
  const work = await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token });
  expect(work.status, JSON.stringify(work.json)).toBe(200);
  const run = work.json as unknown as RunView;
  const committed = await backup(t, { token: agent.token, job: run.job }, randomData(3 << 20, seed));
  const finished = await call(t.url, 'POST', `/v1/runs/${run.id}/finish`, { token: agent.token, json: { state: 'succeeded', targets: [] } });
  expect(finished.status, JSON.stringify(finished.json)).toBe(200);
  await t.server.settled();
  return { run: finished.json as unknown as RunView, snapshot: committed.snapshot.key };
}

/** Bytes under the target's packs/, as listed on disk (not taken from GC's report). */
async function targetPackBytes(): Promise<number> {
  let total = 0;
  for (const entry of await readdir(join(targetDir, 'packs'), { recursive: true, withFileTypes: true }))
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  return total;
}

async function copies(): Promise<{ key: string; origin?: string }[]> {
  const target = await Repository.open(await FsObjectStore.open(targetDir));
  return (await target.snapshots()).map((s) => ({ key: s.key, origin: s.meta.origin?.snapshot }));
}

describe('policy copy-to', () => {
  it('refuses a copy-to the server config does not name', async () => {
    const agent = await addAgent(t);
    const r = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policyYaml(agent.name, 'nowhere') } });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'invalid_policy', error: expect.stringMatching(/copy-to nowhere is no copy target .*copyTargets: offsite/) });
  });

  it('copies after each successful run, keeps copy-keep in the target, and a failed copy fails the task, not the run', async () => {
    const agent = await addAgent(t);
    const applied = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policyYaml(agent.name, 'offsite') } });
    expect(applied.status, JSON.stringify(applied.json)).toBe(200);
    const shown = await call(t.url, 'GET', '/v1/policies/copied', { token: t.admin });
    expect(shown.json.document).toMatchObject({ 'copy-to': 'offsite', 'copy-keep': { 'keep-last': 1 } });
    await t.server.scheduler.tick();
    await t.server.maintenanceScheduler.tick(); // the GC schedule starts from now

    const first = await scheduledRun(agent, 1);
    expect(await copies()).toEqual([{ key: expect.any(String), origin: first.snapshot }]);
    const second = await scheduledRun(agent, 2);
    // copy-keep keep-last 1: the target holds the newest copy only, and the older one is not copied back.
    expect(await copies()).toEqual([{ key: expect.any(String), origin: second.snapshot }]);
    let tasks = await t.server.catalog.listTasks({ kind: 'copy' });
    expect(tasks.map((task) => [task.state, task.job])).toEqual([
      ['succeeded', 'copied'],
      ['succeeded', 'copied'],
    ]);

    // The server's nightly GC (04:30) then collects the target's garbage too: the first
    // night condemns the packs only the copy copy-keep forgot used, the next deletes them;
    // the copy that stays verifies with all its data.
    const packsBefore = await targetPackBytes();
    const summaries: string[] = [];
    for (const night of [0, 1]) {
      now += (night === 0 ? 4.5 : 24) * 3_600_000;
      const done = await t.server.maintenanceScheduler.tick();
      expect(done.filter((d) => d.kind === 'gc')).toEqual([
        { kind: 'gc', ok: true },
        { kind: 'gc', ok: true, target: 'offsite' },
      ]);
      // One gc task per night for the target, beside the server's own.
      const targetTasks = (await t.server.catalog.listTasks({ kind: 'gc' })).filter((task) => task.summary?.startsWith('copy target offsite: '));
      expect(targetTasks).toHaveLength(night + 1);
      const tonight = targetTasks.find((task) => task.startedAt === new Date(now).toISOString());
      expect(tonight).toMatchObject({ state: 'succeeded', result: expect.objectContaining({ target: 'offsite' }) });
      summaries.push(tonight!.summary!);
    }
    expect(summaries[0]).toMatch(/condemned [1-9]\d* pack/);
    expect(summaries[1]).toMatch(/deleted [1-9]\d*;/);
    expect(await targetPackBytes()).toBeLessThan(packsBefore);
    const target = await Repository.open(await FsObjectStore.open(targetDir));
    const checked = await verify(target, { readData: true });
    expect(checked.findings).toEqual([]);
    expect(checked.snapshots).toBe(1);

    // The target is gone: the run still succeeds, the copy task fails and says why.
    await rm(targetDir, { recursive: true, force: true });
    const third = await scheduledRun(agent, 3);
    expect(third.run.state).toBe('succeeded');
    tasks = await t.server.catalog.listTasks({ kind: 'copy' });
    expect(tasks).toHaveLength(3);
    const failed = tasks.find((task) => task.state === 'failed');
    expect(failed?.error).toMatch(/offsite|no hoard repository|ENOENT/);
  });
});
