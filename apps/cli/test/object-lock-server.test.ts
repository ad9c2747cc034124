/**
 * A stolen admin token against a media server whose repository has S3 Object Lock (the
 * run's Ceph RGW): it applies `keep-last: 1` and prunes, then collects garbage with no
 * grace, through the API and the CLI. Every snapshot and every pack is still there, prune
 * and gc say until when they are locked, and both succeed. (A server and an agent in this
 * process, on a simulated clock ahead of the real one, as in server-maintenance.test.ts:
 * GC's age rule sees every object as old; the locks are the bucket's real dates.)
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentDaemon } from '@hoard/agent';
import { MediaServer } from '@hoard/media-server';
import { listAll, Repository } from '@hoard/repository';
import { S3ObjectStore } from '@hoard/repository/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StoreOptions } from '../../../test-support/s3-test-env.js';
import { hoardCli } from './helpers.js';

const DAY = 86400_000;
let now = Date.UTC(2027, 5, 7);
const clock = { now: () => now };
let dir: string;
let store: S3ObjectStore;
let server: MediaServer;
let agent: AgentDaemon;
let admin: string;

const policy = (retention: string) => `
name: notes
sources:
  - agent: box1
    specs: ["cmd:head -c 300000 /dev/urandom"]
schedule:
  timezone: UTC
  full: "0 2 * * *"
${retention}
`;

async function api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error as string}`);
  return json;
}

const cli = (args: string[]) => hoardCli([...args, '--server', server.url, '--token', admin]);

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(store, prefix)) out.push(o.key);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-lock-srv-'));
  store = await S3ObjectStore.open({ ...s3StoreOptions(`hoard-lock-srv-${randomUUID().slice(0, 8)}`), create: true, objectLock: true });
  const repo = await Repository.init(store, { objectLock: { mode: 'COMPLIANCE', days: 1 } });
  const started = await MediaServer.start({ repo, catalogDir: join(dir, 'catalog'), port: 0, logLevel: 'silent', scheduler: false, clock, gcSchedule: null });
  server = started.server;
  admin = started.adminToken!;
  const { token } = (await api('POST', '/v1/agents', { name: 'box1' })) as { token: string };
  agent = new AgentDaemon({ server: server.url, token, clock: clock.now });
  await agent.start();
  await api('POST', '/v1/policies', { document: policy(''), format: 'yaml' });
  await server.scheduler.tick();
  for (let day = 0; day < 3; day++) {
    now += DAY;
    const [run] = await server.scheduler.tick();
    for (;;) {
      const view = await api('GET', `/v1/runs/${run!.run!.id}?wait=5`);
      if (view.state === 'succeeded') break;
      if (view.state !== 'queued' && view.state !== 'running') throw new Error(`run ${view.state}: ${view.error as string}`);
    }
  }
  await server.settled();
}, 180_000);

afterAll(async () => {
  await agent?.close();
  await server?.close();
  store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a stolen admin token and S3 Object Lock', () => {
  it('prune and gc through the server keep every locked snapshot and pack, say until when, and succeed', async () => {
    const manifests = await keys('snapshots/');
    const packs = await keys('packs/');
    expect(manifests).toHaveLength(3);
    expect(packs.length).toBeGreaterThan(0);
    expect((await store.lockedUntil(manifests[0]))!.getTime()).toBeGreaterThan(Date.now() + DAY - 120_000);

    await api('POST', '/v1/policies', { document: policy('retention:\n  keep-last: 1'), format: 'yaml' });
    const pruned = await cli(['prune', '--policy', 'notes']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/kept 3, forgot 0 snapshot\(s\) of job notes/);
    expect(pruned.stdout.match(/locked until \d{4}-\d\d-\d\dT/g)).toHaveLength(2);

    for (let i = 0; i < 2; i++) {
      const gc = (await api('POST', '/v1/gc', { graceMs: 0 })) as { packs: { condemned: number; deleted: number } };
      expect(gc.packs).toMatchObject({ condemned: 0, deleted: 0 });
      now += 2 * DAY;
    }
    expect(await keys('snapshots/')).toEqual(manifests);
    expect(await keys('packs/')).toEqual(packs);
    expect(await server.repo.snapshots('notes')).toHaveLength(3);
    const verify = await cli(['verify', '--job', 'notes', '--read-data']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
