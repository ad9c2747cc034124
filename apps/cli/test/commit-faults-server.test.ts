/**
 * Invariant 1 at each step of the commit order, through the media server (issue 15, item
 * 8): `hoard server start` with its repository in a bucket behind
 * test-support/s3-fault-proxy.ts, and a `hoard agent start`, as processes. The proxy holds
 * one put of the server's (a pack, the index segment, the manifest before or after it
 * landed) and the test SIGKILLs the server, or the agent, while it is held.
 *
 * Afterwards: the run has ended failed (the server's restart or the run's lease ends it),
 * the job has no snapshot unless the manifest had landed (then it is whole and restores
 * byte for byte), verify of the bucket finds nothing wrong, and the job's next run succeeds
 * and restores byte for byte.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repository, restore, StreamSink, verify } from '@hoard/repository';
import { S3ObjectStore } from '@hoard/repository/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3FaultProxy, type FaultRule } from '../../../test-support/s3-fault-proxy.js';
import { s3StoreOptions, s3TestServer } from '../../../test-support/s3-test-env.js';
import { Deployment, freePort, killed, type RunView } from './deployment.js';
import { hoardCli, noise } from './helpers.js';

const MiB = 1024 * 1024;
/** A full 4 MiB pack while the agent uploads, and the rest sealed at the commit. */
const SOURCE_BYTES = 5 * MiB;
const LEASE_SECONDS = 6;

let work: string;
let proxy: S3FaultProxy;
let d: Deployment;
let storage: string;
/** The bucket straight from RGW, past the proxy: what a reader of the bucket sees. */
let direct: S3ObjectStore;
let sources = 0;
let agentToken: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoard-commit-faults-'));
  const s3 = s3TestServer();
  proxy = await S3FaultProxy.start(s3.endpoint);
  const keys = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
  const bucket = `hoard-commit-faults-${randomUUID().slice(0, 8)}`;
  storage = `s3://${bucket}/site`;
  const init = await hoardCli(['init', '--repo', storage, '--pack-size', '4'], { env: { ...keys, AWS_ENDPOINT_URL: s3.endpoint } });
  expect(init.code, init.stderr).toBe(0);
  d = new Deployment({
    dir: work,
    port: await freePort(),
    storage,
    env: { ...keys, AWS_ENDPOINT_URL: proxy.url },
    config: { runLeaseSeconds: LEASE_SECONDS, sessionIdleSeconds: 600 },
  });
  await d.startServer();
  agentToken = await d.addAgent('a1');
  direct = new S3ObjectStore(s3StoreOptions(bucket, { prefix: 'site' }));
});
afterAll(async () => {
  direct?.close();
  await d?.stop();
  await proxy?.close();
  await rm(work, { recursive: true, force: true });
});

/** A new file of incompressible bytes, and its `file:` source. */
async function newSource(): Promise<{ source: string; bytes: Buffer }> {
  const bytes = noise(1000 + sources, SOURCE_BYTES);
  const path = join(work, `source-${sources++}.bin`);
  await writeFile(path, bytes);
  return { source: `file:${path}`, bytes };
}

async function snapshotIds(job: string): Promise<string[]> {
  const { snapshots } = await d.api<{ snapshots: { id: string }[] }>('GET', `/v1/snapshots?job=${job}`);
  return snapshots.map((s) => s.id);
}

/** verify with data, straight from the bucket (a fresh open): nothing wrong, and every snapshot of `job` restores to `bytes`. */
async function expectVerified(job: string, bytes: Buffer): Promise<void> {
  const repo = await Repository.open(direct);
  const report = await verify(repo, { readData: true });
  expect(report.findings).toEqual([]);
  for (const snapshot of await repo.snapshots(job)) {
    const parts: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        parts.push(Buffer.from(chunk));
        cb();
      },
    });
    await restore(repo, snapshot, new StreamSink(sink));
    expect(Buffer.concat(parts).equals(bytes), `snapshot ${snapshot.id} of ${job} did not restore byte for byte`).toBe(true);
  }
}

/** The server's restore of the job's newest snapshot, byte for byte. */
async function expectRestores(job: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`${d.url}/v1/jobs/${job}/restore`, { headers: { authorization: `Bearer ${d.admin}` } });
  expect(res.status).toBe(200);
  expect(Buffer.from(await res.arrayBuffer()).equals(bytes), `${job} did not restore byte for byte`).toBe(true);
}

async function queue(job: string, source: string): Promise<RunView> {
  const res = await fetch(`${d.url}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ agent: 'a1', job, sources: [source] }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as RunView;
}

/** Queues a run of `job` and waits until the proxy holds the put `rule` matches. */
async function runUntilHeld(job: string, rule: Omit<FaultRule, 'action'>, after = false) {
  const { source, bytes } = await newSource();
  proxy.setRules([{ nth: 1, ...rule, action: { kind: 'hold', after } }]);
  const run = await queue(job, source);
  const held = await proxy.nextHold();
  proxy.setRules([]);
  return { run, held, source, bytes };
}

/** The job's next run (of the same source) succeeds and restores byte for byte. */
async function expectNextRunSucceeds(job: string, source: string, bytes: Buffer): Promise<void> {
  const next = await d.ended((await queue(job, source)).id);
  expect(next.state, next.error).toBe('succeeded');
  await expectRestores(job, bytes);
}

/** Until the job's session is no longer running: the server's commit has ended, one way or the other. */
async function sessionEnded(job: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const { sessions } = await d.api<{ sessions: { state: string }[] }>('GET', `/v1/sessions?job=${job}`);
    const state = sessions[0]?.state;
    if (state !== undefined && state !== 'running') return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the session of ${job} did not end`);
}

/** The run once its record names `snapshot` among its targets (the server adds it after ending the run). */
async function runNaming(id: string, snapshot: string): Promise<RunView> {
  for (let i = 0; i < 100; i++) {
    const run = await d.api<RunView>('GET', `/v1/runs/${id}`);
    if (run.targets.some((t) => t.snapshot?.id === snapshot && t.ok)) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${id} never named snapshot ${snapshot}`);
}

const PACK = { method: 'PUT', key: /\/packs\// };
const SEGMENT = { method: 'PUT', key: /\/index\// };
const MANIFEST = { method: 'PUT', key: /\/snapshots\// };

describe('the server SIGKILLed while its put is held', () => {
  it.each([
    { step: 'a pack put', rule: PACK },
    { step: 'the index segment put', rule: SEGMENT },
    { step: 'the manifest put, before it lands', rule: MANIFEST },
  ])('$step: the run ends failed, nothing is committed, the next run succeeds', async ({ step, rule }) => {
    const job = `server-${step.split(' ')[1]}-${sources}`;
    const { run, held, source, bytes } = await runUntilHeld(job, rule);
    await killed(d.server);
    held.drop();
    await d.startServer();
    const ended: RunView = await d.ended(run.id);
    expect(ended.state).toBe('failed');
    expect(ended.error).toMatch(/^the media server restarted while this run was running/);
    expect(await snapshotIds(job)).toEqual([]);
    await expectVerified(job, bytes);
    await expectNextRunSucceeds(job, source, bytes);
  });

  it('the manifest put, after it landed: the run ends failed, the snapshot stands whole and restores', async () => {
    const job = `server-landed-${sources}`;
    const { run, held, source, bytes } = await runUntilHeld(job, MANIFEST, true);
    await killed(d.server);
    held.drop();
    await d.startServer();
    const ended = await d.ended(run.id);
    expect(ended.state).toBe('failed');
    // The server rebuilds its catalog from the bucket at start: the committed snapshot is listed.
    expect(await snapshotIds(job)).toHaveLength(1);
    await expectRestores(job, bytes);
    await expectVerified(job, bytes);
    await expectNextRunSucceeds(job, source, bytes);
  });
});

describe('the agent SIGKILLed while the server holds a put', () => {
  it('a pack put: the run ends failed by its lease, nothing is committed, the next run succeeds', async () => {
    const job = `agent-pack-${sources}`;
    const { run, held, source, bytes } = await runUntilHeld(job, PACK);
    await killed(d.agents.get('a1'));
    held.release();
    const ended = await d.ended(run.id);
    expect(ended.state).toBe('failed');
    expect(ended.error).toMatch(/^agent a1 stopped renewing its lease/);
    expect(await snapshotIds(job)).toEqual([]);
    await d.startAgent('a1', agentToken);
    await expectVerified(job, bytes);
    await expectNextRunSucceeds(job, source, bytes);
  });

  it('the manifest put: the run ends failed by its lease, and the commit it asked for ends whole or with nothing', async () => {
    const job = `agent-manifest-${sources}`;
    const { run, held, source, bytes } = await runUntilHeld(job, MANIFEST);
    await killed(d.agents.get('a1'));
    held.release();
    const ended = await d.ended(run.id);
    expect(ended.state).toBe('failed');
    expect(ended.error).toMatch(/^agent a1 stopped renewing its lease/);
    // The server goes on with the commit the agent asked for: it either commits the whole
    // snapshot or nothing, whatever the run's lease did meanwhile.
    const session = await sessionEnded(job);
    const ids = await snapshotIds(job);
    expect(ids).toHaveLength(session === 'committed' ? 1 : 0);
    if (session === 'committed') {
      // The run stays failed (it never finished), but its record names the snapshot its
      // commit left, instead of a failed run beside a snapshot nothing mentions.
      const late = await runNaming(run.id, ids[0]!);
      expect(late.state).toBe('failed');
      expect(late.error).toContain(`snapshot ${ids[0]} of `);
      expect(late.error).toContain('was committed although the run did not finish; it is whole and restores');
    }
    await d.startAgent('a1', agentToken);
    await expectVerified(job, bytes);
    await expectNextRunSucceeds(job, source, bytes);
  });
});

describe("the server's bucket failing at a fixed rate", () => {
  it('5xx, resets and slow answers: the server retries, the run succeeds and its snapshot restores', async () => {
    const job = `rate-${sources}`;
    const { source, bytes } = await newSource();
    proxy.setRules([
      { method: 'PUT', every: 3, action: { kind: 'status', status: 503 } },
      { method: 'PUT', every: 4, action: { kind: 'reset-after' } },
      { method: 'GET', every: 4, action: { kind: 'status', status: 500 } },
      { method: 'HEAD', every: 3, action: { kind: 'reset-before' } },
      { every: 5, action: { kind: 'delay', ms: 100 } },
    ]);
    const run = await d.ended((await queue(job, source)).id);
    const fired = proxy.fired();
    proxy.setRules([]);
    expect(run.state, run.error).toBe('succeeded');
    // Every kind of fault reached the server's requests (the GETs and HEADs of its commit check included).
    for (const [i, count] of fired.entries()) expect(count, `rule ${i} never fired`).toBeGreaterThan(0);
    await expectRestores(job, bytes);
    await expectVerified(job, bytes);
  });
});
