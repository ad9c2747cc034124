/**
 * Sessions sharing a store: two agents uploading the same new chunk at the same moment
 * store it once and both restore; an agent that disappears mid-session leaves what it
 * uploaded durable and deduplicable for its retry (also across a server restart); a
 * per-job store shares nothing with `global`. Then what the server reports about it all:
 * GET /v1/stores and the Prometheus text of GET /metrics.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeIndexSegment, listAll, type ObjectStore } from '@hoard/repository';
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
  eventually,
  expectStillServes,
  putBatch,
  queryMissing,
  randomData,
  refsOf,
  restoreBytes,
  sendBatches,
  startServer,
  uniqueName,
  type TestChunk,
  type TestServer,
} from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** How many times each fingerprint is listed in the bucket's index segments. */
async function indexedCounts(objects: ObjectStore): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const info of listAll(objects, 'index/')) {
    const segment = decodeIndexSegment(info.key, await objects.get(info.key));
    for (const pack of segment.packs) for (const e of pack.entries) counts.set(hex(e.fingerprint), (counts.get(hex(e.fingerprint)) ?? 0) + 1);
  }
  return counts;
}

interface StoreReport {
  name: string;
  scope: string;
  encrypted: boolean;
  entries: number;
  memoryBytes: number;
  lookups: number;
  packsWritten: number;
  storedBytes: number;
}

async function storeReport(t: TestServer, name = 'global'): Promise<StoreReport> {
  const r = await call(t.url, 'GET', '/v1/stores', { token: t.admin });
  expect(r.status).toBe(200);
  const store = (r.json.stores as StoreReport[]).find((s) => s.name === name);
  if (!store) throw new Error(`no store ${name} in ${JSON.stringify(r.json)}`);
  return store;
}

const distinct = (chunks: readonly TestChunk[]): Map<string, TestChunk> => new Map(chunks.filter((c) => !c.zero).map((c) => [hex(c.fingerprint), c]));

describe('two sessions, one store', () => {
  let t: TestServer;
  let probe: Awaited<ReturnType<typeof agentWithJob>>;

  beforeAll(async () => {
    t = await startServer();
    probe = await agentWithJob(t);
    await backup(t, probe, randomData(100_000, 1));
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await expectStillServes(t, probe);
  });

  it('two agents uploading the same new chunks at the same time: both commit, both restore, each chunk stored once', async () => {
    const x = await agentWithJob(t);
    const y = await agentWithJob(t);
    for (let round = 0; round < 3; round++) {
      const shared = randomData(400_000, 1000 + round);
      const dataX = Buffer.concat([shared, randomData(50_000, 2000 + round)]);
      const dataY = Buffer.concat([shared, randomData(50_000, 3000 + round)]);
      const [sx, sy] = await Promise.all([beginSession(t, x.token, x.job), beginSession(t, y.token, y.job)]);
      expect(sx.store.name).toBe('global');
      expect(sy.store.name).toBe('global');
      const [cx, cy] = await Promise.all([chunkFor(sx, dataX), chunkFor(sy, dataY)]);
      const common = [...distinct(cx).keys()].filter((k) => distinct(cy).has(k));
      expect(common.length).toBeGreaterThan(5);
      // Both ask before either uploads: every chunk is missing for both.
      const [mx, my] = await Promise.all([
        queryMissing(t, x.token, sx.session, [...distinct(cx).values()]),
        queryMissing(t, y.token, sy.session, [...distinct(cy).values()]),
      ]);
      expect(mx.every(Boolean) && my.every(Boolean)).toBe(true);
      const before = await storeReport(t);

      // Both send every blob, in small batches, interleaved.
      const send = async (token: string, session: typeof sx, chunks: TestChunk[]): Promise<{ stored: number; duplicate: number; batches: number }> => {
        const codec = await codecFor(session);
        let stored = 0;
        let duplicate = 0;
        let seq = 0;
        for (let at = 0; at < chunks.length; at += 3, seq++) {
          const slice = chunks.slice(at, at + 3);
          const r = await putBatch(t, token, session.session, seq, batchBody(refsOf(slice), await encodeBlobs(codec, [...distinct(slice).values()])));
          expect(r.status, JSON.stringify(r.json)).toBe(200);
          stored += r.json.blobsStored as number;
          duplicate += r.json.blobsDuplicate as number;
        }
        return { stored, duplicate, batches: seq };
      };
      const [rx, ry] = await Promise.all([send(x.token, sx, cx), send(y.token, sy, cy)]);
      const all = new Map([...distinct(cx), ...distinct(cy)]);
      expect(rx.stored + ry.stored).toBe(all.size);
      expect(rx.duplicate + ry.duplicate).toBe(common.length);

      const [dx, dy] = await Promise.all([
        commit(t, x.token, sx, commitRequest(sx, dataX, cx, rx.batches)),
        commit(t, y.token, sy, commitRequest(sy, dataY, cy, ry.batches)),
      ]);
      expect([dx.status, dy.status], JSON.stringify([dx.json, dy.json])).toEqual([200, 200]);
      const idX = (dx.json.snapshot as { id: string }).id;
      const idY = (dy.json.snapshot as { id: string }).id;
      t.committed.push({ job: x.job, token: x.token, snapshot: idX, data: dataX }, { job: y.job, token: y.token, snapshot: idY, data: dataY });
      expect((await restoreBytes(t, x.token, x.job, idX)).bytes.equals(dataX)).toBe(true);
      expect((await restoreBytes(t, y.token, y.job, idY)).bytes.equals(dataY)).toBe(true);

      // Stored once: each fingerprint is in exactly one pack of the bucket's index, and
      // the store grew by the distinct chunks' stored bytes alone.
      const counts = await indexedCounts(t.repo.objects);
      for (const key of all.keys()) expect(counts.get(key), `chunk ${key}`).toBe(1);
      const after = await storeReport(t);
      expect(after.entries - before.entries).toBe(all.size);
      const codec = await codecFor(sx);
      const storedBytes = (await encodeBlobs(codec, [...all.values()])).reduce((n, b) => n + b.blob.stored.length, 0);
      expect(after.storedBytes - before.storedBytes).toBe(storedBytes);
    }
  });

  it('a per-job store shares nothing with global: the same chunks are missing there and stored again', async () => {
    const g = await agentWithJob(t);
    const iso = await agentWithJob(t, `iso-${uniqueName('s')}`);
    const data = randomData(200_000, 77);
    await backup(t, g, data);
    const session = await beginSession(t, iso.token, iso.job);
    expect(session.store.name).toMatch(/^iso-/);
    const chunks = await chunkFor(session, data);
    expect(await queryMissing(t, iso.token, session.session, chunks)).toEqual(chunks.map(() => true));
    const { batches, blobsStored } = await sendBatches(t, iso.token, session, chunks);
    expect(blobsStored).toBe(distinct(chunks).size);
    const done = await commit(t, iso.token, session, commitRequest(session, data, chunks, batches));
    expect(done.status).toBe(200);
    t.committed.push({ job: iso.job, token: iso.token, snapshot: (done.json.snapshot as { id: string }).id, data });
    const report = await storeReport(t, session.store.name);
    expect(report).toMatchObject({ scope: `job:${iso.job}`, entries: distinct(chunks).size });
  });
});

describe('an agent that disappears mid-session', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startServer({ server: { sessionIdleMs: 1_000, sealIdleMs: 200 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('what it uploaded becomes durable without a commit and stays deduplicable for the retry, across a restart', async () => {
    const d = await agentWithJob(t);
    const data = randomData(600_000, 4242);
    const first = await beginSession(t, d.token, d.job, 'db');
    const chunks = await chunkFor(first, data);
    const half = chunks.slice(0, chunks.length >> 1);
    const uploaded = [...distinct(half).keys()];
    const entriesBefore = (await storeReport(t)).entries;
    await sendBatches(t, d.token, first, half, { perBatch: 4 });
    // ... and the agent is gone: no commit, no DELETE.

    // The idle pack is sealed, uploaded and indexed: the store's index grows by what was
    // uploaded, and the bucket's index segments list it, with no snapshot committed.
    await eventually(async () => (await storeReport(t)).entries === entriesBefore + uploaded.length, 10_000, 'the idle pack to be sealed and indexed');
    const counts = await indexedCounts(t.repo.objects);
    for (const key of uploaded) expect(counts.get(key)).toBe(1);
    await eventually(
      async () =>
        ((await call(t.url, 'GET', `/v1/sessions?job=${d.job}`, { token: t.admin })).json.sessions as { id: string; state: string }[]).find(
          (s) => s.id === first.session,
        )?.state === 'expired',
      10_000,
      'the session to expire',
    );
    const metrics = await call(t.url, 'GET', '/metrics');
    expect(metrics.bytes.toString()).toMatch(/^hoard_sessions_total\{result="expired"\} 1$/m);

    // The retry (same job, same source) finds the uploaded half present.
    const retry = await beginSession(t, d.token, d.job, 'db');
    expect(await queryMissing(t, d.token, retry.session, chunks)).toEqual(chunks.map((c) => !uploaded.includes(hex(c.fingerprint))));
    await call(t.url, 'DELETE', `/v1/sessions/${retry.session}`, { token: d.token });

    // So does one after a restart: the index comes back from the bucket alone.
    await t.restart();
    const afterRestart = await beginSession(t, d.token, d.job, 'db');
    expect(await queryMissing(t, d.token, afterRestart.session, chunks)).toEqual(chunks.map((c) => !uploaded.includes(hex(c.fingerprint))));
    const { batches, blobsStored } = await sendBatches(t, d.token, afterRestart, chunks);
    expect(blobsStored).toBe(distinct(chunks).size - uploaded.length);
    const done = await commit(t, d.token, afterRestart, commitRequest(afterRestart, data, chunks, batches));
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    expect(done.json.totals).toMatchObject({ chunks: chunks.length, chunksNew: distinct(chunks).size - uploaded.length });
    const r = await restoreBytes(t, d.token, d.job, (done.json.snapshot as { id: string }).id);
    expect(r.bytes.equals(data)).toBe(true);
    for (const [key, n] of await indexedCounts(t.repo.objects)) expect(n, `chunk ${key}`).toBe(1);
  });
});

describe('what the server reports', () => {
  let t: TestServer;
  let a: Awaited<ReturnType<typeof agentWithJob>>;

  beforeAll(async () => {
    t = await startServer();
    a = await agentWithJob(t);
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await expectStillServes(t, a);
  });

  it('GET /v1/stores: entries and memoryBytes of each store', async () => {
    const empty = await storeReport(t);
    expect(empty).toMatchObject({ name: 'global', scope: 'global', encrypted: false, entries: 0 });
    const first = await backup(t, a, randomData(300_000, 5));
    const report = await storeReport(t);
    expect(report.entries).toBe(first.totals.chunksNew);
    expect(report.memoryBytes).toBeGreaterThan(0);
    expect(report.packsWritten).toBeGreaterThanOrEqual(1);
    expect(report.storedBytes).toBe(first.totals.bytesStored);
    expect(report.lookups).toBeGreaterThanOrEqual(first.totals.chunks);
    // The same data again: nothing new.
    await backup(t, a, randomData(300_000, 5));
    expect((await storeReport(t)).entries).toBe(report.entries);
  });

  it('GET /metrics: Prometheus text with sessions and store index entries, no token needed', async () => {
    await backup(t, a, randomData(100_000, 6));
    const abandoned = await beginSession(t, a.token, a.job, uniqueName('x'));
    await call(t.url, 'DELETE', `/v1/sessions/${abandoned.session}`, { token: a.token });
    const r = await call(t.url, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = r.bytes.toString('utf8');
    const sessionsCommitted = t.committed.length;
    expect(text).toMatch(/^# TYPE hoard_sessions_total counter$/m);
    expect(text).toMatch(new RegExp(`^hoard_sessions_total\\{result="committed"\\} ${sessionsCommitted}$`, 'm'));
    expect(text).toMatch(/^hoard_sessions_total\{result="failed"\} 1$/m);
    const entries = (await storeReport(t)).entries;
    expect(text).toMatch(/^# TYPE hoard_store_index_entries gauge$/m);
    expect(text).toMatch(new RegExp(`^hoard_store_index_entries\\{store="global"\\} ${entries}$`, 'm'));
    expect(text).toMatch(/^hoard_store_index_memory_bytes\{store="global"\} [1-9]\d*$/m);
    expect(text).toMatch(/^hoard_blobs_total\{outcome="stored"\} [1-9]\d*$/m);
    expect(text).toMatch(/^hoard_sessions_active 0$/m);
    // Refused requests are counted by status.
    await call(t.url, 'GET', '/v1/nothing');
    expect((await call(t.url, 'GET', '/metrics')).bytes.toString()).toMatch(/^hoard_http_errors_total\{status="404"\} [1-9]\d*$/m);
  });
});
