/**
 * Who may call what: tokens (none, unknown, revoked), admin-only routes, and agents kept
 * to their own jobs, sessions and snapshots. Then names: job and agent names that could
 * walk out of the repository are refused with the allowed characters named, and nothing
 * appears on disk outside the repository.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  agentWithJob,
  backup,
  batchBody,
  beginSession,
  call,
  chunkFor,
  codecFor,
  commit,
  commitRequest,
  encodeBlobs,
  expectError,
  expectStillServes,
  fingerprintQuery,
  putBatch,
  randomData,
  rawRequest,
  refsOf,
  restoreBytes,
  startServer,
  type TestServer,
} from './helpers.js';

let t: TestServer;
let a: Awaited<ReturnType<typeof agentWithJob>>;
let b: Awaited<ReturnType<typeof agentWithJob>>;
let probe: Awaited<ReturnType<typeof agentWithJob>>;

beforeAll(async () => {
  t = await startServer();
  [a, b, probe] = [await agentWithJob(t), await agentWithJob(t), await agentWithJob(t)];
  await backup(t, a, randomData(200_000, 1));
  await backup(t, b, randomData(200_000, 2));
});
afterAll(async () => {
  await t?.close();
});
// After every refused request: a good session still commits, old snapshots still restore.
afterEach(async () => {
  await expectStillServes(t, probe);
});

describe('tokens', () => {
  it('no token: 401 naming the Authorization header, on admin, agent and restore routes', async () => {
    for (const [method, path] of [
      ['GET', '/v1/stores'],
      ['GET', '/v1/agents'],
      ['POST', '/v1/sessions'],
      ['GET', `/v1/jobs/${a.job}/restore`],
      ['GET', '/v1/snapshots'],
    ] as const) {
      expectError(await call(t.url, method, path), 401, /no token: send "Authorization: Bearer TOKEN"/);
    }
  });

  it('a malformed Authorization header: 401', async () => {
    const r = await fetch(`${t.url}/v1/stores`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expectError({ status: r.status, json: (await r.json()) as Record<string, unknown> }, 401, /must be "Bearer TOKEN"/);
  });

  it('an unknown token: 401', async () => {
    expectError(await call(t.url, 'GET', '/v1/stores', { token: 'hoard_agent_not-a-real-token' }), 401, /unknown or revoked token/);
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: `${a.token}x`, json: { job: a.job, source: { name: 'x', kind: 'stream' }, chunking: 'db-dump' } }),
      401,
      /unknown or revoked token/,
    );
  });

  it('a revoked agent: 401 for new calls and for its open session; its snapshots stay restorable by the admin', async () => {
    const c = await agentWithJob(t);
    const data = randomData(100_000, 3);
    await backup(t, c, data);
    t.committed.pop(); // restored below with the admin token instead
    const session = await beginSession(t, c.token, c.job, 'open-at-revocation');
    const chunks = await chunkFor(session, randomData(50_000, 4));

    const revoked = await call(t.url, 'DELETE', `/v1/agents/${c.agent}`, { token: t.admin });
    expect(revoked.status).toBe(200);
    expect(revoked.json.revokedAt).toEqual(expect.any(String));

    expectError(await call(t.url, 'POST', '/v1/agent/hello', { token: c.token, json: { hostname: 'h', version: '1' } }), 401, /unknown or revoked token/);
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: c.token, json: { job: c.job, source: { name: 'x', kind: 'stream' }, chunking: 'db-dump' } }),
      401,
      /revoked/,
    );
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, {
        token: c.token,
        body: fingerprintQuery(chunks),
        contentType: 'application/octet-stream',
      }),
      401,
      /revoked/,
    );
    expectError(await commit(t, c.token, session, commitRequest(session, Buffer.alloc(0), [], 0)), 401, /revoked/);
    expectError(await restoreBytes(t, c.token, c.job), 401, /revoked/);
    // A run can no longer be queued for it either.
    expectError(
      await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: c.agent, job: c.job, sources: ['cmd:true'] } }),
      404,
      new RegExp(`no agent ${c.agent}`),
    );

    const restored = await restoreBytes(t, t.admin, c.job);
    expect(restored.status).toBe(200);
    expect(restored.bytes.equals(data)).toBe(true);
  });

  // The server keeps verified tokens in memory (token-cache.ts): each token below is used
  // (and so cached) right before it is revoked or rotated, and must fail the next request.
  it('a token used a moment ago is refused on the very next request after a revoke or rotate (agents and API tokens)', async () => {
    const hello = (token: string) => call(t.url, 'POST', '/v1/agent/hello', { token, json: { hostname: 'h', version: '1' } });
    const c = await agentWithJob(t);
    expect((await hello(c.token)).status).toBe(200);
    expect((await hello(c.token)).status).toBe(200);

    const rotated = await call(t.url, 'POST', `/v1/agents/${c.agent}/rotate`, { token: t.admin });
    expect(rotated.status).toBe(200);
    const newToken = rotated.json.token as string;
    expectError(await hello(c.token), 401, /unknown or revoked token/);
    expect((await hello(newToken)).json).toMatchObject({ agent: c.agent });

    expect((await call(t.url, 'DELETE', `/v1/agents/${c.agent}`, { token: t.admin })).status).toBe(200);
    expectError(await hello(newToken), 401, /unknown or revoked token/);
    // Added again under the same name: the new token works, the revoked ones stay refused.
    const again = await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: { name: c.agent } });
    expect(again.status).toBe(201);
    expect((await hello(again.json.token as string)).json).toMatchObject({ agent: c.agent });
    expectError(await hello(newToken), 401, /unknown or revoked token/);
    expectError(await hello(c.token), 401, /unknown or revoked token/);

    const viewer = await call(t.url, 'POST', '/v1/tokens', { token: t.admin, json: { role: 'viewer', label: 'cached' } });
    expect(viewer.status).toBe(201);
    const viewerToken = viewer.json.token as string;
    expect((await call(t.url, 'GET', '/v1/stores', { token: viewerToken })).status).toBe(200);
    expect((await call(t.url, 'DELETE', `/v1/tokens/${viewer.json.id as string}`, { token: t.admin })).status).toBe(200);
    expectError(await call(t.url, 'GET', '/v1/stores', { token: viewerToken }), 401, /unknown or revoked token/);
  });

  it('an agent token on admin routes: 403 naming the admin token', async () => {
    for (const [method, path, json] of [
      ['POST', '/v1/agents', { name: 'sneaky' }],
      ['GET', '/v1/agents', undefined],
      ['DELETE', `/v1/agents/${b.agent}`, undefined],
      ['POST', '/v1/runs', { agent: a.agent, job: b.job, sources: ['cmd:true'] }],
      ['GET', '/v1/runs', undefined],
      ['GET', '/v1/sessions', undefined],
    ] as const) {
      expectError(await call(t.url, method, path, { token: a.token, json }), 403, new RegExp(`agent ${a.agent} may not call ${method} .+: it needs an admin`));
    }
    // Nothing of that happened: b is not revoked, no agent "sneaky", b's job still b's.
    const agents = (await call(t.url, 'GET', '/v1/agents', { token: t.admin })).json.agents as { name: string; revokedAt?: string }[];
    expect(agents.find((x) => x.name === b.agent)?.revokedAt).toBeUndefined();
    expect(agents.some((x) => x.name === 'sneaky')).toBe(false);
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { job: b.job, source: { name: 'x', kind: 'stream' }, chunking: 'db-dump' } }),
      403,
      /belongs to agent/,
    );
  });

  it('adding an agent twice: 409; revoking an unknown agent: 404', async () => {
    expectError(await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: { name: a.agent } }), 409, new RegExp(a.agent));
    expectError(await call(t.url, 'DELETE', '/v1/agents/nobody-here', { token: t.admin }), 404, /nobody-here/);
    // The first agent's token still works.
    expect((await call(t.url, 'POST', '/v1/agent/hello', { token: a.token, json: { hostname: 'h', version: '1' } })).json).toMatchObject({ agent: a.agent });
  });

  it('the admin token on agent-only routes: 403', async () => {
    expectError(
      await call(t.url, 'POST', '/v1/agent/hello', { token: t.admin, json: { hostname: 'h', version: '1' } }),
      403,
      /a token of role admin may not call POST \/v1\/agent\/hello: it needs an agent token/,
    );
    expectError(await call(t.url, 'GET', '/v1/agent/work', { token: t.admin }), 403, /it needs an agent token/);
  });
});

describe('agents stay within their own jobs', () => {
  it("agent A beginning a session for agent B's job: 403 naming the owner", async () => {
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { job: b.job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' } }),
      403,
      new RegExp(`agent ${a.agent} may not write job ${b.job}: it belongs to agent ${b.agent}`),
    );
  });

  it('an agent beginning a session for a job nobody defined: 403 saying an admin defines it', async () => {
    expectError(
      await call(t.url, 'POST', '/v1/sessions', {
        token: a.token,
        json: { job: 'never-defined', source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' },
      }),
      403,
      /job never-defined is not defined on this server; an admin defines it/,
    );
  });

  it("agent A naming agent B's run in its own session: 403", async () => {
    const run = await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: b.agent, job: b.job, sources: ['cmd:true'] } });
    expect(run.status).toBe(201);
    expectError(
      await call(t.url, 'POST', '/v1/sessions', {
        token: a.token,
        json: { job: a.job, run: run.json.id, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' },
      }),
      403,
      new RegExp(`run ${run.json.id as string} belongs to agent ${b.agent}`),
    );
  });

  it("agent A using agent B's session: 403 on every session call; B's session is untouched and commits", async () => {
    const data = randomData(120_000, 5);
    const session = await beginSession(t, b.token, b.job, 'shared-id');
    const chunks = await chunkFor(session, data);
    const blobs = await encodeBlobs(await codecFor(session), chunks);
    const body = batchBody(refsOf(chunks), blobs);
    const belongs = new RegExp(`session ${session.session} belongs to agent ${b.agent}`);

    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, {
        token: a.token,
        body: fingerprintQuery(chunks),
        contentType: 'application/octet-stream',
      }),
      403,
      belongs,
    );
    expectError(await putBatch(t, a.token, session.session, 0, body), 403, belongs);
    expectError(await commit(t, a.token, session, commitRequest(session, data, chunks, 1)), 403, belongs);
    expectError(await call(t.url, 'DELETE', `/v1/sessions/${session.session}`, { token: a.token }), 403, belongs);

    const put = await putBatch(t, b.token, session.session, 0, body);
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ seq: 0, duplicate: false });
    const done = await commit(t, b.token, session, commitRequest(session, data, chunks, 1));
    expect(done.status).toBe(200);
    t.committed.push({ job: b.job, token: b.token, snapshot: (done.json.snapshot as { id: string }).id, data });
  });

  it("an agent restoring or listing another agent's job: 403", async () => {
    expectError(await restoreBytes(t, a.token, b.job), 403, new RegExp(`agent ${a.agent} may not restore job ${b.job}`));
    expectError(await restoreBytes(t, a.token, 'never-defined'), 403, /may not restore job never-defined/);
    expectError(await call(t.url, 'GET', `/v1/snapshots?job=${b.job}`, { token: a.token }), 403, /only the snapshots of its own jobs/);
    expectError(await call(t.url, 'GET', '/v1/snapshots', { token: a.token }), 403, /only the snapshots of its own jobs/);
    // Its own job it may.
    expect((await call(t.url, 'GET', `/v1/snapshots?job=${a.job}`, { token: a.token })).status).toBe(200);
    expect((await restoreBytes(t, a.token, a.job)).status).toBe(200);
  });
});

describe('names that could leave the repository', () => {
  const JOB_RULE = /job must be 1-128 characters of letters, digits, '\.', '_' or '-', starting with a letter or digit/;
  const AGENT_RULE = /name must be 1-63 characters of lower-case letters, digits, '\.', '_' or '-', starting with a letter or digit/;
  const BAD_JOBS = ['../etc', 'a/b', '%2e%2e', '..', '.', '/etc/passwd', 'a\\b', '', ' job', 'job\u0000', 'x'.repeat(129), '.hidden', '-rf'];

  it('job names with path characters: 400 naming the allowed characters (defining a job, beginning a session)', async () => {
    for (const job of BAD_JOBS) {
      expectError(await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job, sources: ['cmd:true'] } }), 400, JOB_RULE);
      expectError(
        await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' } }),
        400,
        JOB_RULE,
      );
      expectError(
        await call(t.url, 'POST', '/v1/sessions', { token: t.admin, json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' } }),
        400,
        JOB_RULE,
      );
    }
    expectError(await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job: 42, sources: ['cmd:true'] } }), 400, JOB_RULE);
  });

  it('agent names with "/" or upper case: 400 naming the allowed characters', async () => {
    for (const name of ['a/b', '../x', 'Upper', 'UPPER', 'a b', '', '.x', '-x', 'x'.repeat(64), 'a%2fb', 'ágent']) {
      expectError(await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: { name } }), 400, AGENT_RULE);
    }
    expectError(await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: {} }), 400, AGENT_RULE);
    expectError(
      await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: '../root', job: 'fine', sources: ['cmd:true'] } }),
      400,
      /agent must be 1-63 characters of lower-case letters/,
    );
  });

  it("store names with path characters: 400 naming the allowed characters; another job's store: 400", async () => {
    for (const store of ['../etc', 'a/b', '..', '%2e%2e', '.keys']) {
      expectError(
        await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job: a.job, sources: ['cmd:true'], store } }),
        400,
        /invalid store name .*: use 1-128 letters, digits, '\.', '_' or '-', starting with a letter or digit/,
      );
    }
    const own = await call(t.url, 'POST', '/v1/runs', {
      token: t.admin,
      json: { agent: b.agent, job: `${b.job}-own`, sources: ['cmd:true'], store: `store-of-${b.agent}` },
    });
    expect(own.status, JSON.stringify(own.json)).toBe(201);
    expectError(
      await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job: a.job, sources: ['cmd:true'], store: `store-of-${b.agent}` } }),
      400,
      new RegExp(`fingerprint store store-of-${b.agent} belongs to .*; job ${a.job} cannot use it`),
    );
  });

  it('names in the URL path: encoded slashes and dots are refused, never resolved', async () => {
    const admin = { authorization: `Bearer ${t.admin}` };
    // Percent-encoded "/" reaches the handler decoded, and the name check refuses it.
    for (const path of ['/v1/jobs/..%2Fetc/restore', '/v1/jobs/a%2Fb/restore', '/v1/jobs/%252e%252e/restore', '/v1/jobs/..%5Cetc/restore']) {
      expectError(await rawRequest(t.url, { method: 'GET', path, headers: admin }), 400, JOB_RULE);
    }
    expectError(
      await rawRequest(t.url, { method: 'DELETE', path: '/v1/agents/a%2Fb', headers: admin }),
      400,
      /name must be 1-63 characters of lower-case letters/,
    );
    expectError(await rawRequest(t.url, { method: 'DELETE', path: '/v1/agents/..%2F..%2Fcatalog', headers: admin }), 400, /name must be/);
    // Dot segments are never resolved: a plain one makes a path no route has, an encoded
    // one reaches the name check as the name ".." and is refused.
    expectError(await rawRequest(t.url, { method: 'GET', path: '/v1/jobs/../etc/restore', headers: admin }), 404, /no route GET/);
    for (const path of ['/v1/jobs/%2e%2e/restore', '/v1/jobs/.%2E/restore']) {
      expectError(await rawRequest(t.url, { method: 'GET', path, headers: admin }), 400, JOB_RULE);
    }
    // A malformed escape is the client's mistake, not an internal error.
    expectError(await rawRequest(t.url, { method: 'GET', path: '/v1/jobs/%ZZ/restore', headers: admin }), 400, /malformed percent-encoding/);
    expectError(await rawRequest(t.url, { method: 'POST', path: '/v1/sessions/%E0%A4%A/missing', headers: admin }), 400, /malformed percent-encoding/);
  });

  it('nothing was created outside the repository and the catalog', async () => {
    expect((await readdir(t.dir)).sort()).toEqual(['catalog', 'repo']);
    for (const escaped of ['etc', 'passwd', '%2e%2e', 'a', 'x']) expect(existsSync(join(t.dir, escaped))).toBe(false);
    // Inside the repository every object key is made of the repository's own prefixes.
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(dir, e.name));
        else files.push(relative(t.repoDir, join(dir, e.name)));
      }
    };
    await walk(t.repoDir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(f).not.toMatch(/(^|\/)\.\.?(\/|$)/);
      expect(f).not.toMatch(/etc|%2e|passwd/i);
    }
  });
});
