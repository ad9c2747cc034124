/**
 * `hoard sync` through the built CLI (issue 15, item 6): exit codes, --dry-run writes
 * nothing, bad input is one line and exit 2, encrypted repositories with a passphrase
 * each, a damaged source is exit 3, and a sync killed with SIGKILL mid-copy leaves a
 * target that verifies clean, which the next sync completes.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOARD_MAIN, hoardCli, NO_CONFIG_HOME, noise, STACK_TRACE, type CliResult } from './helpers.js';

const MiB = 1 << 20;

function expectCode(r: CliResult, code: number): void {
  if (r.code !== code) throw new Error(`exit ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  expect(r.stderr).not.toMatch(STACK_TRACE);
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(rel, entry.name));
      else out.push(join(rel, entry.name));
    }
  };
  await walk('');
  return out.sort();
}

const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));

describe('hoard sync', () => {
  let dir: string;
  let source: string;
  const files: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-sync-cli-'));
    source = join(dir, 'source');
    expectCode(await hoardCli(['init', '--repo', source, '--pack-size', '4']), 0);
    for (let i = 0; i < 2; i++) {
      if (i > 0) await nextSecond();
      const file = join(dir, `day${i}.img`);
      await writeFile(file, Buffer.concat([noise(1, 6 * MiB), noise(10 + i, 2 * MiB)]));
      files.push(file);
      expectCode(await hoardCli(['backup', '--repo', source, '--job', 'vm', file]), 0);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--help has examples', async () => {
    const r = await hoardCli(['sync', '--help']);
    expectCode(r, 0);
    expect(r.stdout).toMatch(/Examples:\n\s+hoard sync --from/);
    expect(r.stdout).toMatch(/--verify-data/);
  });

  it('bad input: one line, exit 2', async () => {
    const target = join(dir, 'bad-target');
    expectCode(await hoardCli(['init', '--repo', target]), 0);
    const cases: [string[], RegExp][] = [
      [['sync', '--to', target], /--from is required/],
      [['sync', '--from', source], /--to is required/],
      [['sync', '--from', source, '--to', source], /--from and --to are both/],
      [['sync', '--from', source, '--to', join(dir, 'nothing-here')], /no hoard repository at .*nothing-here/],
      [['sync', '--from', source, '--to', target, '--job', 'nope'], /no snapshots of job nope/],
      [['sync', '--from', source, '--to', target, '--job', 'bad/name'], /invalid job name/],
      [['sync', '--from', source, '--to', target, '--snapshot', 'ffffffff'], /--snapshot ffffffff: no snapshot/],
      [['sync', '--from', source, '--to', target, '--from-endpoint', 'http://127.0.0.1:1'], /--from-endpoint applies to an s3:\/\/ repository/],
    ];
    for (const [args, message] of cases) {
      const r = await hoardCli(args);
      expectCode(r, 2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await listFiles(join(target, 'snapshots'))).toEqual([]);
  });

  it('--dry-run writes nothing; then copies, and a second sync copies nothing; the copy restores', async () => {
    const target = join(dir, 'target');
    expectCode(await hoardCli(['init', '--repo', target, '--pack-size', '4']), 0);
    const before = await listFiles(target);
    const dry = await hoardCli(['sync', '--from', source, '--to', target, '--dry-run']);
    expectCode(dry, 0);
    expect(dry.stdout).toMatch(/dry run: nothing is written/);
    expect(dry.stdout.match(/^would copy vm\//gm)).toHaveLength(2);
    expect(await listFiles(target)).toEqual(before);

    const first = await hoardCli(['sync', '--from', source, '--to', target, '--verify-data', '--json']);
    expectCode(first, 0);
    const report = JSON.parse(first.stdout);
    expect(report).toMatchObject({ copied: 2, present: 0, ok: true, verification: { ok: true, dataChecked: true, snapshots: 2 } });
    // Day 2 shares 6 MiB with day 1: the second copy wrote only its new blobs.
    expect(report.bytesNew).toBeLessThan(12 * MiB);

    const second = await hoardCli(['sync', '--from', source, '--to', target]);
    expectCode(second, 0);
    expect(second.stdout).toMatch(/2 already in .*, 0 copied/);

    const restored = join(dir, 'restored.img');
    expectCode(await hoardCli(['restore', '--repo', target, 'vm', '--to', restored]), 0);
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(restored)).equals(await readFile(files[1]))).toBe(true);
  });

  it('encrypted repositories, a passphrase file each; an encrypted source into a plain target is refused', async () => {
    const secretSource = join(dir, 'secret-source');
    const secretTarget = join(dir, 'secret-target');
    const plain = join(dir, 'plain-target');
    await writeFile(join(dir, 'p1'), 'first secret\n');
    await writeFile(join(dir, 'p2'), 'second secret\n');
    expectCode(await hoardCli(['init', '--repo', secretSource, '--encrypt', '--passphrase-file', join(dir, 'p1')]), 0);
    expectCode(await hoardCli(['init', '--repo', secretTarget, '--encrypt', '--passphrase-file', join(dir, 'p2')]), 0);
    expectCode(await hoardCli(['init', '--repo', plain]), 0);
    expectCode(await hoardCli(['backup', '--repo', secretSource, '--passphrase-file', join(dir, 'p1'), '--job', 'db', files[0]]), 0);

    const refused = await hoardCli(['sync', '--from', secretSource, '--to', plain, '--from-passphrase-file', join(dir, 'p1')]);
    expectCode(refused, 2);
    expect(refused.stderr).toMatch(/is encrypted and .* is not/);

    const wrong = await hoardCli([
      'sync',
      '--from',
      secretSource,
      '--to',
      secretTarget,
      '--from-passphrase-file',
      join(dir, 'p1'),
      '--to-passphrase-file',
      join(dir, 'p1'),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/passphrase/);
    expect(await listFiles(join(secretTarget, 'snapshots'))).toEqual([]);

    const ok = await hoardCli([
      'sync',
      '--from',
      secretSource,
      '--to',
      secretTarget,
      '--from-passphrase-file',
      join(dir, 'p1'),
      '--to-passphrase-file',
      join(dir, 'p2'),
    ]);
    expectCode(ok, 0);
    expect(ok.stdout).toMatch(/1 copied/);
    const check = await hoardCli(['restore', '--repo', secretTarget, '--passphrase-file', join(dir, 'p2'), 'db', '--verify-only']);
    expectCode(check, 0);

    // A copy target paired with the source (sync.md, "Paired stores"), and what is refused.
    const paired = join(dir, 'paired-target');
    const noEncrypt = await hoardCli(['init', '--repo', paired, '--fingerprints-from', secretSource]);
    expectCode(noEncrypt, 2);
    expect(noEncrypt.stderr).toMatch(/^hoard: --fingerprints-from pairs two encrypted repositories: add --encrypt/);
    const fromPlain = await hoardCli(['init', '--repo', paired, '--encrypt', '--passphrase-file', join(dir, 'p2'), '--fingerprints-from', plain]);
    expectCode(fromPlain, 2);
    expect(fromPlain.stderr).toMatch(/that repository is not encrypted/);
    const made = await hoardCli([
      'init',
      '--repo',
      paired,
      '--encrypt',
      '--passphrase-file',
      join(dir, 'p2'),
      '--fingerprints-from',
      secretSource,
      '--from-passphrase-file',
      join(dir, 'p1'),
      '--json',
    ]);
    expectCode(made, 0);
    expect(JSON.parse(made.stdout)).toMatchObject({ encrypted: true, pairedWith: secretSource });
    const copied = await hoardCli([
      'sync',
      '--from',
      secretSource,
      '--to',
      paired,
      '--from-passphrase-file',
      join(dir, 'p1'),
      '--to-passphrase-file',
      join(dir, 'p2'),
    ]);
    expectCode(copied, 0);
    expectCode(await hoardCli(['restore', '--repo', paired, '--passphrase-file', join(dir, 'p2'), 'db', '--verify-only']), 0);
  });

  it('a damaged source blob: exit 3, naming the pack, and nothing committed', async () => {
    const damaged = join(dir, 'damaged-source');
    const target = join(dir, 'damaged-target');
    expectCode(await hoardCli(['init', '--repo', damaged, '--pack-size', '4']), 0);
    expectCode(await hoardCli(['init', '--repo', target]), 0);
    expectCode(await hoardCli(['backup', '--repo', damaged, '--job', 'vm', files[0]]), 0);
    const [pack] = (await listFiles(damaged)).filter((f) => f.startsWith('packs/'));
    const path = join(damaged, pack);
    await chmod(path, 0o644);
    const file = await open(path, 'r+');
    await file.write(Buffer.from([0x55, 0xaa]), 0, 2, 1000);
    await file.close();
    const r = await hoardCli(['sync', '--from', damaged, '--to', target]);
    expectCode(r, 3);
    expect(r.stderr).toMatch(/packs\//);
    expect(await listFiles(join(target, 'snapshots'))).toEqual([]);
  });

  it('killed with SIGKILL mid-sync: the target verifies clean, and the next sync completes it', async () => {
    const big = join(dir, 'big-source');
    const target = join(dir, 'big-target');
    expectCode(await hoardCli(['init', '--repo', big, '--pack-size', '4']), 0);
    expectCode(await hoardCli(['init', '--repo', target, '--pack-size', '4']), 0);
    const sizes = [4, 24, 24];
    for (const [i, size] of sizes.entries()) {
      if (i > 0) await nextSecond();
      const file = join(dir, `big${i}.img`);
      await writeFile(file, noise(100 + i, size * MiB));
      expectCode(await hoardCli(['backup', '--repo', big, '--job', 'vm', file]), 0);
    }
    // Killed as soon as the first (small) snapshot is reported copied: the next one is being copied then.
    const child = spawn(process.execPath, [HOARD_MAIN, 'sync', '--from', big, '--to', target], {
      env: { ...process.env, HOARD_PASSPHRASE: '', XDG_CONFIG_HOME: NO_CONFIG_HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('copied vm/')) child.kill('SIGKILL');
    });
    expect(await exited).toBe('SIGKILL');
    const copiedBefore = (await listFiles(join(target, 'snapshots'))).length;
    expect(copiedBefore).toBeGreaterThanOrEqual(1);
    expect(copiedBefore).toBeLessThan(3);
    expectCode(await hoardCli(['verify', '--repo', target]), 0);

    const resumed = await hoardCli(['sync', '--from', big, '--to', target, '--verify-data', '--json']);
    expectCode(resumed, 0);
    const report = JSON.parse(resumed.stdout);
    expect(report.present).toBe(copiedBefore);
    expect(report.copied).toBe(3 - copiedBefore);
    expect((await listFiles(join(target, 'snapshots'))).length).toBe(3);
    expectCode(await hoardCli(['verify', '--repo', target, '--read-data']), 0);
  });
});
