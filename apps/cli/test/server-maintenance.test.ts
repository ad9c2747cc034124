/**
 * `hoard prune|gc|verify --server`: the real CLI against a media server and an agent (in
 * this process, on a simulated clock so GC sees the objects as old). Prune uses the
 * policy's rules and says which rule keeps what; gc and verify run on the server and
 * land in job history as tasks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentDaemon } from '@hoard/agent';
import { MediaServer } from '@hoard/media-server';
import { FsObjectStore, Repository } from '@hoard/repository';
import { hoardCli, STACK_TRACE } from './helpers.js';

const DAY = 86400_000;
let now = Date.UTC(2027, 5, 7); // a Monday, ahead of any real clock
const clock = { now: () => now };
let dir: string;
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

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-srv-maint-'));
  const repo = await Repository.init(await FsObjectStore.open(join(dir, 'repo'), { create: true }), {});
  const started = await MediaServer.start({ repo, catalogDir: join(dir, 'catalog'), port: 0, logLevel: 'silent', scheduler: false, clock, gcSchedule: null });
  server = started.server;
  admin = started.adminToken!;
  const { token } = (await api('POST', '/v1/agents', { name: 'box1' })) as { token: string };
  agent = new AgentDaemon({ server: server.url, token, clock: clock.now });
  await agent.start();
  // Four nightly runs with no retention: all four snapshots stay.
  await api('POST', '/v1/policies', { document: policy(''), format: 'yaml' });
  await server.scheduler.tick();
  for (let day = 0; day < 4; day++) {
    now += DAY;
    const [run] = await server.scheduler.tick();
    for (;;) {
      const view = await api('GET', `/v1/runs/${run!.run!.id}?wait=5`);
      if (view.state === 'succeeded') break;
      if (view.state !== 'queued' && view.state !== 'running') throw new Error(`run ${view.state}: ${view.error as string}`);
    }
  }
  await server.settled();
}, 120_000);

afterAll(async () => {
  await agent?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('prune, gc and verify through the server', () => {
  it('prunes by the policy, collects garbage and verifies, each recorded in job history', async () => {
    expect(await server.repo.snapshots('notes')).toHaveLength(4);
    await api('POST', '/v1/policies', { document: policy('retention:\n  keep-last: 2'), format: 'yaml' });

    const dry = await cli(['prune', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as {
      dryRun: boolean;
      jobs: { policy: string; job: string; kept: number; forgotten: number; snapshots: { keep: boolean; reasons: string[] }[] }[];
    };
    expect(plan.dryRun).toBe(true);
    expect(plan.jobs).toMatchObject([{ policy: 'notes', job: 'notes', kept: 2, forgotten: 2 }]);
    expect(plan.jobs[0]!.snapshots.map((s) => s.reasons.join(','))).toEqual(['last', 'last', '', '']);
    expect(await server.repo.snapshots('notes')).toHaveLength(4);

    const real = await cli(['prune', '--policy', 'notes']);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/kept 2, forgot 2 snapshot\(s\) of job notes/);
    expect(await server.repo.snapshots('notes')).toHaveLength(2);
    expect(await server.catalog.listSnapshots({ job: 'notes' })).toHaveLength(2);

    const first = await cli(['gc', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).packs.condemned).toBeGreaterThan(0);
    now += 2 * DAY;
    const second = await cli(['gc']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/packs: \d+ in the bucket; 0 condemned, 0 repacked into 0 new, [1-9]\d* deleted/);

    const verify = await cli(['verify', '--job', 'notes', '--read-data']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/no problems found/);

    const tasks = await server.catalog.listTasks({});
    expect(tasks.map((t) => `${t.kind}:${t.state}`).sort()).toEqual(['gc:succeeded', 'gc:succeeded', 'prune:succeeded', 'verify:succeeded']);
    expect(tasks.find((t) => t.kind === 'prune')).toMatchObject({ job: 'notes', summary: 'kept 2, forgot 2 snapshot(s)' });
    const history = await cli(['job', 'history', 'notes', '--json']);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/"prune"/);
    expect(history.stdout).toMatch(/"verify"/);
  });

  it('refuses rules on the command line with --server, and an unknown policy', async () => {
    const rules = await cli(['prune', '--keep-last', '3']);
    expect(rules.code).toBe(2);
    expect(rules.stderr).toMatch(/--keep-last: with --server the rules come from each job's policy/);
    const unknown = await cli(['prune', '--policy', 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no policy nope/);
    for (const r of [rules, unknown]) expect(r.stderr).not.toMatch(STACK_TRACE);
    const noJob = await hoardCli(['prune', '--repo', dir, '--keep-last', '1']);
    expect(noJob.code).toBe(2);
    expect(noJob.stderr).toMatch(/--job is required with --repo/);
  });
});
