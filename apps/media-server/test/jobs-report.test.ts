/**
 * Jobs, cancel, history and the report through the HTTP API, on a real server and
 * repository: sessions are driven by hand as an agent would (claim, session with the run
 * id, batches, commit, finish), so every figure can be checked exactly.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dedupRatio, nextPolicyRuns, parsePolicyDocument, type CommitResponse, type RunView } from '@hoard/protocol';
import { DAY_MS, dailyCumulative, trendOf } from '../dist/capacity.js';
import {
  addAgent,
  call,
  chunkFor,
  commit,
  commitRequest,
  defineJob,
  expectError,
  randomData,
  sendBatches,
  startServer,
  uniqueName,
  type TestServer,
} from './helpers.js';

let t: TestServer;
beforeEach(async () => {
  t = await startServer({ server: { scheduler: false } });
});
afterEach(async () => t?.close());

const admin = (method: string, path: string, json?: unknown) => call(t.url, method, path, { token: t.admin, json });

async function claim(token: string): Promise<RunView> {
  const work = await call(t.url, 'GET', '/v1/agent/work?wait=0', { token });
  expect(work.status, JSON.stringify(work.json)).toBe(200);
  return work.json as unknown as RunView;
}

/** One session of `run` backing up `data` as source `dump`, committed. */
async function backupForRun(token: string, job: string, run: string, data: Buffer): Promise<CommitResponse> {
  const begun = await call(t.url, 'POST', '/v1/sessions', { token, json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run } });
  expect(begun.status, JSON.stringify(begun.json)).toBe(201);
  const session = begun.json as never;
  const chunks = await chunkFor(session, data);
  const { batches } = await sendBatches(t, token, session, chunks);
  const r = await commit(t, token, session, commitRequest(session, data, chunks, batches));
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json as unknown as CommitResponse;
}

async function finish(token: string, run: string, body: Record<string, unknown>): Promise<RunView> {
  const r = await call(t.url, 'POST', `/v1/runs/${run}/finish`, { token, json: body });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json as unknown as RunView;
}

const target = (c: CommitResponse) => ({ name: 'dump', ok: true, snapshot: c.snapshot, totals: c.totals, dedupRatio: c.dedupRatio, durationMs: 5 });

describe('cancelling runs', () => {
  it('a queued run is cancelled at once and never reaches the agent; cancelling twice changes nothing', async () => {
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name);
    const [queued] = (await admin('GET', `/v1/runs?agent=${agent.name}`)).json.runs as RunView[];
    expect(queued!.state).toBe('queued');
    // Only an admin may cancel.
    expectError(await call(t.url, 'POST', `/v1/runs/${queued!.id}/cancel`, { token: agent.token }), 403, /admin/);
    const cancelled = await admin('POST', `/v1/runs/${queued!.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ id: queued!.id, job, state: 'cancelled', error: 'cancelled by an admin before it started' });
    expect(cancelled.json.finishedAt).toEqual(expect.any(String));
    expect((await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
    const twice = await admin('POST', `/v1/runs/${queued!.id}/cancel`);
    expect(twice.json).toEqual(cancelled.json);
    expectError(await admin('POST', '/v1/runs/no-such-run/cancel'), 404, /no run no-such-run/);
    // A waiter on the run sees the end.
    expect((await admin('GET', `/v1/runs/${queued!.id}?wait=1`)).json.state).toBe('cancelled');
  });

  it('a running run is asked to stop through the progress answer; the agent abandons its session and finishes it cancelled', async () => {
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name);
    const run = await claim(agent.token);
    expect(run.state).toBe('running');
    const begun = await call(t.url, 'POST', '/v1/sessions', {
      token: agent.token,
      json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: run.id },
    });
    const session = begun.json as never as { session: string };
    const data = randomData(96 * 1024, 7);
    await sendBatches(t, agent.token, begun.json as never, (await chunkFor(begun.json as never, data)).slice(0, 3));
    // Progress before the request: carry on.
    const before = await call(t.url, 'POST', `/v1/runs/${run.id}/progress`, {
      token: agent.token,
      json: { target: 'dump', bytesRead: 1000, bytesSent: 900, bytesNew: 800 },
    });
    expect(before.json).toEqual({ ok: true });
    const asked = await admin('POST', `/v1/runs/${run.id}/cancel`);
    expect(asked.status).toBe(200);
    expect(asked.json).toMatchObject({ id: run.id, state: 'running', cancelRequestedAt: expect.any(String) });
    // Asking twice changes nothing.
    expect((await admin('POST', `/v1/runs/${run.id}/cancel`)).json.cancelRequestedAt).toBe(asked.json.cancelRequestedAt);
    const told = await call(t.url, 'POST', `/v1/runs/${run.id}/progress`, {
      token: agent.token,
      json: { target: 'dump', bytesRead: 2000, bytesSent: 1900, bytesNew: 1800 },
    });
    expect(told.json).toEqual({ ok: true, cancel: true });
    expect((await call(t.url, 'DELETE', `/v1/sessions/${session.session}`, { token: agent.token })).status).toBe(200);
    const done = await finish(agent.token, run.id, {
      state: 'cancelled',
      targets: [{ name: 'dump', ok: false, error: 'the run was cancelled by an admin', durationMs: 3 }],
    });
    expect(done).toMatchObject({
      state: 'cancelled',
      cancelRequestedAt: asked.json.cancelRequestedAt,
      error: expect.stringMatching(/^cancelled by an admin while running/),
    });
    // Nothing was committed (invariant 1): no snapshot, the session failed.
    expect((await admin('GET', `/v1/snapshots?job=${job}`)).json.snapshots).toEqual([]);
    const sessions = (await admin('GET', `/v1/sessions?job=${job}`)).json.sessions as { id: string; state: string }[];
    expect(sessions.map((s) => [s.id, s.state])).toEqual([[session.session, 'failed']]);
    const history = (await admin('GET', `/v1/jobs/${job}/history`)).json.entries as { id: string; state: string; kind: string; snapshots: string[] }[];
    expect(history).toEqual([expect.objectContaining({ id: run.id, state: 'cancelled', kind: 'manual', snapshots: [] })]);
  });

  it('a run cancelled while the agent was claiming it tells the agent to stop, and its report keeps it cancelled', async () => {
    const agent = await addAgent(t);
    await defineJob(t, agent.name);
    const run = await claim(agent.token);
    // The admin's view was "queued" a moment ago; now it is running: the request is recorded.
    const asked = await admin('POST', `/v1/runs/${run.id}/cancel`);
    expect(asked.json.state).toBe('running');
    const told = await call(t.url, 'POST', `/v1/runs/${run.id}/progress`, {
      token: agent.token,
      json: { target: 'x', bytesRead: 0, bytesSent: 0, bytesNew: 0 },
    });
    expect(told.json.cancel).toBe(true);
    expect((await finish(agent.token, run.id, { state: 'cancelled', targets: [] })).state).toBe('cancelled');
  });
});

describe('jobs, history and the report', () => {
  it('lists jobs, runs one now, interleaves runs and tasks in history, and reports exact figures', async () => {
    const agent = await addAgent(t);
    const job = uniqueName('job');
    // Run 1: `hoard run` (manual, incremental).
    expect((await admin('POST', '/v1/runs', { agent: agent.name, job, sources: ['cmd:cat /dev/null'], hooks: { pre: 'true' } })).status).toBe(201);
    const data1 = randomData(200 * 1024, 1);
    const run1 = await claim(agent.token);
    const c1 = await backupForRun(agent.token, job, run1.id, data1);
    await finish(agent.token, run1.id, { state: 'succeeded', targets: [target(c1)] });
    // Run 2: `hoard job run --full`: the job's agent, sources and hooks.
    const queued2 = await admin('POST', `/v1/jobs/${job}/run`, { full: true });
    expect(queued2.status).toBe(201);
    expect(queued2.json).toMatchObject({ agent: agent.name, job, sources: ['cmd:cat /dev/null'], hooks: { pre: 'true' }, full: true, state: 'queued' });
    const data2 = Buffer.concat([data1, randomData(50 * 1024, 2)]);
    const run2 = await claim(agent.token);
    const c2 = await backupForRun(agent.token, job, run2.id, data2);
    await finish(agent.token, run2.id, { state: 'succeeded', targets: [target(c2)] });
    expect(c2.totals.bytesNew).toBeLessThan(data2.length); // the first 200 KiB were known
    // Run 3 fails.
    await admin('POST', `/v1/jobs/${job}/run`, {});
    const run3 = await claim(agent.token);
    await finish(agent.token, run3.id, { state: 'failed', targets: [], error: 'boom' });
    // A verify task the server ran for the job.
    const taskAt = new Date(Date.now() + 1000).toISOString();
    await t.server.catalog.putTask({
      id: 'verify-1',
      kind: 'verify',
      job,
      policy: 'p',
      state: 'succeeded',
      startedAt: taskAt,
      finishedAt: new Date(Date.parse(taskAt) + 1500).toISOString(),
      summary: 'checked 2 snapshots: no problems',
    });

    // job list
    const jobs = (await admin('GET', '/v1/jobs')).json.jobs as Record<string, unknown>[];
    expect(jobs).toEqual([
      {
        job,
        agent: agent.name,
        policy: null,
        store: 'global',
        sources: ['cmd:cat /dev/null'],
        lastRun: { id: run3.id, state: 'failed', at: expect.any(String) },
        lastSuccess: { id: run2.id, at: expect.any(String) },
        nextRun: null,
        snapshots: 2,
        newestSnapshot: { id: c2.snapshot.id, startedAt: c2.snapshot.startedAt, logicalBytes: data2.length },
      },
    ]);
    expectError(await admin('POST', '/v1/jobs/nope/run', {}), 404, /no job nope/);
    expectError(await admin('POST', `/v1/runs/${run1.id}/cancel`), 409, /is succeeded already; only a queued or running run can be cancelled/);
    expectError(await admin('POST', `/v1/jobs/${job}/run`, { full: 'yes' }), 400, /full must be true or false; got "yes"/);

    // history: newest first, runs and tasks interleaved
    const history = (await admin('GET', `/v1/jobs/${job}/history`)).json.entries as Record<string, unknown>[];
    expect(history.map((e) => [e.type, e.kind, e.state])).toEqual([
      ['task', 'verify', 'succeeded'],
      ['run', 'manual', 'failed'],
      ['run', 'manual', 'succeeded'],
      ['run', 'manual', 'succeeded'],
    ]);
    expect(history[0]).toMatchObject({ id: 'verify-1', durationMs: 1500, summary: 'checked 2 snapshots: no problems', bytesRead: null, snapshots: [] });
    expect(history[1]).toMatchObject({ id: run3.id, error: 'boom', bytesRead: null, dedupRatio: null });
    expect(history[2]).toMatchObject({
      id: run2.id,
      full: true,
      bytesRead: data2.length,
      bytesNew: c2.totals.bytesNew,
      bytesStored: c2.totals.bytesStored,
      dedupRatio: dedupRatio(data2.length, c2.totals.bytesNew),
      snapshots: [c2.snapshot.id],
      error: null,
    });
    expect(history[3]).toMatchObject({ id: run1.id, full: false, bytesRead: data1.length, bytesNew: data1.length, snapshots: [c1.snapshot.id] });
    expect((await admin('GET', `/v1/jobs/${job}/history?limit=2`)).json.entries).toHaveLength(2);
    expectError(await admin('GET', `/v1/jobs/${job}/history?limit=0`), 400, /limit/);
    expectError(await admin('GET', '/v1/jobs/nope/history'), 404, /no job nope/);

    // Older history of the store, as sessions of the past ten days (1 MB a day).
    const store = c1.snapshot.store;
    for (let d = 1; d <= 10; d++) {
      const at = new Date(Date.now() - d * DAY_MS).toISOString();
      await t.server.catalog.putSession({
        id: `old-${d}`,
        agent: agent.name,
        job: 'older-job',
        source: 's',
        store,
        startedAt: at,
        finishedAt: at,
        state: 'committed',
        bytesRead: 1e6,
        bytesSent: 1e6,
        bytesNew: 1e6,
        bytesStored: 1e6,
        chunks: 1,
        chunksNew: 1,
      });
    }
    const first = await admin('GET', '/v1/report');
    const storedNow = c1.totals.bytesStored + c2.totals.bytesStored;
    const trend = first.json.capacity as { trend: { bytesPerDay: number } };
    const quota = storedNow + 10 * trend.trend.bytesPerDay;
    const r = await admin('GET', `/v1/report?quota=${quota}&growthYears=2`);
    expect(r.status).toBe(200);
    // biome-ignore lint/suspicious/noExplicitAny: the assertions below walk the report by path
    const report = r.json as Record<string, any>;
    const compression = Math.round((storedNow / (c1.totals.bytesNew + c2.totals.bytesNew)) * 1e4) / 1e4;
    expect(report.jobs).toEqual([
      {
        job,
        agent: agent.name,
        policy: null,
        store: 'global',
        lastSuccess: { run: run2.id, at: expect.any(String) },
        lastFailure: { run: run3.id, at: expect.any(String), error: 'boom' },
        snapshotsKept: 2,
        logicalBytesKept: data1.length + data2.length,
        newestLogicalBytes: data2.length,
        storedBytesWritten: storedNow,
        dedupFactor: Math.round(((data1.length + data2.length) / storedNow) * 100) / 100,
        classic: {
          // run 2 is the one full kept, run 1 the one incremental kept; no incremental run
          // after the first, no second full to measure growth by
          inputs: { base: data2.length, fullsKept: 1, incremental: 0, incrementalsPerFull: 1, growth: 0, years: 2, compression },
          bytes: Math.round(data2.length * compression),
        },
      },
    ]);
    expect(report.stores).toEqual([
      expect.objectContaining({ name: 'global', scope: 'global', snapshots: 2, logicalBytes: data1.length + data2.length, storedBytes: storedNow }),
    ]);
    const c = report.capacity;
    expect(c.storedBytes).toBe(storedNow);
    expect(c.logicalBytes).toBe(data1.length + data2.length);
    // The trend is the least-squares line through the sessions' daily cumulative stored bytes.
    const sessions = (await t.server.catalog.listSessions({})).map((s) => ({ at: Date.parse(s.finishedAt ?? s.startedAt), bytes: s.bytesStored }));
    const now = Date.parse(report.generatedAt);
    const expected = trendOf(dailyCumulative(sessions, now, 30))!;
    expect(c.trend).toEqual({ bytesPerDay: Math.round(expected.bytesPerDay), r2: Math.round(expected.r2 * 1e4) / 1e4, days: 11 });
    expect(c.trend.bytesPerDay).toBeGreaterThan(0);
    expect(c.history).toHaveLength(11);
    expect(c.history[10].cumulative).toBe(10e6 + storedNow);
    expect(c.quotaBytes).toBe(quota);
    expect(c.fill).toEqual({ status: 'date', at: new Date(now + 10 * DAY_MS).toISOString(), days: 10 });
    expect(c.classicBytes).toBe(Math.round(data2.length * compression));
    expect(c.classicOverMeasured).toBe(Math.round((c.classicBytes / storedNow) * 100) / 100);
    expect(c.growthYears).toBe(2);
    // A quota below what is stored: full already.
    expect(((await admin('GET', '/v1/report?quota=1')).json.capacity as { fill: unknown }).fill).toMatchObject({ status: 'full', days: 0 });
    expectError(await admin('GET', '/v1/report?quota=-5'), 400, /quota/);
    expectError(await call(t.url, 'GET', '/v1/report', { token: agent.token }), 403, /admin/);
  });

  it("lists a policy's job before it ever ran, with its next run, and runs it now with the policy's sources", async () => {
    const agent = await addAgent(t);
    const yaml = `name: nightly\nsources:\n  - agent: ${agent.name}\n    specs: ["cmd:echo hi"]\n    hooks: {post: "true"}\nschedule:\n  timezone: UTC\n  full: "0 1 * * *"\n`;
    expect((await admin('POST', '/v1/policies', { document: yaml })).status).toBe(200);
    const [next] = nextPolicyRuns(parsePolicyDocument(yaml)[0]!, new Date(), 1);
    const jobs = (await admin('GET', '/v1/jobs')).json.jobs as Record<string, unknown>[];
    expect(jobs).toEqual([
      expect.objectContaining({
        job: 'nightly',
        agent: agent.name,
        policy: 'nightly',
        snapshots: 0,
        lastRun: null,
        nextRun: { at: next!.at.toISOString(), kind: 'full' },
      }),
    ]);
    const queued = await admin('POST', '/v1/jobs/nightly/run', {});
    expect(queued.status).toBe(201);
    expect(queued.json).toMatchObject({ agent: agent.name, job: 'nightly', sources: ['cmd:echo hi'], hooks: { post: 'true' } });
    expect((await admin('POST', `/v1/runs/${queued.json.id}/cancel`)).json.state).toBe('cancelled');
    expect(((await admin('GET', '/v1/jobs')).json.jobs as { lastRun: { state: string } }[])[0]!.lastRun.state).toBe('cancelled');
  });
});
