/**
 * Jobs and snapshots changed through the server: protection (shown in the list, kept by
 * prune, lifted by admins only), deleting and renaming a job (snapshots keep their name
 * and stay restorable; a policy's job refuses both).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAgent, agentWithJob, backup, call, expectError, randomData, restoreBytes, startServer, type TestServer } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => t?.close());

/** defineJob queued a run to create the job: a job with a queued run may not change. */
async function cancelRuns(job: string): Promise<void> {
  const runs = (await call(t.url, 'GET', '/v1/runs', { token: t.admin })).json.runs as { id: string; job: string; state: string }[];
  for (const run of runs.filter((r) => r.job === job && (r.state === 'queued' || r.state === 'running'))) {
    expect((await call(t.url, 'POST', `/v1/runs/${run.id}/cancel`, { token: t.admin })).status).toBe(200);
  }
}

async function token(role: 'operator' | 'viewer'): Promise<string> {
  const made = await call(t.url, 'POST', '/v1/tokens', { token: t.admin, json: { role, label: `${role} of a test` } });
  expect(made.status, JSON.stringify(made.json)).toBe(201);
  return made.json.token as string;
}

describe('snapshot protection through the server', () => {
  it('is shown in the list, set by an operator, lifted only by an admin', async () => {
    const a = await agentWithJob(t);
    const { snapshot } = await backup(t, a, randomData(300_000, 7));
    const operator = await token('operator');
    const list = async () =>
      (await call(t.url, 'GET', `/v1/snapshots?job=${a.job}`, { token: t.admin })).json.snapshots as { id: string; protected: boolean }[];
    expect((await list()).map((s) => [s.id, s.protected])).toEqual([[snapshot.id, false]]);

    const set = await call(t.url, 'PUT', `/v1/jobs/${a.job}/snapshots/${snapshot.id.slice(0, 6)}/protection`, { token: operator, json: { protected: true } });
    expect(set.status, JSON.stringify(set.json)).toBe(200);
    expect(set.json).toMatchObject({ job: a.job, id: snapshot.id, protected: true });
    expect((await list()).map((s) => s.protected)).toEqual([true]);
    expect((await t.repo.protectedSnapshots(a.job)).has(snapshot.key)).toBe(true);

    expectError(
      await call(t.url, 'PUT', `/v1/jobs/${a.job}/snapshots/${snapshot.id}/protection`, { token: operator, json: { protected: false } }),
      403,
      /may protect snapshots but not lift a protection/,
    );
    expectError(
      await call(t.url, 'PUT', `/v1/jobs/${a.job}/snapshots/${snapshot.id}/protection`, { token: await token('viewer'), json: { protected: true } }),
      403,
      /may not call PUT/,
    );
    const lifted = await call(t.url, 'PUT', `/v1/jobs/${a.job}/snapshots/${snapshot.id}/protection`, { token: t.admin, json: { protected: false } });
    expect(lifted.status).toBe(200);
    expect((await list()).map((s) => s.protected)).toEqual([false]);
    expectError(await call(t.url, 'PUT', `/v1/jobs/${a.job}/snapshots/ffff/protection`, { token: t.admin, json: { protected: true } }), 404, /ffff/);
  });
});

describe('deleting and renaming a job', () => {
  it('rename: the next runs use the new name, old snapshots keep theirs and restore', async () => {
    const a = await agentWithJob(t);
    const data = randomData(200_000, 8);
    const { snapshot } = await backup(t, a, data);
    const renamed = `${a.job}-renamed`;
    expectError(await call(t.url, 'POST', `/v1/jobs/${a.job}/rename`, { token: t.admin, json: { name: renamed } }), 409, /has a queued run/);
    await cancelRuns(a.job);
    const answer = await call(t.url, 'POST', `/v1/jobs/${a.job}/rename`, { token: t.admin, json: { name: renamed } });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ job: renamed, renamedFrom: a.job, snapshotsUnderOldName: 1 });
    const jobs = ((await call(t.url, 'GET', '/v1/jobs', { token: t.admin })).json.jobs as { job: string; agent: string | null }[]).map((j) => j.job);
    expect(jobs).toContain(renamed);
    expect(jobs).not.toContain(a.job);
    // The agent writes the new name; the old name's snapshot restores as before.
    const again = await backup(t, { token: a.token, job: renamed }, data);
    expect(again.totals.bytesNew).toBe(0);
    const restored = await restoreBytes(t, t.admin, a.job, snapshot.id);
    expect(Buffer.compare(restored.bytes, data)).toBe(0);
    expectError(await call(t.url, 'POST', `/v1/jobs/${renamed}/rename`, { token: t.admin, json: { name: renamed } }), 409, /exists already/);
    expectError(await call(t.url, 'POST', `/v1/jobs/${renamed}/rename`, { token: await token('operator'), json: { name: 'x' } }), 403, /may not call POST/);
  });

  it('delete: the definition goes, the snapshots stay; a policy job refuses both', async () => {
    const a = await agentWithJob(t);
    await backup(t, a, randomData(100_000, 9));
    await cancelRuns(a.job);
    const deleted = await call(t.url, 'DELETE', `/v1/jobs/${a.job}`, { token: t.admin });
    expect(deleted.status, JSON.stringify(deleted.json)).toBe(200);
    expect(deleted.json).toMatchObject({ job: a.job, deleted: true, snapshotsKept: 1 });
    expectError(await call(t.url, 'DELETE', `/v1/jobs/${a.job}`, { token: t.admin }), 404, /no job/);
    const snapshots = (await call(t.url, 'GET', `/v1/snapshots?job=${a.job}`, { token: t.admin })).json.snapshots as unknown[];
    expect(snapshots).toHaveLength(1);

    const agent = await addAgent(t);
    const policy = [
      'name: nightly',
      'sources:',
      `  - agent: ${agent.name}`,
      '    specs: ["cmd:true"]',
      'schedule: {timezone: UTC, full: weekly, incremental: daily}',
      '',
    ].join('\n');
    const applied = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policy } });
    expect(applied.status, JSON.stringify(applied.json)).toBe(200);
    const job = ((await call(t.url, 'GET', '/v1/policies/nightly', { token: t.admin })).json.jobs as { job: string }[])[0]!.job;
    const queued = await call(t.url, 'POST', `/v1/jobs/${job}/run`, { token: t.admin, json: {} });
    expect(queued.status, JSON.stringify(queued.json)).toBe(201);
    expectError(await call(t.url, 'DELETE', `/v1/jobs/${job}`, { token: t.admin }), 409, /belongs to policy nightly/);
    expectError(await call(t.url, 'POST', `/v1/jobs/${job}/rename`, { token: t.admin, json: { name: 'other' } }), 409, /belongs to policy nightly/);
  });
});
