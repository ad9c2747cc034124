/**
 * dir: sources end to end: server and agent processes, a real directory tree backed up
 * twice (the second run refers to unchanged files instead of reading them), each snapshot
 * restored as a tree and compared file by file (content, mode, mtime, symlinks), and one
 * file restored on its own.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_TRACE, describeTree } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

interface TargetJson {
  name: string;
  ok: boolean;
  error?: string;
  snapshot?: { id: string };
  totals?: { bytesRead: number; bytesNew: number };
  files?: { read: number; unchanged: number; bytesUnchanged: number; skipped: number };
}

/** path -> what a restore must reproduce. */

describe('dir: sources through server and agent', () => {
  let server: ServerProcess;
  let work: string;
  let tree: string;

  beforeAll(async () => {
    server = await startServerProcess();
    await server.addAgent('files1');
    work = await mkdtemp(join(tmpdir(), 'hoard-dir-e2e-'));
    tree = join(work, 'www');
    await mkdir(join(tree, 'site/assets'), { recursive: true });
    await mkdir(join(tree, 'empty'));
    await writeFile(join(tree, 'index.html'), '<h1>hello</h1>\n');
    await writeFile(join(tree, 'site/big.bin'), randomBytes(3 * 1024 * 1024));
    for (let i = 0; i < 40; i++) await writeFile(join(tree, 'site/assets', `a${i}.css`), `.c${i} { color: #${i}; }\n`.repeat(i + 1));
    await writeFile(join(tree, 'empty.txt'), '');
    await writeFile(join(tree, 'script.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(tree, 'script.sh'), 0o750);
    await symlink('site/big.bin', join(tree, 'link-to-big'));
    await utimes(join(tree, 'index.html'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const run = async (extra: string[] = []): Promise<TargetJson> => {
    const result = await server.cli(['run', '--agent', 'files1', '--job', 'www', '--source', `dir:${tree}`, '--json', ...extra]);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const target = (JSON.parse(result.stdout) as { targets: TargetJson[] }).targets[0]!;
    expect(target.ok, target.error).toBe(true);
    return target;
  };

  const restoreTree = async (snapshot: string, to: string): Promise<void> => {
    const result = await server.cli(['restore', 'www', '--snapshot', snapshot, '--to', to]);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/files, .* directories and 1 symlinks/);
  };

  it('backs up a tree, skips unchanged files the second time, and restores each snapshot exactly', async () => {
    const before = await describeTree(tree);
    const first = await run();
    expect(first.files).toMatchObject({ read: 44, unchanged: 0, skipped: 0 });

    // Change one file, add one, delete one; the rest stays as it was.
    await writeFile(join(tree, 'site/assets/a3.css'), 'changed\n');
    await writeFile(join(tree, 'new.txt'), 'new file\n');
    await rm(join(tree, 'site/assets/a7.css'));
    const after = await describeTree(tree);
    const second = await run();
    expect(second.files).toMatchObject({ read: 2, unchanged: 42, skipped: 0 });
    // Only the changed files, the new one, and the entry table were read.
    expect(second.totals!.bytesRead).toBeLessThan(64 * 1024);
    expect(second.files!.bytesUnchanged).toBeGreaterThan(3 * 1024 * 1024);

    await restoreTree(first.snapshot!.id, join(work, 'r1'));
    expect(await describeTree(join(work, 'r1'))).toEqual(before);
    await restoreTree(second.snapshot!.id, join(work, 'r2'));
    expect(await describeTree(join(work, 'r2'))).toEqual(after);

    // A full run reads everything again and yields the same tree.
    const full = await run(['--full']);
    expect(full.files).toMatchObject({ read: 44, unchanged: 0 });
    await restoreTree(full.snapshot!.id, join(work, 'r3'));
    expect(await describeTree(join(work, 'r3'))).toEqual(after);
  });

  it('restores one file of a directory snapshot, and names what is wrong otherwise', async () => {
    const one = await server.cli(['restore', 'www', '--file', 'site/big.bin', '--to', join(work, 'big.out')]);
    expect(one.code, one.stderr).toBe(0);
    // Buffer.equals: toEqual compares 3 MiB element by element, slowly.
    expect((await readFile(join(work, 'big.out'))).equals(await readFile(join(tree, 'site/big.bin')))).toBe(true);

    const missing = await server.cli(['restore', 'www', '--file', 'site/nope.txt', '--to', join(work, 'nope.out')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/site\/nope\.txt is not in snapshot/);
    expect(missing.stderr).not.toMatch(STACK_TRACE);

    const dir = await server.cli(['restore', 'www', '--file', 'site', '--to', join(work, 'site.out')]);
    expect(dir.code).not.toBe(0);
    expect(dir.stderr).toMatch(/site is a directory, not a file/);

    const exists = await server.cli(['restore', 'www', '--to', tree]);
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/exists: a directory snapshot is restored into a new directory/);
  });

  it('refuses a dir: source that is not a directory, with the fix in the message', async () => {
    const result = await server.cli(['run', '--agent', 'files1', '--job', 'www-bad', '--source', `dir:${join(tree, 'index.html')}`, '--json']);
    expect(result.code).not.toBe(0);
    const target = (JSON.parse(result.stdout) as { targets: TargetJson[] }).targets[0]!;
    expect(target.error).toMatch(/is not a directory; for one file or block device use file:/);
  });
});
