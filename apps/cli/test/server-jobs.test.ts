/**
 * Jobs and snapshots through the media server, with the built CLI against a real server
 * and agent (their own processes):
 *
 *   - `hoard snapshots --server --job J --protect ID / --unprotect ID`: through the server
 *     (PUT /v1/jobs/J/snapshots/ID/protection); operators protect, only admins lift it;
 *     the list marks protected snapshots, in the table and in --json;
 *   - `hoard job delete JOB`: the job goes, its snapshots stay;
 *   - `hoard job rename JOB NEW`: the next runs are NEW's, older snapshots keep the old name;
 *   - `hoard policy show/list` and `hoard job list`: next runs on the policy's clock, the
 *     zone named, UTC after it;
 *   - an unknown job is exit 2 (the server's 404 job_not_found), whatever the command.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

let server: ServerProcess;
let dir: string;
let operatorToken: string;
const snapshotOf: Record<string, string> = {};

interface Snapshot {
  id: string;
  key: string;
  job: string;
  protected: boolean | null;
}

/** `hoard ARGS --server URL --token TOKEN`, with nothing from the environment or a saved connection. */
const as = (token: string, args: string[]): Promise<CliResult> =>
  hoardCli([...args, '--server', server.url, '--token', token], { env: { HOARD_SERVER: '', HOARD_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'no-config') } });
const admin = (args: string[]): Promise<CliResult> => as(server.adminToken, args);

function expectCode(r: CliResult, code: number): CliResult {
  expect(r.stderr).not.toMatch(STACK_TRACE);
  if (r.code !== code) throw new Error(`exit ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function json<T>(args: string[], token = server.adminToken): Promise<T> {
  const r = expectCode(await as(token, [...args, '--json']), 0);
  return JSON.parse(r.stdout) as T;
}

beforeAll(async () => {
  server = await startServerProcess();
  dir = await mkdtemp(join(tmpdir(), 'hoard-server-jobs-'));
  const source = join(dir, 'source.bin');
  await writeFile(source, Buffer.alloc(200_000, 'hoard server jobs test '));
  await server.addAgent('box1');
  for (const job of ['files', 'old']) {
    const run = await json<{ state: string; targets: { snapshot?: { id: string } }[] }>(['run', '--agent', 'box1', '--job', job, '--source', `file:${source}`]);
    expect(run.state).toBe('succeeded');
    snapshotOf[job] = run.targets[0]!.snapshot!.id;
  }
  operatorToken = (await json<{ token: string }>(['token', 'add', '--role', 'operator', '--label', 'server jobs test'])).token;
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('hoard snapshots --server: protection', () => {
  it('protects and unprotects through the server; the list marks protected snapshots', async () => {
    const id = snapshotOf.files!;
    const before = expectCode(await admin(['snapshots', '--job', 'files']), 0);
    expect(before.stdout).toMatch(/^id\s+job\s+started \(local\)\s+size\s+protected\s+source$/m);
    expect(before.stdout).toMatch(new RegExp(`^${id}\\s+files\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+-\\s+`, 'm'));

    // An operator may protect (a unique prefix is enough).
    const protect = expectCode(await as(operatorToken, ['snapshots', '--job', 'files', '--protect', id.slice(0, 8)]), 0);
    expect(protect.stdout.trim()).toBe(`snapshot ${id} of job files is protected: prune keeps it whatever the policy says`);
    const listed = await json<Snapshot[]>(['snapshots', '--job', 'files']);
    expect(listed).toEqual([expect.objectContaining({ id, job: 'files', protected: true })]);
    expect((await json<Snapshot[]>(['snapshots'])).find((s) => s.job === 'old')).toMatchObject({ id: snapshotOf.old, protected: false });
    const table = expectCode(await admin(['snapshots', '--job', 'files']), 0);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+files\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+yes\\s+`, 'm'));

    // ... but not lift it: that lets prune forget the snapshot.
    const refused = expectCode(await as(operatorToken, ['snapshots', '--job', 'files', '--unprotect', id]), 1);
    expect(refused.stderr).toMatch(/^hoard: server: .*may protect snapshots but not lift a protection/);
    expect((await json<Snapshot[]>(['snapshots', '--job', 'files']))[0]!.protected).toBe(true);

    const lifted = await json<Record<string, unknown>>(['snapshots', '--job', 'files', '--unprotect', id]);
    expect(lifted).toEqual({ id, key: listed[0]!.key, job: 'files', protected: false });
    expect((await json<Snapshot[]>(['snapshots', '--job', 'files']))[0]!.protected).toBe(false);
  });

  it('refuses what names no snapshot, and --protect without --job (exit 2)', async () => {
    expect(expectCode(await admin(['snapshots', '--job', 'files', '--protect', 'ffff0000']), 2).stderr).toMatch(/^hoard: server: /);
    expect(expectCode(await admin(['snapshots', '--job', 'nope', '--protect', snapshotOf.files!]), 2).stderr).toMatch(/^hoard: server: /);
    expect(expectCode(await admin(['snapshots', '--protect', snapshotOf.files!]), 2).stderr).toMatch(/--protect and --unprotect need --job/);
  });
});

describe('hoard job delete / rename', () => {
  it('delete: the job goes, its snapshots stay listed', async () => {
    const deleted = expectCode(await admin(['job', 'delete', 'old']), 0);
    expect(deleted.stdout.trim()).toBe(
      'job old deleted: its snapshot stays, listed and restorable as job old (`hoard snapshots --job old`) until `hoard prune --repo R --job old` forgets them',
    );
    expect((await json<{ job: string }[]>(['job', 'list'])).map((j) => j.job)).not.toContain('old');
    expect((await json<Snapshot[]>(['snapshots', '--job', 'old'])).map((s) => s.id)).toEqual([snapshotOf.old]);
    // Gone now: exit 2, as any unknown job.
    expect(expectCode(await admin(['job', 'delete', 'old', '--json']), 2).stderr).toMatch(/^hoard: server: no job old/);
  });

  it('rename: the next runs are the new name, older snapshots keep the old one', async () => {
    const renamed = await json<Record<string, unknown>>(['job', 'rename', 'files', 'files-2026']);
    expect(renamed).toEqual({ job: 'files-2026', renamedFrom: 'files', snapshotsUnderOldName: 1, note: expect.any(String) });
    const jobs = await json<{ job: string; agent: string; store: string }[]>(['job', 'list']);
    expect(jobs.map((j) => j.job)).not.toContain('files');
    expect(jobs.find((j) => j.job === 'files-2026')).toMatchObject({ agent: 'box1', store: 'global' });

    // Same agent, sources and store: its first run finds every chunk in the store already.
    const run = await json<{ job: string; state: string; targets: { snapshot?: { id: string }; totals?: { bytesNew: number } }[] }>([
      'job',
      'run',
      'files-2026',
      '--wait',
    ]);
    expect(run).toMatchObject({ job: 'files-2026', state: 'succeeded' });
    expect(run.targets[0]!.totals!.bytesNew).toBe(0);
    expect((await json<Snapshot[]>(['snapshots', '--job', 'files-2026'])).map((s) => s.id)).toEqual([run.targets[0]!.snapshot!.id]);
    expect((await json<Snapshot[]>(['snapshots', '--job', 'files'])).map((s) => s.id)).toEqual([snapshotOf.files]);

    const text = expectCode(await admin(['job', 'rename', 'files-2026', 'files-b']), 0);
    expect(text.stdout.trim()).toBe(
      'job files-2026 renamed to files-b: its next runs make snapshots of job files-b; the snapshot made before keeps the old name: listed and restorable as job files-2026 (`hoard restore files-2026 ...`)',
    );
    expect(expectCode(await admin(['job', 'rename', 'files-b', 'files-b']), 2).stderr).toMatch(/has that name already/);
    expect(expectCode(await admin(['job', 'rename', 'files-b', 'bad/name']), 2).stderr).not.toBe('');
  });
});

describe("next runs on the policy's clock", () => {
  it('policy show and list, and job list, name the zone and give UTC after it', async () => {
    const file = join(dir, 'berlin.yaml');
    await writeFile(file, 'name: berlin\nsources:\n  - agent: box1\n    specs: ["cmd:true"]\nschedule:\n  timezone: Europe/Berlin\n  full: "0 1 * * *"\n');
    expectCode(await admin(['policy', 'apply', '-f', file]), 0);
    const policy = await json<{ timeZone: string; nextRuns: { at: string; kind: string }[] }>(['policy', 'show', 'berlin', '--next', '3']);
    expect(policy.timeZone).toBe('Europe/Berlin');
    expect(policy.nextRuns).toHaveLength(3);

    // 01:00 in Berlin is 00:00 UTC in winter, 23:00 UTC the day before in summer.
    const shown = (at: string): RegExp => {
      const utc = at.slice(11, 16);
      expect(['00:00', '23:00']).toContain(utc);
      return new RegExp(`\\d{4}-\\d\\d-\\d\\d 01:00 Europe/Berlin \\(${utc === '23:00' ? `${at.slice(0, 10)} ` : ''}${utc} UTC\\)`);
    };
    const show = expectCode(await admin(['policy', 'show', 'berlin', '--next', '3']), 0);
    expect(show.stdout).toMatch(/^next 3 runs \(the schedule's time zone: Europe\/Berlin\):$/m);
    for (const r of policy.nextRuns) expect(show.stdout).toMatch(new RegExp(`^  ${shown(r.at).source}  full$`, 'm'));

    const list = expectCode(await admin(['policy', 'list']), 0);
    expect(list.stdout).toMatch(/^policy\s+jobs\s+next run\s+kind$/m);
    expect(list.stdout).toMatch(new RegExp(`^berlin\\s+berlin\\s+${shown(policy.nextRuns[0]!.at).source}\\s+full$`, 'm'));

    const jobs = expectCode(await admin(['job', 'list']), 0);
    expect(jobs.stdout).toMatch(new RegExp(`^berlin\\s+box1\\s+berlin\\s+global\\s+.*${shown(policy.nextRuns[0]!.at).source} full`, 'm'));

    // A policy's job changes with its policy, not by itself.
    expectCode(await admin(['job', 'delete', 'berlin']), 2);
  });
});

describe('an unknown job', () => {
  it('is exit 2 with the server message, for every job command', async () => {
    for (const args of [
      ['job', 'run', 'nope'],
      ['job', 'history', 'nope'],
      ['job', 'delete', 'nope'],
      ['job', 'rename', 'nope', 'nope2'],
    ]) {
      const r = expectCode(await admin(args), 2);
      expect(r.stderr, args.join(' ')).toMatch(/^hoard: server: no job nope \(`hoard job list` shows them\)$/m);
      expect(r.stdout).toBe('');
    }
  });
});
