/**
 * The embedded repository commands end to end, through the built `hoard` binary:
 * init, backup (file and stdin), snapshots, restore (--snapshot, --at, stdout, ranges),
 * verify, stats, and the errors a user can make on the way.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3TestServer } from '../../../test-support/s3-test-env.js';
import { hoardCli, STACK_TRACE } from './helpers.js';

const MiB = 1 << 20;

/** Deterministic bytes: compressible text, incompressible noise and zero runs. */
function testData(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let o = 0; o < size; ) {
    const kind = next() % 3;
    const len = Math.min(size - o, 16384 + (next() % 262144));
    if (kind === 0) for (let i = 0; i < len; i += 4) out.writeUInt32LE(next(), Math.min(o + i, size - 4));
    else if (kind === 1) out.write(`row ${next() % 1000} of table shop.orders; `.repeat(Math.ceil(len / 32)).slice(0, len), o, 'latin1');
    o += len;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('hoard repository commands', () => {
  let dir: string;
  let repo: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-cli-'));
    repo = join(dir, 'repo');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('init, back up a file and stdin, list, restore by id, by time and to stdout, verify, stats', async () => {
    const init = await hoardCli(['init', '--repo', repo]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/created repository/);

    const again = await hoardCli(['init', '--repo', repo]);
    expect(again.code).toBe(2); // repository_exists: nothing was done
    expect(again.stderr).toMatch(/already holds a hoard repository/);

    const image = testData(1, 6 * MiB);
    image.fill(0, MiB, 3 * MiB); // a sparse region
    await writeFile(join(dir, 'disk.img'), image);
    const first = await hoardCli(['backup', '--repo', repo, '--job', 'vm', join(dir, 'disk.img'), '--json']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const b1 = JSON.parse(first.stdout) as { snapshot: string; bytesRead: number; bytesNew: number; bytesZero: number };
    expect(b1.bytesRead).toBe(image.length);
    expect(b1.bytesZero).toBeGreaterThan(MiB);

    const changed = Buffer.from(image);
    testData(2, 64 * 1024).copy(changed, 4 * MiB);
    await writeFile(join(dir, 'disk.img'), changed);
    const second = await hoardCli(['backup', '--repo', repo, '--job', 'vm', join(dir, 'disk.img'), '--json']);
    expect(second.code).toBe(0);
    const b2 = JSON.parse(second.stdout) as { snapshot: string; bytesNew: number };
    expect(b2.bytesNew).toBeLessThan(MiB);

    const dump = testData(3, 3 * MiB);
    const pieces = Array.from({ length: 30 }, (_, i) => dump.subarray((i * dump.length) / 30, ((i + 1) * dump.length) / 30));
    const piped = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-', '--json'], { stdin: pieces });
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);

    const list = await hoardCli(['snapshots', '--repo', repo, '--json']);
    const snaps = JSON.parse(list.stdout) as Array<{ id: string; job: string; startedAt: string; source: { kind: string } }>;
    expect(snaps.map((s) => s.job).sort()).toEqual(['db', 'vm', 'vm']);
    expect(snaps.find((s) => s.job === 'db')!.source.kind).toBe('stream');
    const table = await hoardCli(['snapshots', '--repo', repo, '--job', 'vm']);
    expect(table.stdout).toContain(b1.snapshot);
    expect(table.stdout).toContain(b2.snapshot);

    // by id (a prefix), to a file: the first version, holes included
    const out1 = join(dir, 'restored-1.img');
    const r1 = await hoardCli(['restore', '--repo', repo, 'vm', '--snapshot', b1.snapshot.slice(0, 6), '--to', out1]);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    expect(sha(await readFile(out1))).toBe(sha(image));
    expect((await stat(out1)).blocks * 512).toBeLessThan(image.length - MiB);

    // by time: just after the second backup started -> the second version
    const vm2 = snaps.find((s) => s.id === b2.snapshot)!;
    const at = new Date(Date.parse(vm2.startedAt) + 1).toISOString();
    const out2 = join(dir, 'restored-2.img');
    expect((await hoardCli(['restore', '--repo', repo, 'vm', '--at', at, '--to', out2])).code).toBe(0);
    expect(sha(await readFile(out2))).toBe(sha(changed));

    // to stdout, and a byte range
    const toStdout = await hoardCli(['restore', '--repo', repo, 'db', '--to', '-']);
    expect(toStdout.code).toBe(0);
    expect(sha(toStdout.stdoutBytes)).toBe(sha(dump));
    const part = await hoardCli(['restore', '--repo', repo, 'db', '--offset', '1000', '--length', '70000', '--to', '-']);
    expect(part.code).toBe(0);
    expect(part.stdoutBytes.equals(dump.subarray(1000, 71000))).toBe(true);

    const verify = await hoardCli(['verify', '--repo', repo, '--read-data', '--json']);
    expect(verify.code).toBe(0);
    expect((JSON.parse(verify.stdout) as { ok: boolean }).ok).toBe(true);

    const stats = await hoardCli(['stats', '--repo', repo, '--json']);
    expect(stats.code).toBe(0);
    const s = JSON.parse(stats.stdout) as { stores: Array<{ name: string; logicalBytes: number; snapshots: number }> };
    const global = s.stores.find((x) => x.name === 'global')!;
    expect(global.snapshots).toBe(3);
    expect(global.logicalBytes).toBe(image.length * 2 + dump.length);
  });

  it('user mistakes: a clear message, the documented exit code, nothing lost', async () => {
    const expectUserError = (r: { code: number; stderr: string }, code: number, message: RegExp) => {
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_TRACE);
      expect(r.code).toBe(code);
    };
    const empty = join(dir, 'not-a-repo');
    expectUserError(await hoardCli(['snapshots', '--repo', empty]), 2, /no hoard repository at .*not-a-repo.*hoard init/);
    expectUserError(await hoardCli(['backup', '--repo', repo, '--job', 'vm', join(dir, 'missing.img')]), 2, /missing\.img: no such file/);
    expectUserError(await hoardCli(['backup', '--repo', repo, '--job', 'bad name', '-']), 2, /invalid job name "bad name"/);
    expectUserError(await hoardCli(['restore', '--repo', repo, 'vm', '--snapshot', 'ffffffff', '--to', join(dir, 'x')]), 2, /job vm has no snapshot ffffffff/);
    expectUserError(
      await hoardCli(['restore', '--repo', repo, 'vm', '--at', '2001-01-01 00:00', '--to', join(dir, 'x')]),
      2,
      /no snapshot at or before .*the first one started at/,
    );
    expectUserError(await hoardCli(['restore', '--repo', repo, 'vm', '--at', 'yesterday', '--to', join(dir, 'x')]), 2, /--at: "yesterday" is not a time/);
    expectUserError(await hoardCli(['restore', '--repo', repo, 'nojob', '--to', join(dir, 'x')]), 2, /job nojob has no snapshots/);

    // an existing file is not replaced without --force, and is left as it was
    await writeFile(join(dir, 'keep.txt'), 'precious');
    expectUserError(await hoardCli(['restore', '--repo', repo, 'vm', '--to', join(dir, 'keep.txt')]), 2, /exists: restore elsewhere, or add --force/);
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('precious');

    // a stdin that ends early: nothing committed
    const before = (JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--json'])).stdout) as unknown[]).length;
    expectUserError(
      await hoardCli(['backup', '--repo', repo, '--job', 'db', '--size', String(4 * MiB), '-'], { stdin: testData(9, MiB) }),
      1,
      /stdin ended early: read 1048576 bytes, expected 4194304; no snapshot was committed/,
    );
    const after = (JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--json'])).stdout) as unknown[]).length;
    expect(after).toBe(before);
  });

  it('encrypted repository: needs the passphrase for data, refuses a wrong one', async () => {
    const enc = join(dir, 'enc');
    expectOk(await hoardCli(['init', '--repo', enc, '--encrypt'], { env: { HOARD_PASSPHRASE: 'correct horse' } }));
    const data = testData(5, 2 * MiB);
    await writeFile(join(dir, 'secret.bin'), data);
    const noPass = await hoardCli(['backup', '--repo', enc, '--job', 'x', join(dir, 'secret.bin')]);
    expect(noPass.code).toBe(1);
    expect(noPass.stderr).toMatch(/encrypted: give its passphrase/);
    expectOk(await hoardCli(['backup', '--repo', enc, '--job', 'x', join(dir, 'secret.bin')], { env: { HOARD_PASSPHRASE: 'correct horse' } }));
    const wrong = await hoardCli(['restore', '--repo', enc, 'x', '--to', '-'], { env: { HOARD_PASSPHRASE: 'battery staple' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/passphrase does not open/);
    expect(wrong.stderr).not.toMatch(STACK_TRACE);
    await writeFile(join(dir, 'pass.txt'), 'correct horse\n');
    const right = await hoardCli(['restore', '--repo', enc, 'x', '--to', '-', '--passphrase-file', join(dir, 'pass.txt')]);
    expect(right.code).toBe(0);
    expect(sha(right.stdoutBytes)).toBe(sha(data));
  });
});

describe('hoard with an s3:// repository (Ceph RGW)', () => {
  it('init creates the bucket; backup from stdin and restore to stdout are byte-identical; bad bucket and credentials are clear', async () => {
    const server = s3TestServer();
    const env = {
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_REGION: 'us-east-1',
    };
    const repo = `s3://hoard-cli-${process.pid}-${Date.now() % 100000}/team/repo`;
    expectOk(await hoardCli(['init', '--repo', repo], { env }));
    const data = testData(11, 3 * MiB);
    data.fill(0, MiB, 2 * MiB);
    const backedUp = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-', '--json'], { stdin: data, env });
    expectOk(backedUp);
    const { bytesZero } = JSON.parse(backedUp.stdout) as { bytesZero: number };
    expect(bytesZero).toBeGreaterThan(MiB / 2);
    const restored = await hoardCli(['restore', '--repo', repo, 'db', '--to', '-'], { env });
    expect(restored.code).toBe(0);
    expect(sha(restored.stdoutBytes)).toBe(sha(data));
    const verified = await hoardCli(['verify', '--repo', repo, '--read-data'], { env });
    expect(verified.stdout).toMatch(/no problems found/);
    expect(verified.code).toBe(0);

    const missing = await hoardCli(['snapshots', '--repo', 's3://hoard-no-such-bucket-here/x'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/hoard-no-such-bucket-here/);
    expect(missing.stderr).toMatch(/does not exist/);
    expect(missing.stderr).not.toMatch(STACK_TRACE);
    const badKeys = await hoardCli(['snapshots', '--repo', repo], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' } });
    expect(badKeys.code).toBe(1);
    expect(badKeys.stderr).toMatch(/credentials/i);
    expect(badKeys.stderr).not.toMatch(STACK_TRACE);
  });
});

function expectOk(r: { code: number; stderr: string }): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}
