/**
 * `hoard job list|run|cancel|history` and `hoard report` end to end: a `hoard server
 * start` process and a `hoard agent start` process on loopback, driven by the CLI.
 */
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CapacityReport } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_TRACE } from './helpers.js';
import { startServerProcess, type AgentProcess, type ServerProcess } from './server-processes.js';

interface Run {
  id: string;
  state: string;
  error?: string;
  cancelRequestedAt?: string;
  targets: { ok: boolean; snapshot?: { id: string }; totals?: { bytesRead: number; bytesNew: number; bytesStored: number } }[];
}

const SIZE = 300_000;

/** Deterministic, incompressible-ish bytes. */
function data(size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('hoard job and hoard report through a server and an agent', () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  let work: string;
  let file: string;

  beforeAll(async () => {
    server = await startServerProcess();
    agent = await server.addAgent('kvm1');
    work = await mkdtemp(join(tmpdir(), 'hoard-jobs-'));
    file = join(work, 'disk.img');
    await writeFile(file, data(SIZE));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const json = async <T>(args: string[], code = 0): Promise<T> => {
    const r = await server.cli([...args, '--json']);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code, r.stderr).toBe(code);
    return JSON.parse(r.stdout) as T;
  };
  /**
   * The image keeps its bytes but gets a new mtime before each run, so the agent reads it
   * every time and the figures below are exact. An image whose mtime was more than 2 s
   * old when a run read it, and is the same at the next run, is not read by that run
   * (unchanged-image.ts): without this, whether the second run read 0 or SIZE bytes
   * depended on how long the first run took to start (0 on a loaded machine).
   */
  const touch = () => utimes(file, new Date(), new Date());
  /** The run as the API shows it; with `wait`, once it has ended (or after that many seconds). */
  const api = async (id: string, wait?: number): Promise<Run> => {
    const res = await fetch(`${server.url}/v1/runs/${id}${wait === undefined ? '' : `?wait=${wait}`}`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Run;
  };

  it('runs a job again by name, lists it, shows its history and reports it, with exact figures', async () => {
    await touch();
    const first = await json<Run>(['run', '--agent', 'kvm1', '--job', 'disk', '--source', `file:${file}`]);
    expect(first.state).toBe('succeeded');
    expect(first.targets[0]!.totals).toMatchObject({ bytesRead: SIZE, bytesNew: SIZE });

    // job run --wait: the same output as `hoard run`; the file's bytes are unchanged, so nothing is new.
    await touch();
    const second = await json<Run>(['job', 'run', 'disk', '--wait']);
    expect(second.state).toBe('succeeded');
    expect(second.targets[0]!.totals).toMatchObject({ bytesRead: SIZE, bytesNew: 0, bytesStored: 0 });
    await touch();
    const text = await server.cli(['job', 'run', 'disk', '--wait']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^run \S+: job disk on agent kvm1: succeeded$/m);
    expect(text.stdout).toMatch(/all known/);
    // Without --wait: queued, one line.
    await touch();
    const queued = await server.cli(['job', 'run', 'disk']);
    expect(queued.stdout).toMatch(/^run \S+ queued for agent kvm1$/m);
    const queuedId = /^run (\S+) queued/.exec(queued.stdout)![1]!;
    // Let it finish before looking at the list (a long poll that answers when the run ends).
    for (let i = 0; i < 30 && ['queued', 'running'].includes((await api(queuedId, 2)).state); i++);

    const jobs = await json<
      {
        job: string;
        agent: string;
        policy: string | null;
        store: string;
        snapshots: number;
        newestSnapshot: { logicalBytes: number };
        lastSuccess: { id: string };
      }[]
    >(['job', 'list']);
    const disk = jobs.find((j) => j.job === 'disk')!;
    expect(disk).toMatchObject({ agent: 'kvm1', policy: null, store: 'global', newestSnapshot: { logicalBytes: SIZE } });
    const snapshots = (await json<unknown[]>(['snapshots', '--job', 'disk'])).length;
    expect(disk.snapshots).toBe(snapshots);
    expect(snapshots).toBeGreaterThanOrEqual(3);
    const table = await server.cli(['job', 'list']);
    expect(table.stdout).toMatch(/^job\s+agent\s+policy\s+store/m);
    expect(table.stdout).toMatch(/^disk\s+kvm1\s+-\s+global\s/m);

    const history = await json<
      { type: string; kind: string; state: string; bytesRead: number | null; bytesNew: number | null; dedupRatio: number | null; snapshots: string[] }[]
    >(['job', 'history', 'disk', '--limit', '10']);
    const done = history.filter((e) => e.state === 'succeeded');
    expect(done.length).toBe(snapshots);
    // Oldest last: the first run stored everything, later ones nothing.
    expect(done[done.length - 1]).toMatchObject({ type: 'run', kind: 'manual', bytesRead: SIZE, bytesNew: SIZE, snapshots: [first.targets[0]!.snapshot!.id] });
    expect(done[done.length - 2]).toMatchObject({ kind: 'manual', bytesRead: SIZE, bytesNew: 0, snapshots: [second.targets[0]!.snapshot!.id] });
    expect((await json<unknown[]>(['job', 'history', 'disk', '--limit', '1'])).length).toBe(1);
    const historyText = await server.cli(['job', 'history', 'disk']);
    expect(historyText.stdout).toMatch(/^started \(local\)\s+kind\s+status\s+duration\s+read\s+new\s+dedup\s+snapshot/m);
    expect(historyText.stdout).toMatch(/manual backup\s+succeeded/);
    expect((await server.cli(['job', 'history', 'nope'])).code).toBe(2);
    expect((await server.cli(['job', 'history', 'disk', '--limit', 'x'])).code).toBe(2);

    const report = await json<CapacityReport>(['report', '--quota', '1GB', '--growth-years', '3']);
    const r = report.jobs.find((j) => j.job === 'disk')!;
    expect(r).toMatchObject({ snapshotsKept: snapshots, logicalBytesKept: snapshots * SIZE, newestLogicalBytes: SIZE, lastFailure: null });
    expect(r.storedBytesWritten).toBe(first.targets[0]!.totals!.bytesStored);
    // No full run kept: the oldest kept backup is the base; every later run added nothing new.
    expect(r.classic.inputs).toMatchObject({ base: SIZE, fullsKept: 1, incremental: 0, incrementalsPerFull: snapshots - 1, growth: 0, years: 3 });
    expect(report.capacity).toMatchObject({ quotaBytes: 1e9, growthYears: 3, trend: null, fill: { status: 'no-trend' } });
    expect(report.capacity.storedBytes).toBeGreaterThanOrEqual(first.targets[0]!.totals!.bytesStored);
    const reportText = await server.cli(['report', '--quota', '1GB']);
    expect(reportText.code, reportText.stderr).toBe(0);
    expect(reportText.stdout).toMatch(/^capacity$/m);
    expect(reportText.stdout).toMatch(/stored now \(measured\):/);
    expect(reportText.stdout).toMatch(/classic estimate \(1 y\):/);
    expect(reportText.stdout).toMatch(/^ {4}disk: \(/m);
    const bad = await server.cli(['report', '--quota', '10XB']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--quota "10XB"/);
  });

  it('cancels a queued run at once, and a running one through its agent, committing nothing', async () => {
    // An agent that never polls: its run stays queued.
    expect((await server.cli(['agent', 'add', 'idle'])).code).toBe(0);
    const queued = await json<Run>(['run', '--agent', 'idle', '--job', 'idle-job', '--source', 'cmd:true', '--no-wait']);
    expect(queued.state).toBe('queued');
    const cancelled = await json<Run>(['job', 'cancel', queued.id]);
    expect(cancelled).toMatchObject({ id: queued.id, state: 'cancelled', error: 'cancelled by an admin before it started' });
    expect((await json<Run>(['job', 'cancel', queued.id])).state).toBe('cancelled'); // again: nothing changes

    // A slow source: the agent reports progress after its first batch (16 MiB).
    const slow = await json<Run>([
      'run',
      '--agent',
      'kvm1',
      '--job',
      'slow',
      '--source',
      "cmd:sh -c 'sleep 1; head -c 40000000 /dev/urandom; sleep 30'",
      '--no-wait',
    ]);
    for (let i = 0; i < 200 && (await api(slow.id)).state !== 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const text = await server.cli(['job', 'cancel', slow.id]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/asked agent kvm1 to stop/);
    const ended = await json<Run>(['job', 'cancel', slow.id, '--wait']);
    expect(ended.state).toBe('cancelled');
    expect(ended.cancelRequestedAt).toEqual(expect.any(String));
    expect(ended.error).toMatch(/cancelled by an admin while running/);
    expect(Date.now() - started).toBeLessThan(25_000); // well before the source would have ended
    expect(await json<unknown[]>(['snapshots', '--job', 'slow'])).toEqual([]);
    expect(agent.stderr()).toMatch(/run cancelled by an admin/);
    const [entry] = await json<{ state: string; kind: string; snapshots: string[] }[]>(['job', 'history', 'slow']);
    expect(entry).toMatchObject({ state: 'cancelled', kind: 'manual', snapshots: [] });
    // The agent goes on serving: the next run succeeds.
    const after = await json<Run>(['run', '--agent', 'kvm1', '--job', 'after-cancel', '--source', 'cmd:echo after']);
    expect(after.state).toBe('succeeded');
    const late = await server.cli(['job', 'cancel', after.id]);
    expect(late.code).toBe(2);
    expect(late.stderr).toMatch(/is succeeded already/);
  }, 60_000);
});
