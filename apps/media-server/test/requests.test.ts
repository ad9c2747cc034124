/**
 * Malformed requests at the HTTP level: bad JSON, oversized bodies, wrong content types,
 * unknown routes and methods, and fingerprint queries of the wrong size. Each is refused
 * with a status and a message naming the problem, and the server keeps serving.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_BYTES, MAX_QUERY_FINGERPRINTS } from '@hoard/protocol';
import {
  agentWithJob,
  backup,
  beginSession,
  call,
  chunkFor,
  commitRequest,
  expectError,
  expectStillServes,
  randomData,
  rawRequest,
  startServer,
  type TestServer,
} from './helpers.js';

let t: TestServer;
let a: Awaited<ReturnType<typeof agentWithJob>>;
let probe: Awaited<ReturnType<typeof agentWithJob>>;

beforeAll(async () => {
  t = await startServer();
  a = await agentWithJob(t);
  probe = await agentWithJob(t);
  await backup(t, a, randomData(200_000, 11));
});
afterAll(async () => {
  await t?.close();
});
afterEach(async () => {
  await expectStillServes(t, probe);
});

const sessionJson = () => ({ job: a.job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump' });
const BINARY = 'application/octet-stream';

describe('JSON bodies', () => {
  it('malformed JSON: 400 saying the body is not valid JSON', async () => {
    const session = await beginSession(t, a.token, a.job);
    for (const [path, token] of [
      ['/v1/agents', t.admin],
      ['/v1/runs', t.admin],
      ['/v1/sessions', a.token],
      [`/v1/sessions/${session.session}/commit`, a.token],
      ['/v1/agent/hello', a.token],
    ] as const) {
      for (const body of ['{', '{"job": }', "{'job': 'x'}", '\u0000', 'nul', '{"a":1}}']) {
        expectError(await call(t.url, 'POST', path, { token, body, contentType: 'application/json' }), 400, /request body is not valid JSON/);
      }
      expectError(await call(t.url, 'POST', path, { token, body: '', contentType: 'application/json' }), 400, /not valid JSON/);
    }
  });

  it('JSON of the wrong shape: 400 naming the field', async () => {
    expectError(await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: [] }), 400, /the request body must be a JSON object; got \[\]/);
    expectError(await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: null }), 400, /must be a JSON object/);
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { ...sessionJson(), chunking: 'bogus' } }),
      400,
      /chunking must be one of vm-image, db-dump, file; got "bogus"/,
    );
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { ...sessionJson(), source: { name: '', kind: 'stream' } } }),
      400,
      /name must be a non-empty string/,
    );
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { ...sessionJson(), source: { name: 'x', kind: 'tape' } } }),
      400,
      /kind must be one of file, block-device, stream/,
    );
    expectError(await call(t.url, 'POST', '/v1/sessions', { token: a.token, json: { ...sessionJson(), source: 'x' } }), 400, /source must be a JSON object/);
    expectError(
      await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job: a.job, sources: [] } }),
      400,
      /sources must be a list of 1-64 source specs/,
    );
    expectError(await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent: a.agent, job: a.job, sources: ['ftp://x'] } }), 400, /sources\[0\]/);
    const session = await beginSession(t, a.token, a.job);
    const good = commitRequest(session, Buffer.alloc(0), [], 0);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token: a.token, json: { ...good, streamHash: 'XYZ' } }),
      400,
      /streamHash must be 64 lower-case hex digits/,
    );
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token: a.token, json: { ...good, chunks: -1 } }),
      400,
      /chunks must be a non-negative integer; got -1/,
    );
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token: a.token, json: { ...good, batches: 1.5 } }),
      400,
      /batches must be a non-negative integer/,
    );
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token: a.token, json: { ...good, startedAt: 'yesterday' } }),
      400,
      /startedAt must be an ISO-8601 time/,
    );
    // The session survived all that: an empty stream commits.
    const done = await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token: a.token, json: good });
    expect(done.status, JSON.stringify(done.json)).toBe(200);
  });

  it('JSON over 1 MiB: 413 naming the limit (declared length and streamed without one)', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(MAX_JSON_BYTES) });
    expectError(
      await call(t.url, 'POST', '/v1/agents', { token: t.admin, body: big, contentType: 'application/json' }),
      413,
      new RegExp(`over this call's limit of ${MAX_JSON_BYTES} bytes`),
    );
    expectError(await call(t.url, 'POST', '/v1/sessions', { token: a.token, body: big, contentType: 'application/json' }), 413, /limit of 1048576 bytes/);
    async function* chunked(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('{"name":"');
      for (let i = 0; i < 20; i++) yield Buffer.alloc(64 * 1024, 0x61);
      yield Buffer.from('"}');
    }
    expectError(
      await call(t.url, 'POST', '/v1/agents', { token: t.admin, body: chunked(), contentType: 'application/json' }),
      413,
      /over this call's limit of 1048576 bytes/,
    );
    // Exactly at the limit is read (and then judged on its content).
    const atLimit = JSON.stringify({ name: 'x'.repeat(MAX_JSON_BYTES - 11) });
    expect(Buffer.byteLength(atLimit)).toBe(MAX_JSON_BYTES);
    expectError(
      await call(t.url, 'POST', '/v1/agents', { token: t.admin, body: atLimit, contentType: 'application/json' }),
      400,
      /name must be 1-63 characters/,
    );
  });

  it('wrong content type: text/plain or none on a JSON route, JSON on the binary routes: 415', async () => {
    expectError(
      await call(t.url, 'POST', '/v1/agents', { token: t.admin, body: '{"name":"textplain"}', contentType: 'text/plain' }),
      415,
      /this call takes Content-Type application\/json; got text\/plain/,
    );
    expectError(
      await call(t.url, 'POST', '/v1/sessions', { token: a.token, body: JSON.stringify(sessionJson()), contentType: 'text/plain;charset=utf-8' }),
      415,
      /application\/json; got text\/plain/,
    );
    expectError(
      await rawRequest(t.url, {
        method: 'POST',
        path: '/v1/sessions',
        headers: { authorization: `Bearer ${a.token}` },
        body: Buffer.from(JSON.stringify(sessionJson())),
      }),
      415,
      /got none/,
    );
    // A charset parameter on the right type is fine.
    expect(
      (await call(t.url, 'POST', '/v1/sessions', { token: a.token, body: JSON.stringify(sessionJson()), contentType: 'application/json; charset=utf-8' }))
        .status,
    ).toBe(201);

    const session = await beginSession(t, a.token, a.job);
    const chunks = await chunkFor(session, randomData(40_000, 12));
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, { token: a.token, json: [Buffer.from(chunks[0]!.fingerprint).toString('hex')] }),
      415,
      /this call takes Content-Type application\/octet-stream; got application\/json/,
    );
    expectError(
      await call(t.url, 'PUT', `/v1/sessions/${session.session}/batches/0`, { token: a.token, json: { refs: [] } }),
      415,
      /application\/octet-stream; got application\/json/,
    );
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, {
        token: a.token,
        body: JSON.stringify(commitRequest(session, Buffer.alloc(0), [], 0)),
        contentType: BINARY,
      }),
      415,
      /application\/json; got application\/octet-stream/,
    );
    expect((await readAgents()).some((x) => x === 'textplain')).toBe(false);
  });

  async function readAgents(): Promise<string[]> {
    return ((await call(t.url, 'GET', '/v1/agents', { token: t.admin })).json.agents as { name: string }[]).map((x) => x.name);
  }
});

describe('routes', () => {
  it('unknown route: 404 naming the method and path', async () => {
    expectError(await call(t.url, 'GET', '/v1/nothing-here', { token: t.admin }), 404, /no route GET \/v1\/nothing-here/);
    expectError(await call(t.url, 'GET', '/', { token: t.admin }), 404, /no route GET \//);
    expectError(await call(t.url, 'POST', '/v2/sessions', { token: a.token, json: sessionJson() }), 404, /no route POST \/v2\/sessions/);
    expectError(await call(t.url, 'GET', '/v1/jobs//restore', { token: t.admin }), 404, /no route/);
    // Unknown routes answer 404 before asking for a token.
    expectError(await call(t.url, 'GET', '/v1/nothing-here'), 404, /no route/);
  });

  it('wrong method: 405 naming the method and path', async () => {
    expectError(await call(t.url, 'DELETE', '/v1/stores', { token: t.admin }), 405, /DELETE is not allowed on \/v1\/stores/);
    expectError(await call(t.url, 'PUT', '/v1/sessions', { token: a.token, json: sessionJson() }), 405, /PUT is not allowed on \/v1\/sessions/);
    expectError(await call(t.url, 'GET', '/v1/sessions/abc/commit', { token: a.token }), 405, /GET is not allowed on \/v1\/sessions\/abc\/commit/);
    expectError(await call(t.url, 'POST', `/v1/jobs/${a.job}/restore`, { token: t.admin, json: {} }), 405, /POST is not allowed/);
    expectError(await call(t.url, 'POST', '/metrics'), 405, /POST is not allowed on \/metrics/);
  });

  it('a batch number that is not a non-negative integer: 400', async () => {
    const session = await beginSession(t, a.token, a.job);
    for (const seq of ['abc', '-1', '1.5', '1e3x', '9007199254740993']) {
      expectError(
        await call(t.url, 'PUT', `/v1/sessions/${session.session}/batches/${seq}`, { token: a.token, body: Buffer.alloc(16), contentType: BINARY }),
        400,
        /seq must be a non-negative integer \(the batch number\)/,
      );
    }
  });
});

describe('restore requests', () => {
  it('no snapshot, an unknown id, a bad time or a range outside the snapshot: 404 / 400 / 416', async () => {
    const [first] = t.committed;
    expectError(await call(t.url, 'GET', '/v1/jobs/never-backed-up/restore', { token: t.admin }), 404, /never-backed-up/);
    expectError(await call(t.url, 'GET', `/v1/jobs/${a.job}/restore?id=ffffffffffffffff`, { token: a.token }), 404, /ffffffffffffffff/);
    expectError(await call(t.url, 'GET', `/v1/jobs/${a.job}/restore?at=not-a-time`, { token: a.token }), 400, /at must be an ISO-8601 time; got "not-a-time"/);
    const size = first!.data.length;
    for (const q of ['offset=-1', 'offset=abc', 'length=1.5']) {
      expectError(await call(t.url, 'GET', `/v1/jobs/${a.job}/restore?id=${first!.snapshot}&${q}`, { token: a.token }), 400, /must be a number of bytes/);
    }
    for (const q of [`offset=${size + 1}`, `offset=0&length=${size + 1}`, `offset=${size - 10}&length=11`]) {
      expectError(
        await call(t.url, 'GET', `/v1/jobs/${a.job}/restore?id=${first!.snapshot}&${q}`, { token: a.token }),
        416,
        new RegExp(`is outside snapshot ${first!.snapshot} \\(${size} bytes\\)`),
      );
    }
    const tail = await call(t.url, 'GET', `/v1/jobs/${a.job}/restore?id=${first!.snapshot}&offset=${size - 10}`, { token: a.token });
    expect(tail.status).toBe(200);
    expect(tail.bytes.equals(first!.data.subarray(size - 10))).toBe(true);
    expect(tail.headers.get('x-hoard-snapshot')).toBe(first!.snapshot);
  });
});

describe('fingerprint queries', () => {
  it('a length that is not a multiple of 32, or zero bytes: 400', async () => {
    const session = await beginSession(t, a.token, a.job);
    for (const n of [0, 1, 31, 33, 95]) {
      expectError(
        await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, { token: a.token, body: Buffer.alloc(n, 7), contentType: BINARY }),
        400,
        new RegExp(`a fingerprint query is a whole number of 32-byte fingerprints; got ${n} bytes`),
      );
    }
  });

  it(`more than ${MAX_QUERY_FINGERPRINTS} fingerprints: 413 naming the limit; exactly that many is answered`, async () => {
    const session = await beginSession(t, a.token, a.job);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, {
        token: a.token,
        body: Buffer.alloc((MAX_QUERY_FINGERPRINTS + 1) * 32, 9),
        contentType: BINARY,
      }),
      413,
      new RegExp(`over this call's limit of ${MAX_QUERY_FINGERPRINTS * 32} bytes`),
    );
    async function* streamed(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i <= MAX_QUERY_FINGERPRINTS / 1024; i++) yield Buffer.alloc(1024 * 32, 9);
    }
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, { token: a.token, body: streamed(), contentType: BINARY }),
      413,
      /over this call's limit/,
    );
    const full = Buffer.alloc(MAX_QUERY_FINGERPRINTS * 32);
    for (let i = 0; i < MAX_QUERY_FINGERPRINTS; i++) full.writeUInt32LE(i + 1, i * 32);
    const r = await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, { token: a.token, body: full, contentType: BINARY });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(BINARY);
    expect(r.bytes.length).toBe(MAX_QUERY_FINGERPRINTS / 8);
    expect(r.bytes.every((b) => b === 0xff)).toBe(true);
  });

  it('answers one bit per fingerprint: known chunks are not missing', async () => {
    const session = await beginSession(t, a.token, a.job);
    const known = await chunkFor(session, t.committed[0]!.data);
    const fresh = await chunkFor(session, randomData(100_000, 13));
    const query = Buffer.concat([...known, ...fresh].map((c) => c.fingerprint));
    const r = await call(t.url, 'POST', `/v1/sessions/${session.session}/missing`, { token: a.token, body: query, contentType: BINARY });
    expect(r.status).toBe(200);
    const bits = [...known, ...fresh].map((_, i) => (r.bytes[i >> 3]! & (1 << (i & 7))) !== 0);
    expect(bits).toEqual([...known.map(() => false), ...fresh.map(() => true)]);
  });
});
