/**
 * Liveness of runs (issue 15, problems 1, 2 and 6) through the HTTP API, with agents
 * driven by hand: a run holds a lease its agent renews; a run nobody renews, whose session
 * expired, or that a previous server process left running ends failed with a reason and
 * frees its agent's slot; a cancel ends a run whose agent is gone; a restarted agent's old
 * runs end at its first poll; and a finish report cannot put another job's snapshot or
 * byte counts the server never saw into a run. Leases are short here (a server option),
 * and every wait is a long poll on the run's state, not a sleep.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CommitResponse, RunView } from '@hoard/protocol';
import {
  addAgent,
  backup,
  call,
  chunkFor,
  commit,
  commitRequest,
  defineJob,
  eventually,
  expectError,
  randomData,
  sendBatches,
  startServer,
  type StartOptions,
  type TestServer,
} from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function server(options: StartOptions['server'] = {}): Promise<TestServer> {
  t = await startServer({ server: { scheduler: false, ...options } });
  return t;
}

const admin = (s: TestServer, method: string, path: string, json?: unknown) => call(s.url, method, path, { token: s.admin, json });

async function claim(s: TestServer, token: string, query = ''): Promise<RunView> {
  const work = await call(s.url, 'GET', `/v1/agent/work?wait=5${query}`, { token });
  expect(work.status, JSON.stringify(work.json)).toBe(200);
  return work.json as unknown as RunView;
}

/** The run once it is no longer running (a long poll, repeated). */
async function ended(s: TestServer, id: string): Promise<RunView> {
  for (let i = 0; i < 60; i++) {
    const r = await admin(s, 'GET', `/v1/runs/${id}?wait=1`);
    const run = r.json as unknown as RunView;
    if (run.state !== 'running' && run.state !== 'queued') return run;
  }
  throw new Error(`run ${id} did not end`);
}

async function queueRun(s: TestServer, agent: string, job: string): Promise<RunView> {
  const r = await admin(s, 'POST', '/v1/runs', { agent, job, sources: ['cmd:true'] });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json as unknown as RunView;
}

describe('run leases', () => {
  it("a run whose agent stops renewing ends failed with who and when, and the agent's next run is handed out", async () => {
    const s = await server({ runLeaseMs: 400 });
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name); // queues run 1
    const second = await queueRun(s, agent.name, job);
    const first = await claim(s, agent.token);
    expect(first).toMatchObject({ state: 'running', leaseMs: 400, leaseExpiresAt: expect.any(String) });
    // One run at a time: the second waits for the slot.
    expect((await call(s.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
    // The agent is killed: no renewal comes.
    const failed = await ended(s, first.id);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(
      new RegExp(`^agent ${agent.name} stopped renewing its lease at \\S+ \\(lease of 0.4 s, expired at \\S+\\); agent last seen \\S+Z$`),
    );
    // Its slot is free: the next run goes.
    expect((await claim(s, agent.token)).id).toBe(second.id);
    // A late word from the dead run's agent is refused with the reason.
    expectError(
      await call(s.url, 'POST', `/v1/runs/${first.id}/lease`, { token: agent.token, json: {} }),
      409,
      /is failed, not running: agent .* stopped renewing/,
    );
    expectError(
      await call(s.url, 'POST', `/v1/runs/${first.id}/finish`, { token: agent.token, json: { state: 'succeeded', targets: [] } }),
      409,
      /is failed, not running/,
    );
  });

  it('renewals keep a run running past its lease; only its own agent may renew it', async () => {
    const s = await server({ runLeaseMs: 600 });
    const agent = await addAgent(s);
    const other = await addAgent(s);
    await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    expectError(await call(s.url, 'POST', `/v1/runs/${run.id}/lease`, { token: other.token, json: {} }), 403, /belongs to agent/);
    const until = Date.now() + 2_000;
    let last = run.leaseExpiresAt!;
    while (Date.now() < until) {
      const renewed = await call(s.url, 'POST', `/v1/runs/${run.id}/lease`, { token: agent.token, json: {} });
      expect(renewed.status, JSON.stringify(renewed.json)).toBe(200);
      expect(renewed.json).toMatchObject({ ok: true, leaseMs: 600 });
      expect(Date.parse(renewed.json.leaseExpiresAt as string)).toBeGreaterThanOrEqual(Date.parse(last));
      last = renewed.json.leaseExpiresAt as string;
      await new Promise((r) => setTimeout(r, 100));
    }
    const view = (await admin(s, 'GET', `/v1/runs/${run.id}`)).json;
    expect(view).toMatchObject({ state: 'running', leaseExpiresAt: last });
    // A progress report renews it too, and so does nothing else: once both stop, it ends.
    expect(
      (await call(s.url, 'POST', `/v1/runs/${run.id}/progress`, { token: agent.token, json: { target: 'x', bytesRead: 1, bytesSent: 1, bytesNew: 1 } })).json,
    ).toEqual({ ok: true });
    expect((await ended(s, run.id)).state).toBe('failed');
  });

  it('a failed lease of a scheduled run goes to the scheduler, which retries it', async () => {
    let now = Date.parse('2026-11-01T00:00:00Z');
    const s = await server({ runLeaseMs: 300, clock: { now: () => now } });
    const agent = await addAgent(s);
    const policy = `name: nightly\nsources:\n  - agent: ${agent.name}\n    specs: ["cmd:true"]\nschedule:\n  timezone: UTC\n  full: "0 1 * * *"\n`;
    expect((await admin(s, 'POST', '/v1/policies', { document: policy })).status).toBe(200);
    await s.server.scheduler.tick();
    now += 86_400_000;
    const [dispatched] = await s.server.scheduler.tick();
    expect(dispatched?.run?.state).toBe('queued');
    s.server.scheduler.start(); // retries are scheduled only while the scheduler runs
    const finished = vi.spyOn(s.server.scheduler, 'runFinished');
    const run = await claim(s, agent.token);
    expect(run.id).toBe(dispatched!.run!.id);
    expect((await ended(s, run.id)).state).toBe('failed');
    await eventually(async () => finished.mock.calls.length > 0, 5_000, 'the scheduler to hear of the failed run');
    expect(finished.mock.calls[0]![0]).toMatchObject({ id: run.id, state: 'failed' });
    // A retry is scheduled (attempt 1 failed; the backoff's first delay).
    expect(await finished.mock.results[0]!.value).toMatchObject({ job: 'nightly', attempt: 1 });
  });

  it('a run whose session expired ends failed, naming the session', async () => {
    const s = await server({ sessionIdleMs: 300 });
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    const begun = await call(s.url, 'POST', '/v1/sessions', {
      token: agent.token,
      json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: run.id },
    });
    expect(begun.status).toBe(201);
    // Renew the lease (the agent lives) but send nothing on the session.
    const renewals = setInterval(() => void call(s.url, 'POST', `/v1/runs/${run.id}/lease`, { token: agent.token, json: {} }), 100);
    try {
      const failed = await ended(s, run.id);
      expect(failed.state).toBe('failed');
      expect(failed.error).toMatch(
        new RegExp(`^session ${begun.json.session as string} \\(source dump\\) expired: no request for \\d+ s from agent ${agent.name}$`),
      );
    } finally {
      clearInterval(renewals);
    }
    // A run the server ended takes no new session.
    expectError(
      await call(s.url, 'POST', '/v1/sessions', {
        token: agent.token,
        json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: run.id },
      }),
      409,
      /is failed, not running/,
    );
  });
});

describe('sessions of a run the server ended', () => {
  const begin = (s: TestServer, token: string, job: string, run: string) =>
    call(s.url, 'POST', '/v1/sessions', { token, json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run } });

  it('end with the run, not at their idle expiry: the catalog says why, and a late batch or commit is refused', async () => {
    const s = await server({ runLeaseMs: 400, sessionIdleMs: 600_000 });
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    const begun = await begin(s, agent.token, job, run.id);
    expect(begun.status, JSON.stringify(begun.json)).toBe(201);
    const session = begun.json as never as { session: string };
    const data = randomData(200_000, 71);
    const chunks = await chunkFor(begun.json as never, data);
    // The agent is killed before it uploads: no renewal, no request on the session.
    expect((await ended(s, run.id)).state).toBe('failed');
    // The server ends the run's sessions right after the run (its onEnded step): on a
    // loaded machine a read can fall between the two, so wait for the session to leave
    // `running` (it must, long before its 600 s idle expiry).
    const listed = async () => (await admin(s, 'GET', `/v1/sessions?job=${job}`)).json.sessions as { id: string; state: string; error: string }[];
    let sessions = await listed();
    for (let i = 0; i < 100 && sessions.some((x) => x.state === 'running'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      sessions = await listed();
    }
    expect(sessions).toEqual([
      expect.objectContaining({
        id: session.session,
        state: 'failed',
        error: expect.stringMatching(new RegExp(`^run ${run.id} ended failed: agent ${agent.name} stopped renewing its lease`)),
      }),
    ]);
    // An agent that was only cut off comes back: what it sends for that run is refused.
    expectError(await commit(s, agent.token, begun.json as never, commitRequest(begun.json as never, data, chunks, 0)), 409, /failed \(run .* ended failed/);
  });

  it('a snapshot committed before the agent died is named in the run the lease ended', async () => {
    const s = await server({ runLeaseMs: 400 });
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    // Renew while backing up; the agent dies after its commit, before it reports the finish.
    const renewals = setInterval(() => void call(s.url, 'POST', `/v1/runs/${run.id}/lease`, { token: agent.token, json: {} }), 100);
    let snapshot: string;
    try {
      const begun = await begin(s, agent.token, job, run.id);
      const data = randomData(300_000, 72);
      const chunks = await chunkFor(begun.json as never, data);
      const { batches } = await sendBatches(s, agent.token, begun.json as never, chunks);
      const committed = await commit(s, agent.token, begun.json as never, commitRequest(begun.json as never, data, chunks, batches));
      expect(committed.status, JSON.stringify(committed.json)).toBe(200);
      snapshot = (committed.json as unknown as CommitResponse).snapshot.id;
    } finally {
      clearInterval(renewals);
    }
    await ended(s, run.id);
    let named: RunView | undefined;
    await eventually(
      async () => {
        named = (await admin(s, 'GET', `/v1/runs/${run.id}`)).json as unknown as RunView;
        return named.targets.length > 0;
      },
      10_000,
      'the run to name its snapshot',
    );
    if (!named) throw new Error('no run');
    expect(named.state).toBe('failed');
    expect(named.targets).toEqual([expect.objectContaining({ name: 'dump', ok: true, snapshot: expect.objectContaining({ id: snapshot, job }) })]);
    expect(named.targets[0]!.totals?.bytesRead).toBe(300_000);
    expect(named.error).toMatch(
      new RegExp(
        `^agent ${agent.name} stopped renewing its lease .*; snapshot ${snapshot} of dump was committed although the run did not finish; it is whole and restores$`,
      ),
    );
  });
});

describe('cancelling a run whose agent is gone', () => {
  it('a cancel asked while the lease still runs ends the run cancelled when the lease passes', async () => {
    const s = await server({ runLeaseMs: 400 });
    const agent = await addAgent(s);
    await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    const asked = await admin(s, 'POST', `/v1/runs/${run.id}/cancel`);
    expect(asked.json).toMatchObject({ state: 'running', cancelRequestedAt: expect.any(String) });
    const done = await ended(s, run.id);
    expect(done.state).toBe('cancelled');
    expect(done.error).toMatch(
      new RegExp(`^cancelled by an admin at \\S+; agent ${agent.name} stopped renewing its lease at .*, so the server ended the run$`),
    );
    // The slot is free.
    await queueRun(s, agent.name, run.job);
    expect((await claim(s, agent.token)).state).toBe('running');
  });

  it('a cancel of a run whose lease has passed ends it at once', async () => {
    // The periodic check is off (an hour): only the cancel can end the run.
    const s = await server({ runLeaseMs: 200, runLeaseCheckMs: 3_600_000 });
    const agent = await addAgent(s);
    await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    await eventually(async () => Date.now() > Date.parse(run.leaseExpiresAt!), 5_000, 'the lease to pass');
    const cancelled = await admin(s, 'POST', `/v1/runs/${run.id}/cancel`);
    expect(cancelled.json).toMatchObject({
      id: run.id,
      state: 'cancelled',
      finishedAt: expect.any(String),
      error: expect.stringMatching(/^cancelled by an admin at .*; agent .* stopped renewing its lease/),
    });
  });

  it('an agent alive hears the cancel in its lease answer', async () => {
    const s = await server();
    const agent = await addAgent(s);
    await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    await admin(s, 'POST', `/v1/runs/${run.id}/cancel`);
    expect((await call(s.url, 'POST', `/v1/runs/${run.id}/lease`, { token: agent.token, json: {} })).json).toMatchObject({ ok: true, cancel: true });
  });
});

describe('restarts', () => {
  it('runs and sessions a previous server process left running end failed at start', async () => {
    const s = await server();
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name);
    const run = await claim(s, agent.token);
    const begun = await call(s.url, 'POST', '/v1/sessions', {
      token: agent.token,
      json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: run.id },
    });
    expect(begun.status).toBe(201);
    await s.restart();
    const after = (await admin(s, 'GET', `/v1/runs/${run.id}`)).json as unknown as RunView;
    expect(after).toMatchObject({
      state: 'failed',
      error: `the media server restarted while this run was running (agent ${agent.name} held it since ${run.startedAt})`,
    });
    const sessions = (await admin(s, 'GET', `/v1/sessions?job=${job}`)).json.sessions as { id: string; state: string; error: string; finishedAt: string }[];
    expect(sessions).toEqual([
      expect.objectContaining({
        id: begun.json.session,
        state: 'failed',
        error: 'the media server restarted while this session was running',
        finishedAt: expect.any(String),
      }),
    ]);
    // The agent's slot is free.
    await queueRun(s, agent.name, job);
    expect((await claim(s, agent.token)).state).toBe('running');
  });

  it("a restarted agent's first poll ends the runs its previous process held", async () => {
    const s = await server();
    const agent = await addAgent(s);
    const job = await defineJob(s, agent.name);
    const held = await claim(s, agent.token);
    const next = await queueRun(s, agent.name, job);
    // Still held by this process: nothing ends.
    expect((await call(s.url, 'GET', `/v1/agent/work?wait=0&holding=${held.id}`, { token: agent.token })).status).toBe(204);
    // A new process holds nothing.
    expect((await claim(s, agent.token, '&holding=')).id).toBe(next.id);
    const done = (await admin(s, 'GET', `/v1/runs/${held.id}`)).json;
    expect(done).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(new RegExp(`^agent ${agent.name} restarted: it polled for work at \\S+ without this run among the ones it holds$`)),
    });
  });
});

describe('what the server records at finish', () => {
  async function backupForRun(s: TestServer, token: string, job: string, run: string, data: Buffer): Promise<CommitResponse> {
    const begun = await call(s.url, 'POST', '/v1/sessions', { token, json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run } });
    expect(begun.status, JSON.stringify(begun.json)).toBe(201);
    const session = begun.json as never;
    const chunks = await chunkFor(session, data);
    const { batches } = await sendBatches(s, token, session, chunks);
    const r = await commit(s, token, session, commitRequest(session, data, chunks, batches));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    return r.json as unknown as CommitResponse;
  }

  it("another job's snapshot and invented byte counts are not taken: the target and the run fail, history shows what the server saw", async () => {
    const s = await server();
    const a = await addAgent(s);
    const b = await addAgent(s);
    const jobA = await defineJob(s, a.name);
    const jobB = await defineJob(s, b.name);
    const foreign = await backup(s, { token: b.token, job: jobB }, randomData(64 * 1024, 3));
    const run = await claim(s, a.token);
    const lie = {
      name: 'dump',
      ok: true,
      snapshot: foreign.snapshot,
      totals: { bytesRead: 1e15, bytesSent: 1e15, bytesNew: 1e15, bytesStored: 1e15, chunks: 1, chunksNew: 1 },
      dedupRatio: 1,
      durationMs: 5,
    };
    const finished = await call(s.url, 'POST', `/v1/runs/${run.id}/finish`, { token: a.token, json: { state: 'succeeded', targets: [lie] } });
    expect(finished.status, JSON.stringify(finished.json)).toBe(200);
    const view = finished.json as unknown as RunView;
    expect(view.state).toBe('failed');
    expect(view.error).toBe(
      `dump: the agent reported snapshot ${foreign.snapshot.id}, but no session of run ${run.id} committed it (the server's records); not counted`,
    );
    expect(view.targets).toEqual([{ name: 'dump', ok: false, error: expect.stringMatching(/no session of run/), durationMs: 5 }]);
    const history = (await admin(s, 'GET', `/v1/jobs/${jobA}/history`)).json.entries as {
      id: string;
      snapshots: string[];
      bytesRead: number | null;
      bytesNew: number | null;
    }[];
    expect(history.find((e) => e.id === run.id)).toMatchObject({ snapshots: [], bytesRead: null, bytesNew: null });
  });

  it("an honest snapshot with inflated numbers is recorded with the server's numbers", async () => {
    const s = await server();
    const a = await addAgent(s);
    const job = await defineJob(s, a.name);
    const run = await claim(s, a.token);
    const data = randomData(96 * 1024, 4);
    const c = await backupForRun(s, a.token, job, run.id, data);
    const inflated = {
      name: 'dump',
      ok: true,
      snapshot: { ...c.snapshot, logicalBytes: 1e15 },
      totals: { ...c.totals, bytesRead: 1e15, bytesNew: 1e15 },
      dedupRatio: 1e9,
      durationMs: 7,
    };
    const view = (await call(s.url, 'POST', `/v1/runs/${run.id}/finish`, { token: a.token, json: { state: 'succeeded', targets: [inflated] } }))
      .json as unknown as RunView;
    expect(view.state).toBe('succeeded');
    expect(view.targets[0]).toMatchObject({
      ok: true,
      snapshot: { id: c.snapshot.id, logicalBytes: data.length },
      totals: { bytesRead: data.length, bytesNew: c.totals.bytesNew, bytesStored: c.totals.bytesStored },
      dedupRatio: c.dedupRatio,
    });
    // The same snapshot cannot be claimed twice by one report.
    const run2 = await queueRun(s, a.name, job);
    const claimed = await claim(s, a.token);
    expect(claimed.id).toBe(run2.id);
    const twice = (await call(s.url, 'POST', `/v1/runs/${run2.id}/finish`, { token: a.token, json: { state: 'succeeded', targets: [inflated] } }))
      .json as unknown as RunView;
    expect(twice.state).toBe('failed');
  });

  it('a malformed target is a 400 naming the field', async () => {
    const s = await server();
    const a = await addAgent(s);
    await defineJob(s, a.name);
    const run = await claim(s, a.token);
    expectError(
      await call(s.url, 'POST', `/v1/runs/${run.id}/finish`, {
        token: a.token,
        json: { state: 'succeeded', targets: [{ name: 'x', ok: 'yes', durationMs: 1 }] },
      }),
      400,
      /targets\[0\]\.ok must be true or false/,
    );
    expectError(
      await call(s.url, 'POST', `/v1/runs/${run.id}/finish`, {
        token: a.token,
        json: { state: 'succeeded', targets: [{ name: 'x', ok: true, durationMs: 1, snapshot: { id: '../x' } }] },
      }),
      400,
      /targets\[0\]\.snapshot\.id must be a snapshot id/,
    );
  });
});
