/**
 * `hoard restore --server URL JOB --to agent:NAME:PATH` end to end: a server and two
 * agent processes on loopback. Agent src1 backs up a raw image (file:) and a tree (dir:);
 * agent dst1, which does not own those jobs, restores them on its host through restore
 * runs. Each restore is compared byte for byte with the source; an existing path is
 * refused without --force; one file of the tree with --file; --at is pinned to the
 * snapshot it picked; unknown/revoked agents and relative paths are refused.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_TRACE, describeTree } from './helpers.js';
import { startServerProcess, type AgentProcess, type ServerProcess } from './server-processes.js';

interface RestoreJson {
  run: string;
  snapshot: string;
  agent: string;
  path: string;
  bytes: number;
  wrote: string;
  files?: number;
  file?: string;
}

describe('restore to an agent (--to agent:NAME:PATH)', () => {
  let server: ServerProcess;
  let dst: AgentProcess;
  let work: string;
  let image: string;
  let original: Buffer;
  let tree: string;
  let out: string;
  let imageSnapshots: string[] = [];
  let imageStarted: string[] = [];
  let treeSnapshot: string;

  const backup = async (job: string, source: string): Promise<{ id: string; startedAt: string }> => {
    const result = await server.cli(['run', '--agent', 'src1', '--job', job, '--source', source, '--json']);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    return (JSON.parse(result.stdout) as { targets: Array<{ snapshot: { id: string; startedAt: string } }> }).targets[0]!.snapshot;
  };

  const restoreTo = (job: string, to: string, extra: string[] = []): ReturnType<ServerProcess['cli']> =>
    server.cli(['restore', job, '--to', to, '--json', ...extra]);

  beforeAll(async () => {
    server = await startServerProcess();
    await server.addAgent('src1');
    dst = await server.addAgent('dst1');
    work = await mkdtemp(join(tmpdir(), 'hoard-restore-agent-'));
    out = join(work, 'out');
    await mkdir(out);
    image = join(work, 'disk.img');
    // An 8 MiB hole: restored onto the agent, it must stay a hole (holes travel as counts).
    original = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(8 * 1024 * 1024), randomBytes(777)]);
    await writeFile(image, original);
    const first = await backup('img', `file:${image}`);
    const changed = Buffer.from(original);
    changed.fill(7, 100_000, 300_000);
    await writeFile(image, changed);
    const second = await backup('img', `file:${image}`);
    imageSnapshots = [first.id, second.id];
    imageStarted = [first.startedAt, second.startedAt];

    tree = join(work, 'www');
    await mkdir(join(tree, 'site/assets'), { recursive: true });
    await mkdir(join(tree, 'empty'));
    await writeFile(join(tree, 'index.html'), '<h1>hello</h1>\n');
    await writeFile(join(tree, 'site/big.bin'), randomBytes(2 * 1024 * 1024 + 5));
    for (let i = 0; i < 10; i++) await writeFile(join(tree, 'site/assets', `a${i}.css`), `.c${i} {}\n`.repeat(i + 1));
    await writeFile(join(tree, 'script.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(tree, 'script.sh'), 0o750);
    await symlink('site/big.bin', join(tree, 'link-to-big'));
    treeSnapshot = (await backup('www', `dir:${tree}`)).id;
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("restores a file snapshot on another agent's host, byte-identical, and --at is pinned to the snapshot it picked", async () => {
    const to = join(out, 'disk-latest.img');
    const result = await restoreTo('img', `agent:dst1:${to}`);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const r = JSON.parse(result.stdout) as RestoreJson;
    expect(r).toMatchObject({ snapshot: imageSnapshots[1], agent: 'dst1', path: to, bytes: original.length, wrote: 'stream' });
    expect((await readFile(to)).equals(await readFile(image))).toBe(true);
    await expect(lstat(`${to}.partial`)).rejects.toThrow();
    // Written sparse: the 8 MiB hole is not allocated on the agent's disk.
    expect((await lstat(to)).blocks * 512).toBeLessThan(original.length - 6 * 1024 * 1024);

    // --at the first snapshot's start: the older bytes.
    const old = join(out, 'disk-first.img');
    const atFirst = await restoreTo('img', `agent:dst1:${old}`, ['--at', imageStarted[0]!]);
    expect(atFirst.code, atFirst.stderr).toBe(0);
    expect((JSON.parse(atFirst.stdout) as RestoreJson).snapshot).toBe(imageSnapshots[0]);
    expect((await readFile(old)).equals(original)).toBe(true);
    // The human form names the snapshot, the path and the agent.
    const again = await server.cli(['restore', 'img', '--snapshot', imageSnapshots[0]!, '--to', `agent:dst1:${join(out, 'disk-human.img')}`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      new RegExp(`restored the stream of snapshot ${imageSnapshots[0]} of job img .* to ${join(out, 'disk-human.img')} on agent dst1`),
    );
  });

  it("refuses an existing path without --force (the agent's message comes back, exit 1), and replaces it with --force", async () => {
    const to = join(out, 'existing.img');
    await writeFile(to, 'keep me');
    const refused = await server.cli(['restore', 'img', '--to', `agent:dst1:${to}`]);
    expect(refused.stderr).not.toMatch(STACK_TRACE);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/exists on agent dst1: restore elsewhere, or add --force/);
    expect(await readFile(to, 'utf8')).toBe('keep me');
    const forced = await restoreTo('img', `agent:dst1:${to}`, ['--force', '--snapshot', imageSnapshots[0]!]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readFile(to)).equals(original)).toBe(true);
  });

  it('restores a directory snapshot as a tree on the agent, identical to the source', async () => {
    const to = join(out, 'www');
    const result = await restoreTo('www', `agent:dst1:${to}`);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const r = JSON.parse(result.stdout) as RestoreJson;
    expect(r).toMatchObject({ snapshot: treeSnapshot, wrote: 'tree', files: 13 });
    expect(await describeTree(to)).toEqual(await describeTree(tree));
    // A tree goes into a new directory: the same path again is refused.
    const refused = await server.cli(['restore', 'www', '--to', `agent:dst1:${to}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/exists on agent dst1/);
  });

  it('restores one file of a directory snapshot with --file', async () => {
    const to = join(out, 'big.bin');
    const result = await restoreTo('www', `agent:dst1:${to}`, ['--file', 'site/big.bin']);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ wrote: 'file', file: 'site/big.bin', bytes: 2 * 1024 * 1024 + 5 });
    expect((await readFile(to)).equals(await readFile(join(tree, 'site/big.bin')))).toBe(true);
    const missing = await server.cli(['restore', 'www', '--to', `agent:dst1:${join(out, 'nope')}`, '--file', 'no/such/file']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no\/such\/file is not in snapshot/);
  });

  it('refuses an unknown agent, a revoked agent and a relative path with clear messages', async () => {
    const unknown = await server.cli(['restore', 'img', '--to', 'agent:nobody:/tmp/x.img']);
    expect(unknown.stderr).not.toMatch(STACK_TRACE);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no agent nobody/);
    expect((await server.cli(['agent', 'add', 'gone1'])).code).toBe(0);
    expect((await server.cli(['agent', 'revoke', 'gone1'])).code).toBe(0);
    const revoked = await server.cli(['restore', 'img', '--to', 'agent:gone1:/tmp/x.img']);
    expect(revoked.code).toBe(2);
    expect(revoked.stderr).toMatch(/agent gone1 was revoked/);
    const relative = await server.cli(['restore', 'img', '--to', 'agent:dst1:restored/x.img']);
    expect(relative.code).toBe(2);
    expect(relative.stderr).toMatch(/must be absolute/);
    // The server checks it too.
    const res = await fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent: 'dst1', job: 'img', restore: { path: 'x.img' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/restore.path must be an absolute path/);
  });

  it("an agent reads another agent's job only during its restore run", async () => {
    const res = await fetch(`${server.url}/v1/jobs/img/restore?offset=0&length=0`, { headers: { authorization: `Bearer ${dst.token}` } });
    expect(res.status).toBe(403);
  });
});
