/**
 * The API contract (@hoard/protocol's API_ROUTES) against the running server:
 *
 * - the OpenAPI document the server serves is a valid OpenAPI 3 document and has one
 *   operation per contract (path, method, operationId);
 * - every route, called with no token and with an admin, operator, viewer and agent token,
 *   is refused exactly when its `access` list says so (401 without a token, 403 `forbidden`
 *   for a role it does not list), and a refused call changes nothing;
 * - what operators and viewers may and may not do, API tokens kept as hashes, revoking;
 * - database passwords in source specs never reach people, only the agent that runs them.
 *
 * Only HTTP is used, as in api-replies.test.ts.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES, type Role, type RouteContract, type RunView } from '@hoard/protocol';
import { addAgent, agentWithJob, backup, beginSession, call, randomData, startServer, uniqueName, type Reply, type TestServer } from './helpers.js';

const ROUTES = Object.values(API_ROUTES as Record<string, RouteContract>);
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** `/v1/runs/:id` as OpenAPI writes it: `/v1/runs/{id}`. */
const openapiPath = (path: string): string => path.replace(/:([A-Za-z]+)/g, '{$1}');

/** The route's path with its parameters filled in (each one must be given). */
function fillPath(route: RouteContract, params: Record<string, string> = {}): string {
  return route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${route.id}: no value for :${name}`);
    return encodeURIComponent(value);
  });
}

/** A request to one route: path parameters, a query string, a JSON body. */
interface Sample {
  params?: Record<string, string>;
  query?: string;
  json?: unknown;
}

/**
 * Calls a route as its contract says it is called: a JSON body (`{}` unless given) for
 * routes that take one, an empty `application/octet-stream` body for binary ones, none
 * otherwise.
 */
function callRoute(base: string, route: RouteContract, token: string | undefined, sample: Sample = {}): Promise<Reply> {
  const path = fillPath(route, sample.params) + (sample.query ? `?${sample.query}` : '');
  if (route.replyPayload === 'events') return callStream(base, path, token);
  if (route.bodyPayload === 'binary') return call(base, route.method, path, { token, body: new Uint8Array(0), contentType: 'application/octet-stream' });
  if (route.body !== undefined) return call(base, route.method, path, { token, json: sample.json ?? {} });
  return call(base, route.method, path, { token });
}

/** An event stream never ends: its status (and a refusal's JSON body) is the answer; then the stream is closed. */
async function callStream(base: string, path: string, token: string | undefined): Promise<Reply> {
  const abort = new AbortController();
  const res = await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json') ? ((await res.json()) as Record<string, unknown>) : {};
  abort.abort();
  return { status: res.status, headers: res.headers, json, bytes: Buffer.from(JSON.stringify(json)) };
}

/** A valid policy document: one agent, a schedule, a retention. */
const policyYaml = (name: string, agent: string): string =>
  [
    `name: ${name}`,
    'sources:',
    `  - agent: ${agent}`,
    '    specs: ["cmd:true"]',
    'schedule: {timezone: UTC, full: "0 1 * * 0", incremental: daily}',
    'retention: {keep-last: 1}',
    '',
  ].join('\n');

const text = (r: Reply): string => r.bytes.toString('utf8');
const brief = (r: Reply): string => `${r.status} ${text(r).slice(0, 300)}`;

// --- 1 and 2: the document and the role walk, on one server --------------------------------

describe('the contract and the server agree', () => {
  let s: TestServer;
  /** The five callers of the walk; `undefined`: no token. */
  let callers: { name: string; role: Role | undefined; token: string | undefined }[];
  /** Per route id: the harmless request allowed callers send (a route without one fails the walk). */
  let safe: Record<string, Sample>;
  /**
   * Per route: a request that would change something if it were let through (an existing
   * agent revoked, a real session aborted, a run cancelled, a real gc). Refused callers
   * send these, so "nothing changed" means something.
   */
  let live: Record<string, Sample>;
  let agentA: Awaited<ReturnType<typeof agentWithJob>>;
  let agentB: Awaited<ReturnType<typeof agentWithJob>>;
  let policy: string;
  let sessionId: string;
  let runB: string;

  beforeAll(async () => {
    s = await startServer({ server: { scheduler: false } });
    const admin = (method: string, path: string, json?: unknown): Promise<Reply> => call(s.url, method, path, { token: s.admin, json });

    // Agent A: a job with a snapshot and an open session; agent B: a job with a queued run.
    agentA = await agentWithJob(s);
    agentB = await agentWithJob(s);
    const runs = (await admin('GET', '/v1/runs')).json.runs as RunView[];
    const runA = runs.find((r) => r.agent === agentA.agent)!;
    runB = runs.find((r) => r.agent === agentB.agent)!.id;
    // A's own run is cancelled, so its `GET /v1/agent/work` in the walk claims nothing.
    expect((await admin('POST', `/v1/runs/${runA.id}/cancel`)).status).toBe(200);
    const snapshot = (await backup(s, agentA, randomData(40_000, 7))).snapshot.id;
    sessionId = (await beginSession(s, agentA.token, agentA.job, 'open')).session;

    policy = uniqueName('walk-policy');
    const applied = await admin('POST', '/v1/policies', { document: policyYaml(policy, agentA.agent) });
    expect(applied.status, brief(applied)).toBe(200);

    const token = async (role: 'operator' | 'viewer', label: string): Promise<{ id: string; token: string }> => {
      const r = await admin('POST', '/v1/tokens', { role, label });
      expect(r.status, brief(r)).toBe(201);
      return { id: r.json.id as string, token: r.json.token as string };
    };
    const operator = await token('operator', 'walk operator');
    const viewer = await token('viewer', 'walk viewer');
    const victim = await token('viewer', 'a token no refused call may revoke');
    callers = [
      { name: 'no token', role: undefined, token: undefined },
      { name: 'admin', role: 'admin', token: s.admin },
      { name: 'operator', role: 'operator', token: operator.token },
      { name: 'viewer', role: 'viewer', token: viewer.token },
      { name: `agent ${agentA.agent}`, role: 'agent', token: agentA.token },
    ];

    const jobA = { job: agentA.job };
    const noSession = { id: 'no-such-session' };
    safe = {
      health: {},
      metrics: {},
      openapi: {},
      whoami: {},
      listStores: {},
      report: {},
      addToken: {}, // `{}` is refused by the schema: no token is made
      listTokens: {},
      revokeToken: { params: { id: 'deadbeefdeadbeef' } },
      addAgent: {},
      listAgents: {},
      revokeAgent: { params: { name: 'no-such-agent' } },
      rotateAgent: { params: { name: 'no-such-agent' } },
      agentHello: { json: { hostname: 'walk' } },
      agentWork: { query: 'wait=0' },
      applyPolicies: {},
      listPolicies: {},
      getPolicy: { params: { name: policy } },
      deletePolicy: { params: { name: 'no-such-policy' } },
      prune: { json: { dryRun: true } },
      gc: { json: { dryRun: true } },
      verify: { json: { job: agentA.job } },
      createRun: {},
      listRuns: {},
      // Agent A asks for B's run: refused for ownership, not for its role.
      getRun: { params: { id: runB } },
      runProgress: { params: { id: runB } },
      renewLease: { params: { id: runB } },
      finishRun: { params: { id: runB } },
      cancelRun: { params: { id: 'no-such-run' } },
      listJobs: {},
      runJob: { params: { job: 'no-such-job' } },
      jobHistory: { params: jobA },
      deleteJob: { params: { job: 'no-such-job' } },
      renameJob: { params: { job: 'no-such-job' } },
      beginSession: {},
      listSessions: {},
      queryMissing: { params: noSession },
      uploadBatch: { params: { ...noSession, seq: '0' } },
      commitSession: { params: noSession },
      abortSession: { params: noSession },
      listSnapshots: {},
      restore: { params: jobA },
      snapshotChunks: { params: { job: agentA.job, id: snapshot }, query: 'offset=0&length=1' },
      setProtection: { params: { job: agentA.job, id: 'ffffffffffffffff' } },
      pickSnapshot: { params: jobA },
      browseSnapshot: { params: { job: agentA.job, id: snapshot } },
      downloadSnapshot: { params: { job: agentA.job, id: snapshot } },
      checkPolicies: { json: { document: policyYaml('checked-only', agentA.agent) } },
    };
    live = {
      ...safe,
      addToken: { json: { role: 'admin', label: 'let through' } },
      revokeToken: { params: { id: victim.id } },
      addAgent: { json: { name: 'let-through' } },
      revokeAgent: { params: { name: agentB.agent } },
      rotateAgent: { params: { name: agentB.agent } },
      applyPolicies: { json: { document: policyYaml('let-through', agentA.agent) } },
      deletePolicy: { params: { name: policy } },
      prune: { json: {} },
      gc: { json: { graceMs: 0 } },
      createRun: { json: { agent: agentB.agent, job: 'let-through', sources: ['cmd:true'] } },
      runProgress: { params: { id: runB }, json: { target: 'x', bytesRead: 1, bytesSent: 1, bytesNew: 1 } },
      finishRun: { params: { id: runB }, json: { state: 'failed', targets: [], error: 'let through' } },
      cancelRun: { params: { id: runB } },
      runJob: { params: jobA, json: { full: true } },
      deleteJob: { params: jobA },
      renameJob: { params: jobA, json: { name: 'let-through' } },
      beginSession: { json: { job: agentA.job, source: { name: 'let-through', kind: 'stream' }, chunking: 'db-dump' } },
      queryMissing: { params: { id: sessionId } },
      uploadBatch: { params: { id: sessionId, seq: '0' } },
      commitSession: { params: { id: sessionId } },
      abortSession: { params: { id: sessionId } },
      setProtection: { params: { job: agentA.job, id: snapshot }, json: { protected: true } },
    };
  });
  afterAll(async () => {
    await s?.close();
  });

  type OpenApiDoc = { openapi?: string; paths?: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };
  const fetchDocument = async (): Promise<OpenApiDoc & Record<string, unknown>> => {
    const r = await call(s.url, 'GET', '/v1/openapi.json');
    expect(r.status, brief(r)).toBe(200);
    return r.json as OpenApiDoc & Record<string, unknown>;
  };

  // OpenAPI 3.1: its schemas are JSON Schema, so TypeBox's (numeric exclusiveMinimum, null
  // in unions) are valid as they are.
  it('GET /v1/openapi.json (no token) is a valid OpenAPI 3.1 document', async () => {
    const doc = await fetchDocument();
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.valid, JSON.stringify(result.errors, null, 2)).toBe(true);
  });

  it('the OpenAPI document has one operation per route of API_ROUTES, with its operationId, and no other', async () => {
    const doc = await fetchDocument();
    const wrong: string[] = [];
    for (const route of ROUTES) {
      const operation = doc.paths?.[openapiPath(route.path)]?.[route.method.toLowerCase()];
      if (operation?.operationId !== route.id)
        wrong.push(`${route.method} ${openapiPath(route.path)} (${route.id}): ${operation ? `operationId ${operation.operationId}` : 'absent'}`);
      // A token is asked for exactly where the contract needs one.
      else if ((operation.security !== undefined) !== (route.access !== 'public'))
        wrong.push(`${route.id}: security ${JSON.stringify(operation.security)} but access ${JSON.stringify(route.access)}`);
    }
    expect(wrong, 'routes of API_ROUTES the document lacks or describes wrongly').toEqual([]);
    const operations = Object.values(doc.paths ?? {}).flatMap((methods) => Object.values(methods).map((o) => o.operationId));
    expect(operations.sort()).toEqual(ROUTES.map((route) => route.id).sort());
  });

  it('every route refuses every caller its access list leaves out (401 without a token, 403 forbidden), and a refused call changes nothing', async () => {
    const before = await state(s);
    const wrong: string[] = [];
    let refused = 0;
    for (const route of ROUTES) {
      if (route.access === 'public') continue;
      for (const caller of callers) {
        if (caller.role !== undefined && route.access.includes(caller.role)) continue;
        refused++;
        const r = await callRoute(s.url, route, caller.token, sampleFor(live, route));
        const what = `${route.method} ${route.path} (${route.id}) as ${caller.name}`;
        if (caller.token === undefined) {
          if (r.status !== 401 || r.json.code !== 'unauthenticated') wrong.push(`${what}: expected 401 unauthenticated, got ${brief(r)}`);
        } else if (r.status !== 403 || r.json.code !== 'forbidden' || !/may not call/.test(String(r.json.message))) {
          wrong.push(`${what}: expected 403 forbidden (may not call), got ${brief(r)}`);
        } else if (r.json.status !== 403 || r.json.error !== r.json.message) {
          wrong.push(`${what}: error body ${text(r)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    // Every route that needs a token was called without one and by each role it leaves out.
    const expected = ROUTES.filter((route) => route.access !== 'public').reduce(
      (n, route) => n + 1 + callers.filter((c) => c.role !== undefined && !route.access.includes(c.role)).length,
      0,
    );
    expect(refused).toBe(expected);
    expect(refused).toBeGreaterThan(ROUTES.length);
    expect(await state(s), 'what the admin sees after the refused calls').toEqual(before);
  });

  it('every route lets through every caller its access list names (a handler may still refuse for other reasons)', async () => {
    const wrong: string[] = [];
    const seen: string[] = [];
    for (const route of ROUTES) {
      for (const caller of callers) {
        if (route.access !== 'public' && (caller.role === undefined || !route.access.includes(caller.role))) continue;
        const r = await callRoute(s.url, route, caller.token, sampleFor(safe, route));
        const what = `${route.method} ${route.path} (${route.id}) as ${caller.name}`;
        seen.push(`${route.id} ${caller.name} ${r.status}`);
        if (r.status === 401) wrong.push(`${what}: 401 ${text(r)}`);
        else if (r.status === 403 && /may not call/.test(String(r.json.message))) wrong.push(`${what}: refused for its role: ${text(r)}`);
        else if (r.status >= 500) wrong.push(`${what}: server error ${brief(r)}`);
      }
    }
    expect(wrong).toEqual([]);
    // The public routes answer everyone, and the ownership checks are not role refusals.
    expect(seen).toEqual(
      expect.arrayContaining([
        'health no token 200',
        'openapi no token 200',
        'metrics no token 200',
        `getRun agent ${agentA.agent} 403`,
        `listSnapshots agent ${agentA.agent} 403`,
      ]),
    );
    // The walk's harmless requests left the fixture as it was.
    const agents = (await call(s.url, 'GET', '/v1/agents', { token: s.admin })).json.agents as { name: string; revokedAt?: string }[];
    expect(agents.filter((a) => a.revokedAt !== undefined)).toEqual([]);
    expect((await call(s.url, 'GET', `/v1/policies/${policy}`, { token: s.admin })).status).toBe(200);
    expect((await call(s.url, 'GET', `/v1/runs/${runB}`, { token: s.admin })).json.state).toBe('queued');
  });
});

/**
 * The walk's request for a route. A route added to the contract without an entry in the
 * tables is still walked, with parameters that name nothing (`no-such-job`): give it real
 * targets in `live` so that "nothing changed" means something for it too.
 */
function sampleFor(table: Record<string, Sample>, route: RouteContract): Sample {
  return (
    table[route.id] ?? {
      params: Object.fromEntries([...route.path.matchAll(/:([A-Za-z]+)/g)].map(([, name]) => [name!, name === 'seq' ? '0' : `no-such-${name!}`])),
    }
  );
}

/** What an admin sees of the server, without what moves with the clock. */
async function state(s: TestServer): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const path of ['/v1/agents', '/v1/tokens', '/v1/policies', '/v1/runs', '/v1/jobs', '/v1/sessions', '/v1/snapshots']) {
    const r = await call(s.url, 'GET', path, { token: s.admin });
    expect(r.status, `${path}: ${brief(r)}`).toBe(200);
    out[path] = JSON.parse(text(r), (key, value: unknown) => (/^next/.test(key) ? undefined : value));
  }
  return out;
}

// --- 3: operators, viewers and API tokens -----------------------------------------------------

describe('operators and viewers', () => {
  let s: TestServer;
  let a: Awaited<ReturnType<typeof agentWithJob>>;
  let data: Buffer;
  let snapshot: string;
  let operator: string;
  let viewer: string;

  beforeAll(async () => {
    s = await startServer({ server: { scheduler: false } });
    a = await agentWithJob(s);
    data = randomData(60_000, 11);
    snapshot = (await backup(s, a, data)).snapshot.id;
    const make = async (role: string) => (await call(s.url, 'POST', '/v1/tokens', { token: s.admin, json: { role, label: role } })).json.token as string;
    operator = await make('operator');
    viewer = await make('viewer');
  });
  afterAll(async () => {
    await s?.close();
  });

  const expectForbidden = (r: Reply, what: string): void => {
    expect({ status: r.status, code: r.json.code }, `${what}: ${text(r)}`).toEqual({ status: 403, code: 'forbidden' });
  };

  it('an operator lists, restores, runs a job now and queues restore runs', async () => {
    const as = (method: string, path: string, json?: unknown) => call(s.url, method, path, { token: operator, json });
    expect((await as('GET', '/v1/whoami')).json.role).toBe('operator');
    const jobs = await as('GET', '/v1/jobs');
    expect(jobs.status).toBe(200);
    expect((jobs.json.jobs as { job: string }[]).map((j) => j.job)).toContain(a.job);
    const snapshots = await as('GET', '/v1/snapshots');
    expect(snapshots.status).toBe(200);
    expect((snapshots.json.snapshots as { id: string }[]).map((x) => x.id)).toContain(snapshot);

    const restored = await as('GET', `/v1/jobs/${a.job}/restore?id=${snapshot}`);
    expect(restored.status, brief(restored)).toBe(200);
    expect(restored.bytes.equals(data)).toBe(true);

    const run = await as('POST', `/v1/jobs/${a.job}/run`, {});
    expect(run.status, brief(run)).toBe(201);
    expect(run.json).toMatchObject({ job: a.job, agent: a.agent, state: 'queued' });

    const restoreRun = await as('POST', '/v1/runs', { agent: a.agent, job: a.job, sources: [], restore: { path: '/tmp/restored.img' } });
    expect(restoreRun.status, brief(restoreRun)).toBe(201);
    expect(restoreRun.json.restore).toMatchObject({ snapshot, path: '/tmp/restored.img' });
    const cancelled = await as('POST', `/v1/runs/${restoreRun.json.id as string}/cancel`);
    expect(cancelled.status, brief(cancelled)).toBe(200);
  });

  it('an operator never changes policies, agents or what is backed up, and never collects garbage', async () => {
    const as = (method: string, path: string, json?: unknown) => call(s.url, method, path, { token: operator, json });
    expectForbidden(await as('POST', '/v1/policies', { document: policyYaml('operator-policy', a.agent) }), 'POST /v1/policies');
    expectForbidden(await as('DELETE', `/v1/agents/${a.agent}`), 'DELETE /v1/agents/NAME');
    expectForbidden(await as('DELETE', '/v1/agents/x'), 'DELETE /v1/agents/x');
    expectForbidden(await as('POST', '/v1/agents', { name: 'operator-agent' }), 'POST /v1/agents');
    expectForbidden(await as('POST', '/v1/gc', { dryRun: true }), 'POST /v1/gc');
    // A backup run of a new source is an admin's decision (refused by the handler, after the body).
    const backupRun = await as('POST', '/v1/runs', { agent: a.agent, job: 'operator-job', sources: ['cmd:true'] });
    expectForbidden(backupRun, 'POST /v1/runs with sources');
    expect(backupRun.json.message).toMatch(/restore runs only/);

    const admin = (path: string) => call(s.url, 'GET', path, { token: s.admin });
    expect((await admin('/v1/policies')).json.policies).toEqual([]);
    const agents = (await admin('/v1/agents')).json.agents as { name: string; revokedAt?: string }[];
    expect(agents.map((x) => x.name)).toEqual([a.agent]);
    expect(agents[0]!.revokedAt).toBeUndefined();
    expect(((await admin('/v1/jobs')).json.jobs as { job: string }[]).map((j) => j.job)).toEqual([a.job]);
  });

  it('a viewer lists and reads reports, but restores nothing and changes nothing', async () => {
    const as = (method: string, path: string, json?: unknown) => call(s.url, method, path, { token: viewer, json });
    expect((await as('GET', '/v1/whoami')).json.role).toBe('viewer');
    const runs = (await as('GET', '/v1/runs')).json.runs as RunView[];
    expect(runs.length).toBeGreaterThan(0);
    for (const path of [
      '/v1/jobs',
      '/v1/snapshots',
      `/v1/snapshots?job=${a.job}`,
      '/v1/agents',
      '/v1/policies',
      '/v1/stores',
      '/v1/report',
      '/v1/sessions',
      `/v1/jobs/${a.job}/history`,
      `/v1/runs/${runs[0]!.id}`,
    ]) {
      const r = await as('GET', path);
      expect(r.status, `GET ${path}: ${brief(r)}`).toBe(200);
    }
    expectForbidden(await as('GET', `/v1/jobs/${a.job}/restore`), 'GET /v1/jobs/JOB/restore');
    expectForbidden(await as('GET', `/v1/jobs/${a.job}/restore?id=${snapshot}`), 'GET /v1/jobs/JOB/restore?id=');

    const before = await state(s);
    // The console's own session (sign-in with a token, sign-out of one's session) changes no data.
    const writes = ROUTES.filter((route) => route.method !== 'GET' && route.tag !== 'console');
    expect(writes.length).toBeGreaterThan(20);
    for (const route of writes) {
      expect(route.access === 'public' || !route.access.includes('viewer'), `${route.id} lets viewers write`).toBe(true);
      const params = Object.fromEntries(
        [...route.path.matchAll(/:([A-Za-z]+)/g)].map(([, name]) => [name!, name === 'seq' ? '0' : name === 'job' ? a.job : name === 'name' ? a.agent : 'x1']),
      );
      const r = await callRoute(s.url, route, viewer, { params });
      expectForbidden(r, `${route.method} ${route.path} as viewer`);
      expect(r.json.message).toMatch(/may not call/);
    }
    expect(await state(s)).toEqual(before);
  });
});

describe('API tokens', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer({ server: { scheduler: false } });
  });
  afterAll(async () => {
    await s?.close();
  });

  const admin = (method: string, path: string, json?: unknown) => call(s.url, method, path, { token: s.admin, json });

  it('are kept as hashes: the catalog files and GET /v1/tokens never hold the token, the id is a prefix of its SHA-256', async () => {
    const made = await admin('POST', '/v1/tokens', { role: 'operator', label: 'backup script' });
    expect(made.status, brief(made)).toBe(201);
    const token = made.json.token as string;
    const id = made.json.id as string;
    expect(made.json).toMatchObject({ role: 'operator', label: 'backup script' });
    expect(id.length).toBeGreaterThanOrEqual(8);
    expect(sha256(token).startsWith(id)).toBe(true);
    expect(token.includes(id)).toBe(false);

    const list = await admin('GET', '/v1/tokens');
    expect(list.status).toBe(200);
    expect(text(list)).not.toContain(token);
    expect(text(list)).not.toContain(s.admin);
    const tokens = list.json.tokens as { id: string; role: string; label: string }[];
    expect(tokens.find((x) => x.label === 'backup script')).toMatchObject({ id, role: 'operator' });
    for (const x of tokens) expect(Object.keys(x).sort()).toEqual(['createdAt', 'id', 'label', 'role']);
    expect(tokens.find((x) => x.role === 'admin')!.id).toBe(sha256(s.admin).slice(0, id.length));

    // The catalog on disk: neither token, nor the random part of one, in any file.
    const secret = token.slice(token.lastIndexOf('_') + 1);
    const files = await listFiles(join(s.dir, 'catalog'));
    expect(files.length).toBeGreaterThan(0);
    let hashes = 0;
    for (const file of files) {
      const bytes = await readFile(file);
      expect(bytes.includes(token), file).toBe(false);
      expect(bytes.includes(secret), file).toBe(false);
      expect(bytes.includes(s.admin), file).toBe(false);
      if (bytes.includes(sha256(token))) hashes++;
    }
    // LevelDB's write-ahead log holds the record as written (not compressed): the hash is there.
    expect(hashes).toBeGreaterThan(0);
  });

  it('a revoked token is refused at once; the last admin token cannot be revoked', async () => {
    const made = await admin('POST', '/v1/tokens', { role: 'viewer', label: 'short-lived' });
    const token = made.json.token as string;
    expect((await call(s.url, 'GET', '/v1/whoami', { token })).json).toMatchObject({ role: 'viewer' });
    const revoked = await admin('DELETE', `/v1/tokens/${made.json.id as string}`);
    expect(revoked.status, brief(revoked)).toBe(200);
    expect(revoked.json).toEqual({ id: made.json.id, revoked: true });
    for (const path of ['/v1/whoami', '/v1/jobs']) {
      const r = await call(s.url, 'GET', path, { token });
      expect({ status: r.status, code: r.json.code }, path).toEqual({ status: 401, code: 'unauthenticated' });
    }
    expect(text(await admin('GET', '/v1/tokens'))).not.toContain('short-lived');

    // The one admin token: refused with 409, and it still works.
    const first = sha256(s.admin).slice(0, 16);
    const last = await admin('DELETE', `/v1/tokens/${first}`);
    expect({ status: last.status, code: last.json.code }, text(last)).toEqual({ status: 409, code: 'conflict' });
    expect((await admin('GET', '/v1/whoami')).json.role).toBe('admin');

    // With a second admin token the first can go; then the second is the last.
    const second = await admin('POST', '/v1/tokens', { role: 'admin', label: 'second admin' });
    expect(second.status).toBe(201);
    expect((await admin('DELETE', `/v1/tokens/${first}`)).status).toBe(200);
    expect((await admin('GET', '/v1/whoami')).status).toBe(401);
    const again = await call(s.url, 'DELETE', `/v1/tokens/${second.json.id as string}`, { token: second.json.token as string });
    expect({ status: again.status, code: again.json.code }, text(again)).toEqual({ status: 409, code: 'conflict' });
    expect((await call(s.url, 'GET', '/v1/whoami', { token: second.json.token as string })).json.role).toBe('admin');
  });
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

// --- 4: secrets in source specs -----------------------------------------------------------------

describe('database passwords in source specs', () => {
  const SPEC = 'postgres://u:secret@127.0.0.1:1/db';
  const SHOWN = 'postgres://u:***@127.0.0.1:1/db';
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer({ server: { scheduler: false } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('people see *** (admin, operator, viewer); the agent that runs the job gets the spec whole', async () => {
    const agent = await addAgent(s);
    const job = uniqueName('pg');
    const people: [string, string][] = [['admin', s.admin]];
    for (const role of ['operator', 'viewer']) {
      const r = await call(s.url, 'POST', '/v1/tokens', { token: s.admin, json: { role, label: role } });
      people.push([role, r.json.token as string]);
    }
    const expectHidden = (r: Reply, what: string): void => {
      expect(r.status, `${what}: ${brief(r)}`).toBeLessThan(300);
      expect(text(r), what).not.toContain('secret');
      expect(text(r), what).toContain(SHOWN);
    };

    const created = await call(s.url, 'POST', '/v1/runs', { token: s.admin, json: { agent: agent.name, job, sources: [SPEC] } });
    expect(created.status, brief(created)).toBe(201);
    expectHidden(created, 'POST /v1/runs');
    expect(created.json.sources).toEqual([SHOWN]);
    const id = created.json.id as string;

    const look = async (when: string) => {
      for (const [role, token] of people) {
        for (const path of ['/v1/runs', `/v1/runs?agent=${agent.name}`, `/v1/runs/${id}`, '/v1/jobs']) {
          expectHidden(await call(s.url, 'GET', path, { token }), `GET ${path} as ${role} (${when})`);
        }
        const history = await call(s.url, 'GET', `/v1/jobs/${job}/history`, { token });
        expect(history.status).toBe(200);
        expect(text(history), `history as ${role}`).not.toContain('secret');
      }
    };
    await look('queued');

    const work = await call(s.url, 'GET', '/v1/agent/work?wait=1', { token: agent.token });
    expect(work.status, brief(work)).toBe(200);
    expect(work.json).toMatchObject({ id, sources: [SPEC] });
    const own = await call(s.url, 'GET', `/v1/runs/${id}`, { token: agent.token });
    expect(own.json.sources).toEqual([SPEC]);
    await look('running');

    // Runs queued and cancelled by an operator: the answers are redacted too.
    const operator = people.find(([role]) => role === 'operator')![1];
    const again = await call(s.url, 'POST', `/v1/jobs/${job}/run`, { token: operator, json: {} });
    expect(again.status, brief(again)).toBe(201);
    expectHidden(again, 'POST /v1/jobs/JOB/run');
    const cancelled = await call(s.url, 'POST', `/v1/runs/${again.json.id as string}/cancel`, { token: operator });
    expectHidden(cancelled, 'POST /v1/runs/ID/cancel');
  });
});
