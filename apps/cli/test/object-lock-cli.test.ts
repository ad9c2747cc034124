/**
 * `hoard init --object-lock` and what prune and gc say about locked objects, through the
 * built CLI against the run's Ceph RGW (docs/storage.md, "Object Lock"); and the refusals:
 * a directory, a bucket created without Object Lock, bad days or mode.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listAll } from '@hoard/repository';
import { S3ObjectStore } from '@hoard/repository/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3TestServer } from '../../../test-support/s3-test-env.js';
import { hoardCli, STACK_TRACE, type CliResult } from './helpers.js';

const DAY_MS = 24 * 3600_000;
let env: Record<string, string>;
const stores: S3ObjectStore[] = [];
let base: string;

beforeAll(async () => {
  const server = s3TestServer();
  env = {
    AWS_ENDPOINT_URL: server.endpoint,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  base = await mkdtemp(join(tmpdir(), 'hoard-lock-cli-'));
});

afterAll(async () => {
  for (const s of stores.splice(0)) s.close();
  await rm(base, { recursive: true, force: true });
});

const bucket = (what: string) => `hoard-lockcli-${what}-${randomUUID().slice(0, 8)}`;
const cli = (args: string[], stdin?: Buffer) => hoardCli(args, { env, stdin });

/** exit 2, one `hoard:` line matching `pattern`, no stack trace. */
function expectUsageError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('hoard:'))).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(STACK_TRACE);
}

/**
 * The bucket as a plain S3 client with the repository's credentials sees it (no lock
 * settings applied: its deletes are plain DELETEs).
 */
function bucketView(b: string): S3ObjectStore {
  const server = s3TestServer();
  const store = new S3ObjectStore({
    bucket: b,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    env: {},
  });
  stores.push(store);
  return store;
}

async function keys(b: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listAll(bucketView(b), prefix)) out.push(o.key);
  return out;
}

describe('hoard init --object-lock', () => {
  it('creates the bucket with Object Lock; backups are locked; prune and gc keep what is locked, say until when, and exit 0', async () => {
    const b = bucket('ok');
    const repo = `s3://${b}/repo`;
    const init = await cli(['init', '--repo', repo, '--object-lock', '1', '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ objectLock: { mode: 'COMPLIANCE', days: 1 } });

    for (const seed of [1, 2]) {
      const backup = await cli(['backup', '--repo', repo, '--job', 'db', '-'], randomBytes(512 * 1024));
      expect(backup.code, backup.stderr).toBe(0);
      if (seed === 1) await new Promise((resolve) => setTimeout(resolve, 1100)); // manifests are named by the second
    }
    const manifests = await keys(b, 'repo/snapshots/');
    expect(manifests).toHaveLength(2);
    const [pack] = await keys(b, 'repo/packs/');
    const view = bucketView(b);
    expect((await view.lockedUntil(pack))!.getTime()).toBeGreaterThan(Date.now() + DAY_MS - 120_000);
    expect((await view.lockedUntil(manifests[1]))!.getTime()).toBeGreaterThan(Date.now() + DAY_MS - 120_000);

    const prune = await cli(['prune', '--repo', repo, '--job', 'db', '--keep-last', '1']);
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toMatch(/locked until \d{4}-\d\d-\d\dT/);
    expect(prune.stdout).toMatch(/kept 2, forgot 0 snapshot/);
    expect(await keys(b, 'repo/snapshots/')).toEqual(manifests);

    // The older snapshot hidden behind a delete marker (a plain DELETE, as a thief can do):
    // its data is dead to gc, which keeps it while it is locked.
    await view.deleteMany([manifests[0]]);
    expect(await keys(b, 'repo/snapshots/')).toEqual([manifests[1]]);
    const gc = await cli(['gc', '--repo', repo, '--grace', '0s']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/kept: [1-9]\d* pack\(s\) and [1-9]\d* chunk-list page\(s\) that nothing needs are locked \(S3 Object Lock\) until \d{4}-/);
    const again = await cli(['gc', '--repo', repo, '--grace', '0s', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout);
    expect(report.packs.deleted).toBe(0);
    expect(Date.parse(report.locked.lastUnlock)).toBeGreaterThan(Date.now() + DAY_MS - 120_000);
    expect(await keys(b, 'repo/packs/')).toContain(pack);
  });

  it('refuses a directory, a bucket without Object Lock, and bad days or mode, in one line with exit 2', async () => {
    const dir = join(base, 'fs-repo');
    expectUsageError(await cli(['init', '--repo', dir, '--object-lock']), /--object-lock needs an S3 repository \(--repo s3:\/\/bucket\/prefix\)/);
    expect(await readdir(base)).not.toContain('fs-repo');

    const plain = bucket('plain');
    const first = await cli(['init', '--repo', `s3://${plain}/a`]);
    expect(first.code, first.stderr).toBe(0);
    const refused = await cli(['init', '--repo', `s3://${plain}/b`, '--object-lock', '7']);
    expectUsageError(refused, new RegExp(`bucket of s3://${plain}/b does not have Object Lock enabled.*new bucket name`));
    expect(await keys(plain, 'b/')).toEqual([]);

    const fresh = `s3://${bucket('bad')}/r`;
    expectUsageError(await cli(['init', '--repo', fresh, '--object-lock', '0']), /--object-lock 0: give the retention in whole days from 1 to 36500/);
    expectUsageError(await cli(['init', '--repo', fresh, '--object-lock', '1.5']), /--object-lock 1.5: give the retention in whole days/);
    expectUsageError(
      await cli(['init', '--repo', fresh, '--object-lock', '--object-lock-mode', 'forever']),
      /--object-lock-mode forever: use compliance or governance/,
    );
    expectUsageError(await cli(['init', '--repo', fresh, '--object-lock-mode', 'governance']), /--object-lock-mode needs --object-lock/);
  });

  it('hoard repair lists objects hidden behind delete markers, and --undelete brings them back', async () => {
    const b = bucket('hide');
    const repo = `s3://${b}/r`;
    expect((await cli(['init', '--repo', repo, '--object-lock', '1'])).code).toBe(0);
    const source = randomBytes(256 * 1024);
    expect((await cli(['backup', '--repo', repo, '--job', 'db', '-'], source)).code).toBe(0);
    const [manifest] = await keys(b, 'r/snapshots/');
    const [pack] = await keys(b, 'r/packs/');
    // The thief's plain DELETEs: the snapshot is gone from view.
    await bucketView(b).deleteMany([manifest, pack]);
    const listed = await cli(['snapshots', '--repo', repo, '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([]);

    const dry = await cli(['repair', '--repo', repo, '--dry-run', '--undelete']);
    expect(dry.stdout).toMatch(/2 object\(s\) are hidden behind S3 delete markers .*--undelete without --dry-run would bring them back/);
    expect(dry.stdout).toContain(manifest.slice('r/'.length));
    expect(JSON.parse((await cli(['snapshots', '--repo', repo, '--json'])).stdout)).toEqual([]);

    const undone = await cli(['repair', '--repo', repo, '--undelete', '--json']);
    expect(undone.code, undone.stderr).toBe(0);
    expect(JSON.parse(undone.stdout).hidden).toEqual({ keys: [pack, manifest].map((k) => k.slice('r/'.length)).sort(), undeleted: true });
    expect(JSON.parse((await cli(['snapshots', '--repo', repo, '--json'])).stdout)).toHaveLength(1);
    const restored = await cli(['restore', '--repo', repo, 'db', '--to', '-']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(Buffer.compare(restored.stdoutBytes, source)).toBe(0);
  });

  it('governance mode is recorded and applied', async () => {
    const b = bucket('gov');
    const repo = `s3://${b}/r`;
    const init = await cli(['init', '--repo', repo, '--object-lock', '2', '--object-lock-mode', 'governance']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/locked \(governance\) for 2 day\(s\)/);
    const backup = await cli(['backup', '--repo', repo, '--job', 'db', '-'], randomBytes(64 * 1024));
    expect(backup.code, backup.stderr).toBe(0);
    const view = bucketView(b);
    expect(JSON.parse(Buffer.from(await view.get('r/config')).toString()).objectLock).toEqual({ mode: 'GOVERNANCE', days: 2 });
    const [manifest] = await keys(b, 'r/snapshots/');
    expect((await view.lockedUntil(manifest))!.getTime()).toBeGreaterThan(Date.now() + 2 * DAY_MS - 120_000);
  });
});
