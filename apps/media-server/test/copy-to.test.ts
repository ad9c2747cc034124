/**
 * A policy's copy-to (issue 15, item 6; docs/sync.md): after each successful run of the
 * policy's job the server copies the job's snapshots into the copy target named in its
 * config, prunes the copies there by copy-keep, and records a `copy` task; a copy that
 * fails is a failed task, never a failed run. A policy naming a target the config lacks is
 * refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { FsObjectStore, Repository } from '@hoard/repository';
import { addAgent, backup, call, randomData, startServer, type TestServer } from './helpers.js';

let t: TestServer;
let targetDir: string;
let now = Date.parse('2026-11-01T00:00:00Z'); // a Sunday
const clock = { now: () => now };

beforeEach(async () => {
  now = Date.parse('2026-11-01T00:00:00Z');
  targetDir = join(await mkdtemp(join(tmpdir(), 'hoard-copy-to-')), 'offsite');
  await Repository.init(await FsObjectStore.open(targetDir, { create: true }));
  t = await startServer({ server: { scheduler: false, clock, copyTargets: { offsite: { repository: targetDir } } } });
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
