/**
 * Every JSON answer the media server sends matches the reply schema of its route
 * (@hoard/protocol's API_ROUTES, schemas in api/replies.ts). The schemas' objects are
 * closed, so a field the server sends but the schema does not declare fails here, as does
 * a declared field that is missing or of another type (null where the schema says absent).
 *
 * The answers are real: a server on a temporary repository, agents driven by hand over
 * HTTP (claim, session, batches, commit, progress, lease, finish), a policy with every
 * section, a restore run, prune, gc, verify and the reports. Only HTTP is used, so the test
 * holds whatever the server is built on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { API_ROUTES, type BeginSessionResponse, type CommitResponse, type RouteContract, type RunView } from '@hoard/protocol';
import {
  addAgent,
  call,
  chunkFor,
  batchBody,
  codecFor,
  commit,
  commitRequest,
  encodeBlobs,
  putBatch,
  randomData,
  refsOf,
  sendBatches,
  startServer,
  uniqueName,
  type Reply,
  type TestServer,
} from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** The schema's complaints about `value`, one line each (empty: it matches). */
function problems(schema: TSchema, value: unknown): string[] {
  return [...Value.Errors(schema, value)].map((e) => `${e.path || '/'}: ${e.message} (got ${JSON.stringify(e.value)?.slice(0, 200)})`);
}

/** Asserts the answer has the route's success status and matches its reply schema; returns its JSON. */
function expectReply<T = Record<string, unknown>>(route: RouteContract, reply: Reply, what = route.id): T {
  expect(reply.status, `${what}: ${JSON.stringify(reply.json)}`).toBe(route.status ?? 200);
  expect(route.reply, `${what}: the route declares a reply schema`).toBeDefined();
  const found = problems(route.reply!, reply.json);
  expect(found, `${what} does not match its schema:\n${found.join('\n')}\nanswer: ${JSON.stringify(reply.json, null, 2)}`).toEqual([]);
  return reply.json as T;
}

describe('answers match their reply schemas', () => {
  it('the schemas are closed: a field they do not declare, or null for an absent one, is drift', () => {
    const agent = { name: 'kvm-01', createdAt: '2026-01-01T00:00:00.000Z' };
    expect(problems(API_ROUTES.listAgents.reply, { agents: [agent] })).toEqual([]);
    expect(problems(API_ROUTES.listAgents.reply, { agents: [{ ...agent, tokenHash: 'ab' }] })).not.toEqual([]);
    expect(problems(API_ROUTES.listAgents.reply, { agents: [{ ...agent, revokedAt: null }] })).not.toEqual([]);
    const run = { id: 'r1', agent: 'kvm-01', job: 'j', sources: [], state: 'queued', createdAt: agent.createdAt, targets: [], discovered: [] };
    expect(problems(API_ROUTES.getRun.reply, run)).toEqual([]);
    expect(problems(API_ROUTES.getRun.reply, { ...run, targets: [{ name: 't', ok: true, durationMs: 1, extra: 1 }] })).not.toEqual([]);
  });

  it('agents, policies, runs, sessions, jobs, history, snapshots, maintenance and reports', async () => {
    const s = (t = await startServer({ server: { scheduler: false } }));
    const admin = (method: string, path: string, json?: unknown): Promise<Reply> => call(s.url, method, path, { token: s.admin, json });
    const as = (token: string, method: string, path: string, json?: unknown): Promise<Reply> => call(s.url, method, path, { token, json });

    // --- agents: one that said hello, one revoked ------------------------------------------
    const agent = await addAgent(s);
    expect((await as(agent.token, 'POST', '/v1/agent/hello', { hostname: 'kvm-01', version: '0.1.0' })).status).toBe(200);
    const gone = await addAgent(s);
    expect((await admin('DELETE', `/v1/agents/${gone.name}`)).status).toBe(200);
    const { agents } = expectReply<{ agents: Record<string, unknown>[] }>(API_ROUTES.listAgents, await admin('GET', '/v1/agents'));
    expect(agents.find((a) => a.name === agent.name)).toMatchObject({ hostname: 'kvm-01', version: '0.1.0', lastSeenAt: expect.any(String) });
    expect(agents.find((a) => a.name === gone.name)).toMatchObject({ revokedAt: expect.any(String) });

    // --- a policy with every section ----------------------------------------------------------
    const policy = uniqueName('nightly');
    const yaml = [
      `name: ${policy}`,
      'description: every source of one agent',
      'sources:',
      `  - agent: ${agent.name}`,
      '    specs: ["cmd:cat /dev/null", "postgres://backup:secret@db.example/app"]',
      '    hooks: {pre: "true", post: "true"}',
      'schedule:',
      '  timezone: Europe/Berlin',
      '  full: "0 1 * * SUN"',
      '  incremental: daily',
      'retention:',
      '  keep-last: 1',
      '  keep-daily: 7',
      '  keep-within: 2d',
      'store: {scope: job, compression: lz4, encryption: false}',
      'limits:',
      '  max-concurrent-jobs-per-agent: 2',
      '  bandwidth: 50MB/s',
      '  run-window: "22:00-06:00"',
      'verify: {structure: daily, read-data: weekly, subset: 5%}',
      '',
    ].join('\n');
    expectReply(API_ROUTES.applyPolicies, await admin('POST', '/v1/policies', { document: yaml }));
    const { policies } = expectReply<{ policies: Record<string, unknown>[] }>(API_ROUTES.listPolicies, await admin('GET', '/v1/policies'));
    expect(policies).toHaveLength(1);
    const shown = expectReply(API_ROUTES.getPolicy, await admin('GET', `/v1/policies/${policy}?next=3`));
    expect(shown.yaml).toEqual(expect.stringContaining('***'));

    // --- a run of the policy's job, from queue to finish --------------------------------------------
    const job = policy; // one agent: the job is named after the policy
    const queued = expectReply<RunView>(API_ROUTES.runJob, await admin('POST', `/v1/jobs/${job}/run`, { full: true }));
    expect(queued).toMatchObject({ state: 'queued', full: true, hooks: { pre: 'true', post: 'true' } });
    const claimed = expectReply<RunView>(API_ROUTES.agentWork, await as(agent.token, 'GET', '/v1/agent/work?wait=5'), 'agentWork (claim)');
    expect(claimed).toMatchObject({ id: queued.id, state: 'running', maxConcurrentRuns: 2, leaseMs: expect.any(Number) });
    expectReply(
      API_ROUTES.runProgress,
      await as(agent.token, 'POST', `/v1/runs/${claimed.id}/progress`, { target: 'dump', bytesRead: 10, bytesTotal: 100, bytesSent: 5, bytesNew: 5 }),
    );
    expectReply(API_ROUTES.renewLease, await as(agent.token, 'POST', `/v1/runs/${claimed.id}/lease`, {}));
    expectReply<RunView>(API_ROUTES.getRun, await admin('GET', `/v1/runs/${claimed.id}`), 'getRun (running, with progress)');

    // Two sessions: the second has a parent snapshot; one batch is sent twice (a retry).
    const commits: CommitResponse[] = [];
    for (const [i, data] of [randomData(160 * 1024, 1), Buffer.concat([randomData(160 * 1024, 1), randomData(40 * 1024, 2)])].entries()) {
      const session = expectReply<BeginSessionResponse>(
        API_ROUTES.beginSession,
        await as(agent.token, 'POST', '/v1/sessions', { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: claimed.id }),
        `beginSession ${i + 1}`,
      );
      expect(session.parent === null).toBe(i === 0);
      expect(session.parentSnapshot === undefined).toBe(i === 0);
      const chunks = await chunkFor(session, data);
      const first = chunks.slice(0, 4);
      const blobs = await encodeBlobs(await codecFor(session), first);
      const body = batchBody(refsOf(first), i === 0 ? blobs : []);
      expectReply(API_ROUTES.uploadBatch, await putBatch(s, agent.token, session.session, 0, body), `uploadBatch ${i + 1}`);
      const again = expectReply(API_ROUTES.uploadBatch, await putBatch(s, agent.token, session.session, 0, body), `uploadBatch ${i + 1} (retry)`);
      expect(again.duplicate).toBe(true);
      const { batches } = await sendBatches(s, agent.token, session, chunks.slice(4), { firstSeq: 1 });
      commits.push(
        expectReply<CommitResponse>(
          API_ROUTES.commitSession,
          await commit(s, agent.token, session, commitRequest(session, data, chunks, batches)),
          `commitSession ${i + 1}`,
        ),
      );
    }
    const target = (c: CommitResponse, name: string) => ({ name, ok: true, snapshot: c.snapshot, totals: c.totals, dedupRatio: c.dedupRatio, durationMs: 12 });
    const finished = expectReply<RunView>(
      API_ROUTES.finishRun,
      await as(agent.token, 'POST', `/v1/runs/${claimed.id}/finish`, {
        state: 'succeeded',
        targets: [target(commits[0]!, 'dump'), { ...target(commits[1]!, 'dump'), files: { read: 3, unchanged: 1, bytesUnchanged: 4096, skipped: 0 } }],
      }),
    );
    expect(finished.targets.map((x) => x.snapshot?.id)).toEqual(commits.map((c) => c.snapshot.id));

    // A session abandoned by its agent: a failed session record with its reason.
    const abandoned = expectReply<BeginSessionResponse>(
      API_ROUTES.beginSession,
      await as(agent.token, 'POST', '/v1/sessions', { job, source: { name: 'other', kind: 'stream' }, chunking: 'db-dump' }),
    );
    expectReply(API_ROUTES.abortSession, await as(agent.token, 'DELETE', `/v1/sessions/${abandoned.session}`));

    // --- a run with a bandwidth cap, cancelled while running; a queued run cancelled ----------------
    const capped = expectReply<RunView>(
      API_ROUTES.createRun,
      await admin('POST', '/v1/runs', { agent: agent.name, job: 'ad-hoc', sources: ['cmd:true'], bandwidth: 1_000_000, hooks: { post: 'true' } }),
    );
    expect(capped.bandwidth).toBe(1_000_000);
    const running = expectReply<RunView>(API_ROUTES.agentWork, await as(agent.token, 'GET', '/v1/agent/work?wait=5'), 'agentWork (capped run)');
    expect(running.id).toBe(capped.id);
    const asked = expectReply<RunView>(API_ROUTES.cancelRun, await admin('POST', `/v1/runs/${capped.id}/cancel`), 'cancelRun (running)');
    expect(asked.cancelRequestedAt).toEqual(expect.any(String));
    const told = expectReply(API_ROUTES.renewLease, await as(agent.token, 'POST', `/v1/runs/${capped.id}/lease`, {}), 'renewLease (cancel asked)');
    expect(told.cancel).toBe(true);
    expect(
      expectReply(
        API_ROUTES.runProgress,
        await as(agent.token, 'POST', `/v1/runs/${capped.id}/progress`, { target: 'x', bytesRead: 0, bytesSent: 0, bytesNew: 0 }),
        'runProgress (cancel asked)',
      ).cancel,
    ).toBe(true);
    expectReply(
      API_ROUTES.finishRun,
      await as(agent.token, 'POST', `/v1/runs/${capped.id}/finish`, {
        state: 'cancelled',
        targets: [{ name: 'cmd:true', ok: false, error: 'the run was cancelled by an admin', durationMs: 1 }],
      }),
      'finishRun (cancelled)',
    );
    const waiting = expectReply<RunView>(API_ROUTES.createRun, await admin('POST', '/v1/runs', { agent: agent.name, job: 'ad-hoc', sources: ['cmd:true'] }));
    expectReply(API_ROUTES.cancelRun, await admin('POST', `/v1/runs/${waiting.id}/cancel`), 'cancelRun (queued)');

    // --- a restore run onto the agent ------------------------------------------------------------
    const restoreRun = expectReply<RunView>(
      API_ROUTES.createRun,
      await admin('POST', '/v1/runs', { agent: agent.name, job, sources: [], restore: { path: '/tmp/restored.img', force: true } }),
      'createRun (restore)',
    );
    expect(restoreRun.restore).toMatchObject({ snapshot: commits[1]!.snapshot.id, force: true });
    expectReply(API_ROUTES.agentWork, await as(agent.token, 'GET', '/v1/agent/work?wait=5'), 'agentWork (restore run)');
    const restored = { snapshot: commits[1]!.snapshot.id, path: '/tmp/restored.img', bytes: commits[1]!.snapshot.logicalBytes, wrote: 'stream' };
    expectReply(
      API_ROUTES.finishRun,
      await as(agent.token, 'POST', `/v1/runs/${restoreRun.id}/finish`, {
        state: 'succeeded',
        targets: [{ name: '/tmp/restored.img', ok: true, restored, durationMs: 40 }],
      }),
      'finishRun (restore)',
    );

    // --- maintenance: each real prune and verify is a task in the job's history -------------------
    const pruned = expectReply<{ results: unknown[] }>(API_ROUTES.prune, await admin('POST', '/v1/prune', { policy, dryRun: true }), 'prune (dry run)');
    expect(pruned.results).toHaveLength(1);
    expectReply(API_ROUTES.prune, await admin('POST', '/v1/prune', { job }));
    expectReply(API_ROUTES.verify, await admin('POST', '/v1/verify', { job, readData: true, subset: 100 }));
    expectReply(API_ROUTES.verify, await admin('POST', '/v1/verify', {}), 'verify (structure)');
    expectReply(API_ROUTES.gc, await admin('POST', '/v1/gc', { dryRun: true, graceMs: 0 }));

    // --- lists and reports ------------------------------------------------------------------------
    const { runs } = expectReply<{ runs: RunView[] }>(API_ROUTES.listRuns, await admin('GET', '/v1/runs'));
    expect(runs.length).toBe(4);
    expectReply(API_ROUTES.listRuns, await admin('GET', `/v1/runs?agent=${agent.name}`), 'listRuns (one agent)');
    const { jobs } = expectReply<{ jobs: unknown[] }>(API_ROUTES.listJobs, await admin('GET', '/v1/jobs'));
    expect(jobs).toHaveLength(2);
    const { entries } = expectReply<{ entries: { type: string }[] }>(API_ROUTES.jobHistory, await admin('GET', `/v1/jobs/${job}/history`));
    expect(new Set(entries.map((e) => e.type))).toEqual(new Set(['run', 'task']));
    const { sessions } = expectReply<{ sessions: { state: string }[] }>(API_ROUTES.listSessions, await admin('GET', '/v1/sessions'));
    expect(sessions.map((x) => x.state).sort()).toEqual(['committed', 'committed', 'failed']);
    expectReply(API_ROUTES.listSnapshots, await admin('GET', `/v1/snapshots?job=${job}`));
    expectReply(API_ROUTES.listSnapshots, await as(agent.token, 'GET', `/v1/snapshots?job=${job}`), 'listSnapshots (agent)');
    const { stores } = expectReply<{ stores: unknown[] }>(API_ROUTES.listStores, await admin('GET', '/v1/stores'));
    expect(stores.length).toBeGreaterThanOrEqual(2); // global and the policy's own
    expectReply(API_ROUTES.report, await admin('GET', '/v1/report'), 'report (no quota)');
    expectReply(API_ROUTES.report, await admin('GET', '/v1/report?quota=1000000000000&growthYears=2'), 'report (quota)');
    expectReply(API_ROUTES.report, await admin('GET', '/v1/report?quota=1'), 'report (full)');
  });

  it('an encrypted repository: the session answer carries the store secrets and the chunker seed', async () => {
    const s = (t = await startServer({ passphrase: 'correct horse battery staple', server: { scheduler: false } }));
    const agent = await addAgent(s);
    const job = uniqueName('job');
    expectReply(API_ROUTES.createRun, await call(s.url, 'POST', '/v1/runs', { token: s.admin, json: { agent: agent.name, job, sources: ['cmd:true'] } }));
    const session = expectReply<BeginSessionResponse>(
      API_ROUTES.beginSession,
      await call(s.url, 'POST', '/v1/sessions', { token: agent.token, json: { job, source: { name: 'disk', kind: 'file' }, chunking: 'vm-image' } }),
    );
    expect(session.store).toMatchObject({
      encrypted: true,
      secrets: { dataKey: expect.any(String), fingerprintKey: expect.any(String) },
      compression: 'zstd:3', // a new repository's stores, so the agent encodes with zstd
    });
    expect(session.chunker).toMatchObject({ kind: 'fastcdc', seed: expect.any(Object) });
    const data = randomData(100 * 1024, 3);
    const chunks = await chunkFor(session, data);
    const { batches } = await sendBatches(s, agent.token, session, chunks);
    expectReply(
      API_ROUTES.commitSession,
      await commit(s, agent.token, session, {
        ...commitRequest(session, data, chunks, batches),
        sourceStat: { size: data.length, mtimeNs: '1700000000000000000', ino: '42', dev: '2049' },
      }),
    );
    const again = expectReply<BeginSessionResponse>(
      API_ROUTES.beginSession,
      await call(s.url, 'POST', '/v1/sessions', { token: agent.token, json: { job, source: { name: 'disk', kind: 'file' }, chunking: 'vm-image' } }),
      'beginSession (with a parent that has a sourceStat)',
    );
    expect(again.parentSnapshot).toMatchObject({ kind: 'file', sameStore: true, sourceStat: { ino: '42' } });
  });
});
