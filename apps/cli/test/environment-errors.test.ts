/**
 * Issue 15, item 5: what the environment refuses (a full disk, a read-only file system,
 * no permission, a bucket over its quota) is one line naming the path or bucket and what
 * to do, exit 1, nothing committed; never a stack trace with "this looks like a bug".
 * Real conditions: small tmpfs mounts (root only; the tests skip otherwise), a read-only
 * remount, a process without root's permissions (setpriv), a real RGW bucket quota.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3TestServer } from '../../../test-support/s3-test-env.js';
import { hoardCli, STACK_TRACE, type CliResult } from './helpers.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let base: string;
const mounts: string[] = [];

async function tmpfs(name: string, size: string): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** exit 1, one line on stderr matching `pattern`, no stack trace, no bug report. */
function expectEnvironmentError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  const text = result.stderr.trim();
  expect(text.split('\n').filter((l) => l.startsWith('hoard:'))).toHaveLength(1);
  expect(text).toMatch(pattern);
  expect(text).not.toMatch(STACK_TRACE);
  expect(text).not.toMatch(/looks like a bug/);
}

async function snapshotCount(repo: string, env?: Record<string, string>): Promise<number> {
  const listed = await hoardCli(['snapshots', '--repo', repo, '--json'], { env });
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as unknown[]).length;
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'hoard-env-'));
});

afterAll(async () => {
  // Unmount even when a test failed; lazily if something still holds the mount.
  for (const dir of mounts.splice(0).reverse()) {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]).catch(() => undefined));
  }
  await rm(base, { recursive: true, force: true });
});

describe.skipIf(!isRoot)('hoard on a file system that refuses (tmpfs mounts)', () => {
  it('a full disk during a backup into an fs repository: one line naming the repository, exit 1, nothing committed; with room the next backup works', async () => {
    const small = await tmpfs('full', '2m');
    const repo = join(small, 'repo');
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    const source = join(base, 'source.bin');
    const data = randomBytes(6 * MiB); // incompressible: 6 MiB of packs on a 2 MiB disk
    await writeFile(source, data);

    const full = await hoardCli(['backup', '--repo', repo, '--job', 'vm', source]);
    expectEnvironmentError(full, new RegExp(`no space left on the file system of ${repo} \\(ENOSPC\\): free space`));
    expect(await snapshotCount(repo)).toBe(0);
    expect(await readdir(join(repo, 'snapshots')).catch(() => [])).toEqual([]);

    // Room again (the same repository, a larger file system): the next backup commits.
    await run('mount', ['-o', 'remount,size=64m', small]);
    const ok = await hoardCli(['backup', '--repo', repo, '--job', 'vm', source]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await snapshotCount(repo)).toBe(1);
    const restored = await hoardCli(['restore', '--repo', repo, 'vm', '--to', '-']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha(restored.stdoutBytes)).toBe(sha(data));
    const verified = await hoardCli(['verify', '--repo', repo, '--read-data']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('a read-only file system: backup and init are one line naming the path (EROFS), exit 1, nothing committed', async () => {
    const ro = await tmpfs('ro', '16m');
    const repo = join(ro, 'repo');
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    await run('mount', ['-o', 'remount,ro', ro]);
    const backedUp = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: randomBytes(MiB) });
    expectEnvironmentError(backedUp, new RegExp(`${repo} is on a read-only file system \\(EROFS\\): remount it read-write`));
    expect(await snapshotCount(repo)).toBe(0);
    const init = await hoardCli(['init', '--repo', join(ro, 'other')]);
    expectEnvironmentError(init, new RegExp(`${join(ro, 'other')} is on a read-only file system \\(EROFS\\)`));
  });

  it('restore onto a full file system: one line, exit 1, the .partial file removed', async () => {
    const repo = join(base, 'restore-repo');
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    const data = randomBytes(6 * MiB);
    expect((await hoardCli(['backup', '--repo', repo, '--job', 'img', '-'], { stdin: data })).code).toBe(0);
    const small = await tmpfs('target', '2m');
    const target = join(small, 'img.raw');
    const restored = await hoardCli(['restore', '--repo', repo, 'img', '--to', target]);
    expectEnvironmentError(
      restored,
      new RegExp(`cannot write ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOSPC.*: free space there or use a disk with room`),
    );
    expect(await readdir(small)).toEqual([]);
  });
});

describe.skipIf(!isRoot)('hoard without permission to write (a process that is not root)', () => {
  it('permission denied: one line naming the path (EACCES), exit 1, nothing committed', async () => {
    // Root is never refused by file modes: run hoard as nobody (setpriv). The repository
    // is root's, world-readable, not writable by nobody.
    const hoardMain = join(import.meta.dirname, '..', 'dist', 'main.js');
    const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, hoardMain];
    const canRun = await run('setpriv', [...asNobody, '--help']).then(
      () => true,
      () => false,
    );
    if (!canRun) return; // setpriv missing, or nobody cannot read the build: nothing to test here
    const dir = join(base, 'perm');
    await mkdir(dir);
    await chmod(base, 0o755);
    const repo = join(dir, 'repo');
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    await run('chmod', ['-R', 'a+rX,go-w', dir]);
    const source = join(dir, 'source.bin');
    await writeFile(source, randomBytes(MiB));
    await chmod(source, 0o644);
    const result = await new Promise<CliResult>((resolve) => {
      execFile(
        'setpriv',
        [...asNobody, 'backup', '--repo', repo, '--job', 'db', source],
        { env: { ...process.env, HOARD_PASSPHRASE: '' } },
        (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr, stdoutBytes: Buffer.from(stdout) });
        },
      );
    });
    expectEnvironmentError(result, new RegExp(`permission denied on ${repo} \\(EACCES\\): run hoard as a user that may write there`));
    expect(await snapshotCount(repo)).toBe(0);
  });
});

/**
 * The RGW the run started (test-support/global-setup.ts) keeps its ceph.conf in its own
 * temp directory; radosgw-admin needs it (CEPH_CONF) to set a bucket quota.
 */
async function rgwConf(endpoint: string): Promise<string | undefined> {
  const port = new URL(endpoint).port;
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith('hoard-rgw-')) continue;
    const conf = join(tmpdir(), name, 'ceph.conf');
    const text = await readFile(conf, 'utf8').catch(() => '');
    if (text.includes(`endpoint=127.0.0.1:${port} `) || text.includes(`endpoint=127.0.0.1:${port}\n`)) return conf;
  }
  return undefined;
}

describe('hoard with an S3 bucket over its quota (Ceph RGW bucket quota)', () => {
  it('QuotaExceeded: one line naming the bucket, exit 1, nothing committed; with the quota raised the next backup works', async () => {
    const server = s3TestServer();
    const conf = await rgwConf(server.endpoint);
    const admin = await access('/usr/bin/radosgw-admin').then(
      () => true,
      () => false,
    );
    if (!conf || !admin) throw new Error(`cannot set an RGW quota: ${conf ? 'no radosgw-admin' : `no ceph.conf for ${server.endpoint} under ${tmpdir()}`}`);
    const radosgwAdmin = (...args: string[]) => run('radosgw-admin', args, { env: { ...process.env, CEPH_CONF: conf } });
    const env = {
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_REGION: 'us-east-1',
    };
    const bucket = `hoard-quota-${process.pid}-${Date.now() % 100000}`;
    const repo = `s3://${bucket}/repo`;
    expect((await hoardCli(['init', '--repo', repo], { env })).code).toBe(0);
    // A single object larger than the quota is refused whatever RGW's cached bucket stats
    // say, so the refusal does not depend on timing.
    await radosgwAdmin('quota', 'set', '--quota-scope=bucket', `--bucket=${bucket}`, '--max-size=1048576');
    await radosgwAdmin('quota', 'enable', '--quota-scope=bucket', `--bucket=${bucket}`);
    const data = randomBytes(6 * MiB);
    const over = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: data, env });
    expectEnvironmentError(over, new RegExp(`bucket ${bucket} at ${server.endpoint.replace(/[.]/g, '\\.')} is over its quota \\(QuotaExceeded\\): raise`));
    expect(await snapshotCount(repo, env)).toBe(0);

    await radosgwAdmin('quota', 'disable', '--quota-scope=bucket', `--bucket=${bucket}`);
    // RGW caches the bucket's quota settings briefly: retry until the upload is accepted.
    let ok: CliResult | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      ok = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: data, env });
      if (ok.code === 0 || !/QuotaExceeded/.test(ok.stderr)) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(ok!.code, ok!.stderr).toBe(0);
    expect(await snapshotCount(repo, env)).toBe(1);
    const restored = await hoardCli(['restore', '--repo', repo, 'db', '--to', '-'], { env });
    expect(sha(restored.stdoutBytes)).toBe(sha(data));
  });
});

describe('exit status of environment errors (codes this machine cannot produce for real as root)', () => {
  it('EDQUOT and EPERM from a store, wrapped by a pack upload, and an errno error of a CLI file: one line, exit 1', async () => {
    const { exitStatus } = await import('../dist/exit-status.js');
    const { EnvironmentError, StoreWriteError } = await import('@hoard/repository');
    const quota = new EnvironmentError('fs:/srv/hoard', 'put', 'packs/ab/abcd', 'EDQUOT', { path: '/srv/hoard' });
    const wrapped = new StoreWriteError(`uploading pack packs/ab/abcd in store default failed: ${quota.message}`, quota);
    expect(exitStatus(wrapped)).toEqual({
      code: 1,
      message:
        'put packs/ab/abcd in fs:/srv/hoard failed: disk quota exceeded on the file system of /srv/hoard (EDQUOT): raise the quota of the user running hoard or free space there',
    });
    const perm = Object.assign(new Error("EPERM: operation not permitted, open '/etc/hoard/key'"), { code: 'EPERM', path: '/etc/hoard/key' });
    expect(exitStatus(perm)).toEqual({
      code: 1,
      message: "permission denied on /etc/hoard/key (EPERM): run hoard as a user that may write there, or change the directory's owner or mode",
    });
    const bucket = new EnvironmentError('s3://b/p', 'put', 'packs/ab/abcd', 'QuotaExceeded', { bucket: 'b' });
    expect(exitStatus(new Error('outer', { cause: bucket })).message).toBe(
      "put packs/ab/abcd in s3://b/p failed: bucket b is over its quota (QuotaExceeded): raise the bucket's or the user's quota, or forget snapshots and run `hoard gc`",
    );
  });
});

describe.skipIf(!isRoot)('a media server whose repository disk is full', () => {
  it('hoard run through the server: exit 1, the run failed with one line naming the repository, no snapshot; the next run with room succeeds', async () => {
    const { startServerProcess } = await import('./server-processes.js');
    const small = await tmpfs('server-full', '3m');
    const repo = join(small, 'repo');
    const server = await startServerProcess({ storage: `fs:${repo}` });
    try {
      await server.addAgent('a1');
      const source = join(base, 'server-source.bin');
      await writeFile(source, randomBytes(8 * MiB));
      const failed = await server.cli(['run', '--agent', 'a1', '--job', 'img', '--source', `file:${source}`, '--json']);
      expect(failed.code, failed.stderr).toBe(1);
      expect(failed.stderr).not.toMatch(STACK_TRACE);
      const run = JSON.parse(failed.stdout) as { state: string; error?: string; targets: { error?: string }[] };
      expect(run.state).toBe('failed');
      expect(run.targets[0]!.error).toMatch(
        new RegExp(
          `^the server (could not store this snapshot|'s storage refused): .*no space left on the file system of ${repo} \\(ENOSPC\\): free space there or use a disk with room`,
        ),
      );
      expect(run.targets[0]!.error).not.toMatch(/\n/);
      expect(JSON.stringify(run)).not.toMatch(/internal error/);
      expect(await readdir(join(repo, 'snapshots')).catch(() => [])).toEqual([]);
      await run_('mount', ['-o', 'remount,size=64m', small]);
      const ok = await server.cli(['run', '--agent', 'a1', '--job', 'img', '--source', `file:${source}`, '--json']);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    } finally {
      await server.stop();
    }
  });
});
const run_ = run;
