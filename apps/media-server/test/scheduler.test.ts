/**
 * Policies through the API and the scheduler on a simulated clock: fire times, full vs
 * incremental, no overlap, missed runs collapsed at start, retries after a failure, and
 * validation errors that list every problem.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { addAgent, call, startServer, type TestServer } from './helpers.js';

let t: TestServer;
let now = Date.parse('2026-11-01T00:00:00Z'); // a Sunday
const clock = { now: () => now };

beforeEach(async () => {
  now = Date.parse('2026-11-01T00:00:00Z');
  t = await startServer({ server: { scheduler: false, clock } });
});
afterEach(async () => t?.close());

const policyYaml = (agent: string, name = 'vms') => `
name: ${name}
sources:
  - agent: ${agent}
    specs: ["cmd:echo hello"]
schedule:
  timezone: UTC
  full: "0 1 * * 0"
  incremental: "0 1 * * 1-6"
retention:
  keep-within: 2m
`;

async function apply(text: string, mode = 'apply') {
  return call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: text, mode } });
}

/** Finishes every queued run of `agent` as the agent would (claim, then finish). */
async function finishQueued(token: string, state: 'succeeded' | 'failed'): Promise<RunView[]> {
  const done: RunView[] = [];
  for (;;) {
    const work = await call(t.url, 'GET', '/v1/agent/work?wait=0', { token });
    if (work.status === 204 || !work.json.id) return done;
    const run = work.json as unknown as RunView;
    const finished = await call(t.url, 'POST', `/v1/runs/${run.id}/finish`, {
      token,
      json: { state, targets: [], ...(state === 'failed' ? { error: 'boom' } : {}) },
    });
    expect(finished.status, JSON.stringify(finished.json)).toBe(200);
    done.push(finished.json as unknown as RunView);
  }
}

describe('policy scheduler (simulated clock)', () => {
  it('queues weekly full and daily incremental runs at their times, one job per policy', async () => {
    const agent = await addAgent(t);
    const applied = await apply(policyYaml(agent.name));
    expect(applied.status, JSON.stringify(applied.json)).toBe(200);
    await t.server.scheduler.tick(); // first sight: starts from now
    const kinds: string[] = [];
    for (let hour = 1; hour <= 14 * 24; hour++) {
      now += 3_600_000;
      const dispatched = await t.server.scheduler.tick();
      for (const d of dispatched) {
        expect(d.skipped).toBeUndefined();
        expect(d.job).toBe('vms');
        expect(new Date(now).getUTCHours()).toBe(1);
        kinds.push(`${new Date(now).getUTCDay()}:${d.kind}`);
      }
      await finishQueued(agent.token, 'succeeded');
    }
    expect(kinds).toHaveLength(14);
    expect(kinds.filter((k) => k.endsWith('full'))).toEqual(['0:full', '0:full']);
    expect(kinds.filter((k) => k.endsWith('incremental'))).toHaveLength(12);
    // The runs carry the kind to the agent: a full run reads everything again.
    const runs = await call(t.url, 'GET', `/v1/runs?agent=${agent.name}`, { token: t.admin });
    const views = runs.json.runs as RunView[];
    expect(views.filter((r) => r.full)).toHaveLength(2);
  });

  it('skips a run while the previous one of the job is unfinished, and collapses missed runs into one', async () => {
    const agent = await addAgent(t);
    await apply(policyYaml(agent.name));
    await t.server.scheduler.tick();
    now += 2 * 3_600_000; // Sunday 02:00: the full run is due
    expect((await t.server.scheduler.tick()).map((d) => d.kind)).toEqual(['full']);
    now += 24 * 3_600_000; // Monday: the full run was never taken by the agent
    const second = await t.server.scheduler.tick();
    expect(second[0]!.skipped).toMatch(/still queued/);
    await finishQueued(agent.token, 'succeeded');
    // The server is "down" from Monday to Sunday after next: eight fire times missed,
    // two of them full; one full run at start.
    now += 13 * 24 * 3_600_000;
    const caughtUp = await t.server.scheduler.tick();
    expect(caughtUp.map((d) => d.kind)).toEqual(['full']);
  });

  it('retries a failed scheduled run with backoff', async () => {
    const agent = await addAgent(t);
    await apply(policyYaml(agent.name));
    await t.server.scheduler.tick();
    now += 2 * 3_600_000;
    await t.server.scheduler.tick();
    const [failed] = await finishQueued(agent.token, 'failed');
    const retry = await t.server.scheduler.retry({ policy: 'vms', job: 'vms', agent: agent.name, kind: 'full', at: now, attempt: 1 });
    expect(retry?.run?.full).toBe(true);
    expect(retry?.attempt).toBe(2);
    expect(failed!.state).toBe('failed');
  });

  it('lists every problem of a bad policy file and stores nothing', async () => {
    const agent = await addAgent(t);
    const bad = `
name: web
sources:
  - agent: ${agent.name}
    specs: ["ftp://nowhere"]
schedule:
  timezone: Mars/Olympus
  full: "0 1 * * 8"
retention:
  keep-dayly: 7
`;
    const r = await apply(bad);
    expect(r.status).toBe(400);
    const problems = (r.json.problems as { path: string; message: string }[]).map((p) => `${p.path}: ${p.message}`).join('\n');
    expect(problems).toMatch(/day-of-week must be 0-7/);
    expect(problems).toMatch(/Mars\/Olympus/);
    expect(problems).toMatch(/keep-daily/);
    expect(problems).toMatch(/ftp:/);
    const list = await call(t.url, 'GET', '/v1/policies', { token: t.admin });
    expect(list.json.policies).toEqual([]);

    const unknownAgent = await apply(policyYaml('nobody'));
    expect(unknownAgent.status).toBe(404);
    expect(unknownAgent.json.error).toMatch(/no agent nobody/);

    expect((await apply(policyYaml(agent.name), 'update')).status).toBe(404);
    expect((await apply(policyYaml(agent.name), 'create')).status).toBe(200);
    expect((await apply(policyYaml(agent.name), 'create')).status).toBe(409);
    const shown = await call(t.url, 'GET', '/v1/policies/vms?next=5', { token: t.admin });
    expect(shown.json.nextRuns).toHaveLength(5);
    expect((shown.json.nextRuns as { kind: string }[])[0]!.kind).toBe('full');
    expect(shown.json.yaml).toMatch(/keep-within: 2m/);
    expect((await call(t.url, 'DELETE', '/v1/policies/vms', { token: t.admin })).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/policies/vms', { token: t.admin })).status).toBe(404);
  });
});

const limitedYaml = (agent: string, name: string, limits: string, full = '"0 23 * * *"') => `
name: ${name}
sources:
  - agent: ${agent}
    specs: ["cmd:echo hello"]
schedule:
  timezone: UTC
  full: ${full}
limits:
${limits}
`;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('policy limits', () => {
  it('run-window: a missed-run catch-up outside the window waits until it opens', async () => {
    const agent = await addAgent(t);
    expect((await apply(limitedYaml(agent.name, 'nightly', '  run-window: "22:00-06:00"'))).status).toBe(200);
    await t.server.scheduler.tick(); // first sight, Sunday 00:00
    // "Down" until Tuesday 09:00: the 23:00 runs of Sunday and Monday were missed, and
    // 09:00 is outside the window.
    now = Date.parse('2026-11-03T09:00:00Z');
    const held = await t.server.scheduler.tick();
    expect(held.map((d) => [d.job, d.kind, d.run, iso(d.deferredUntil)])).toEqual([['nightly', 'full', undefined, '2026-11-03T22:00:00.000Z']]);
    expect((await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
    now = Date.parse('2026-11-03T21:59:00Z');
    expect(await t.server.scheduler.tick()).toEqual([]);
    now = Date.parse('2026-11-03T22:00:00Z'); // the window opens: one run, not also the 23:00 one
    const opened = await t.server.scheduler.tick();
    expect(opened.map((d) => [d.kind, d.deferredUntil, d.run?.state])).toEqual([['full', undefined, 'queued']]);
    now = Date.parse('2026-11-03T23:00:00Z');
    expect((await t.server.scheduler.tick())[0]!.skipped).toMatch(/still queued/);
  });

  it('run-window: a retry outside the window waits until it opens', async () => {
    const agent = await addAgent(t);
    await apply(limitedYaml(agent.name, 'nightly', '  run-window: "22:00-06:00"', '"0 5 * * *"'));
    await t.server.scheduler.tick();
    now = Date.parse('2026-11-01T05:00:00Z');
    expect((await t.server.scheduler.tick()).map((d) => d.kind)).toEqual(['full']);
    await finishQueued(agent.token, 'failed');
    now = Date.parse('2026-11-01T06:01:00Z'); // the retry comes after the window closed
    const held = await t.server.scheduler.retry({ policy: 'nightly', job: 'nightly', agent: agent.name, kind: 'full', at: now, attempt: 1 });
    expect([held?.run, iso(held?.deferredUntil), held?.attempt]).toEqual([undefined, '2026-11-01T22:00:00.000Z', 2]);
    now = Date.parse('2026-11-01T12:00:00Z');
    expect(await t.server.scheduler.tick()).toEqual([]);
    now = Date.parse('2026-11-01T22:00:00Z');
    const retried = await t.server.scheduler.tick();
    expect(retried.map((d) => [d.kind, d.attempt, d.run?.state])).toEqual([['full', 2, 'queued']]);
    expect(await t.server.scheduler.tick()).toEqual([]); // once
  });

  it('max-concurrent-jobs-per-agent: claim never hands the agent more running runs than the smallest limit of its policies', async () => {
    const agent = await addAgent(t);
    const policy = (name: string, max: number) =>
      limitedYaml(agent.name, name, `  max-concurrent-jobs-per-agent: ${max}\n  bandwidth: 200Mbit/s`, '"0 1 * * *"');
    for (const name of ['a', 'b', 'c']) expect((await apply(policy(name, 2))).status).toBe(200);
    await t.server.scheduler.tick();
    now = Date.parse('2026-11-01T01:00:00Z');
    expect(await t.server.scheduler.tick()).toHaveLength(3);
    const claim = (wait = 0) => call(t.url, 'GET', `/v1/agent/work?wait=${wait}`, { token: agent.token });
    const first = await claim();
    const second = await claim();
    expect([first.status, second.status]).toEqual([200, 200]);
    // The answer tells the agent its limit; the run carries the policy's bandwidth (25 MB/s).
    expect([first.json.maxConcurrentRuns, first.json.bandwidth]).toEqual([2, 25_000_000]);
    expect((await claim()).status).toBe(204); // the third stays queued while two run
    // A claim waiting on the limit goes on as soon as a run finishes.
    const waiting = claim(20);
    const finished = await call(t.url, 'POST', `/v1/runs/${first.json.id as string}/finish`, { token: agent.token, json: { state: 'succeeded', targets: [] } });
    expect(finished.status).toBe(200);
    const third = await waiting;
    expect(third.status).toBe(200);
    for (const r of [second, third])
      await call(t.url, 'POST', `/v1/runs/${r.json.id as string}/finish`, { token: agent.token, json: { state: 'succeeded', targets: [] } });

    // Policy c now allows 1: the smallest limit of the agent's policies wins.
    expect((await apply(policy('c', 1))).status).toBe(200);
    now = Date.parse('2026-11-02T01:00:00Z');
    expect(await t.server.scheduler.tick()).toHaveLength(3);
    const only = await claim();
    expect([only.status, only.json.maxConcurrentRuns]).toEqual([200, 1]);
    expect((await claim()).status).toBe(204);
    const runs = (await call(t.url, 'GET', `/v1/runs?agent=${agent.name}`, { token: t.admin })).json.runs as RunView[];
    expect(runs.filter((r) => r.state === 'running')).toHaveLength(1);
    expect(runs.filter((r) => r.state === 'queued')).toHaveLength(2);
  });

  it('prunes after a scheduled run, never after a manual one (docs/policies.md, "When retention is applied")', async () => {
    const agent = await addAgent(t);
    expect((await apply(policyYaml(agent.name, 'pruned'))).status).toBe(200);
    await t.server.scheduler.tick();
    now = Date.parse('2026-11-02T01:00:00Z');
    expect(await t.server.scheduler.tick()).toHaveLength(1);
    const [scheduled] = await finishQueued(agent.token, 'succeeded');
    expect(scheduled!.manual).toBeUndefined();
    await t.server.settled();
    const prunes = async () => (await t.server.catalog.listTasks({ kind: 'prune' })).length;
    const afterScheduled = await prunes();
    expect(afterScheduled).toBeGreaterThan(0);

    const queued = await call(t.url, 'POST', `/v1/jobs/${scheduled!.job}/run`, { token: t.admin, json: {} });
    expect(queued.status, JSON.stringify(queued.json)).toBe(201);
    const [manual] = await finishQueued(agent.token, 'succeeded');
    expect(manual!.manual).toBe(true);
    await t.server.settled();
    expect(await prunes()).toBe(afterScheduled);
  });
});
