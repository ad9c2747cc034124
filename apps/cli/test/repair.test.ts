/**
 * Issue 15, items 2 and 8, through the built `hoard`: a damaged index segment no longer
 * makes every snapshot unrestorable, `hoard repair` rebuilds the index and forgets what is
 * really gone, and damaged metadata is exit 3 (not 2) everywhere.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, open, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE, type CliResult } from './helpers.js';

const MiB = 1 << 20;

function testData(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let o = 0; o + 4 <= size; o += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, o);
  }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function listKeys(root: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(rel, entry.name));
      else if (!entry.name.includes('.tmp')) out.push(join(rel, entry.name));
    }
  };
  await walk(prefix);
  return out.sort();
}

async function flipBit(path: string, offset: number): Promise<void> {
  await chmod(path, 0o644);
  const file = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await file.read(b, 0, 1, offset);
    b[0] ^= 0x10;
    await file.write(b, 0, 1, offset);
  } finally {
    await file.close();
  }
}

/**
 * Until the clock has passed into the next second: a backup started after this finishes
 * in a later second than any that ended before it, and so sorts after it (manifest names
 * carry the finish time to the second). Waits 0-1 s instead of a fixed 1.1 s.
 */
function nextSecond(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}

function expectCode(r: CliResult, code: number): void {
  if (r.code !== code) throw new Error(`exit ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  expect(r.stderr).not.toMatch(STACK_TRACE);
}

describe('hoard: damage stays local, and hoard repair', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-repair-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A repository with jobs `a` and `b`, each with its own packs and index segment. */
  async function twoJobs(name: string) {
    const repo = join(dir, name);
    expectCode(await hoardCli(['init', '--repo', repo, '--pack-size', '4']), 0);
    const a = testData(1, 9 * MiB);
    const b = testData(2, 5 * MiB);
    expectCode(await hoardCli(['backup', '--repo', repo, '--job', 'a', '-'], { stdin: a }), 0);
    const aSegments = await listKeys(repo, 'index');
    expectCode(await hoardCli(['backup', '--repo', repo, '--job', 'b', '-'], { stdin: b }), 0);
    const bSegments = (await listKeys(repo, 'index')).filter((k) => !aSegments.includes(k));
    expect(aSegments).toHaveLength(1);
    expect(bSegments).toHaveLength(1);
    return { repo, a, b, aSegment: aSegments[0], bSegment: bSegments[0] };
  }

  it('a damaged index segment: both jobs restore (exit 0, a warning naming it); repair rebuilds it and verify is clean again', async () => {
    const { repo, a, b, aSegment } = await twoJobs('one');
    await flipBit(join(repo, aSegment), 40);

    // Before: exit 3 for every job of the store.
    const rb = await hoardCli(['restore', '--repo', repo, 'b', '--to', '-']);
    expectCode(rb, 0);
    expect(sha(rb.stdoutBytes)).toBe(sha(b));
    const ra = await hoardCli(['restore', '--repo', repo, 'a', '--to', '-']);
    expectCode(ra, 0);
    expect(sha(ra.stdoutBytes)).toBe(sha(a));
    expect(ra.stderr).toContain(`hoard: warning: index segment ${aSegment} is damaged`);
    expect(ra.stderr).toMatch(/hoard repair/);

    const verifyBefore = await hoardCli(['verify', '--repo', repo]);
    expectCode(verifyBefore, 3);
    expect(verifyBefore.stdout).toMatch(/hoard repair --repo <repository> --dry-run/);
    // GC refuses a damaged index: damage, exit 3 (was 1), pointing at repair.
    const gc = await hoardCli(['gc', '--repo', repo]);
    expectCode(gc, 3);
    expect(gc.stderr).toMatch(/hoard repair/);

    const dry = await hoardCli(['repair', '--repo', repo, '--dry-run']);
    expectCode(dry, 3);
    expect(dry.stdout).toMatch(/dry run/);
    expect(dry.stdout).toContain(aSegment);
    expect(dry.stdout).toMatch(/would be removed once the new segments are written/);
    expect(dry.stdout).toMatch(/pack\(s\) that no readable index segment listed would be indexed again/);
    expect(await listKeys(repo, 'index')).toContain(aSegment);

    const fixed = await hoardCli(['repair', '--repo', repo, '--json']);
    expectCode(fixed, 0);
    const report = JSON.parse(fixed.stdout) as { segments: { damaged: { key: string; removed: boolean }[]; written: { key: string }[] }; ok: boolean };
    expect(report.segments.damaged).toEqual([expect.objectContaining({ key: aSegment, removed: true })]);
    expect(report.segments.written).toHaveLength(1);
    // (The rebuilt segment may have the original's bytes and so its name: then it replaced it.)
    expect(await listKeys(repo, 'index')).toContain(report.segments.written[0].key);

    const verifyAfter = await hoardCli(['verify', '--repo', repo]);
    expectCode(verifyAfter, 0);
    expect(verifyAfter.stdout).toMatch(/no problems found/);
    const again = await hoardCli(['restore', '--repo', repo, 'a', '--to', '-']);
    expectCode(again, 0);
    expect(again.stderr).not.toMatch(/warning/);
    expect(sha(again.stdoutBytes)).toBe(sha(a));
  });

  it('a snapshot whose data is gone: listed with the missing pack (exit 3), forgotten with --forget-broken (saying which), the other job untouched', async () => {
    const { repo, a, bSegment } = await twoJobs('two');
    const packsBefore = await listKeys(repo, 'packs');
    // b's segment lists its packs; delete one of them.
    const { decodeIndexSegment } = await import('@hoard/repository');
    const { readFile } = await import('node:fs/promises');
    const seg = decodeIndexSegment(bSegment, await readFile(join(repo, bSegment)));
    const hex = Buffer.from(seg.packs[0].packHash).toString('hex');
    const gonePack = `packs/${hex.slice(0, 2)}/${hex}`;
    await unlink(join(repo, gonePack));
    const bKey = JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--job', 'b', '--json'])).stdout)[0].key as string;

    const restoreB = await hoardCli(['restore', '--repo', repo, 'b', '--to', '-']);
    expectCode(restoreB, 3);
    expect(restoreB.stderr).toContain(gonePack);

    const listed = await hoardCli(['repair', '--repo', repo]);
    expectCode(listed, 3);
    expect(listed.stdout).toContain(bKey);
    expect(listed.stdout).toContain(gonePack);
    expect(listed.stdout).toMatch(/--forget-broken/);

    const forgot = await hoardCli(['repair', '--repo', repo, '--forget-broken']);
    expectCode(forgot, 0);
    expect(forgot.stdout).toMatch(/forgot 1 snapshot\(s\)/);
    expect(forgot.stdout).toContain(bKey);
    const left = JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--json'])).stdout) as { job: string }[];
    expect(left.map((s) => s.job)).toEqual(['a']);
    // Repair never deletes a pack.
    expect(await listKeys(repo, 'packs')).toEqual(packsBefore.filter((k) => k !== gonePack));
    const ra = await hoardCli(['restore', '--repo', repo, 'a', '--to', '-']);
    expectCode(ra, 0);
    expect(sha(ra.stdoutBytes)).toBe(sha(a));
  });

  it('refuses to run while gc/lock is held (exit 1, naming the holder)', async () => {
    const { repo } = await twoJobs('three');
    await writeFile(join(repo, 'gc', 'lock'), JSON.stringify({ version: 1, startedAt: '2026-12-01T03:00:00.000Z', host: 'backup-1', pid: 4242 })).catch(
      async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        const { mkdir } = await import('node:fs/promises');
        await mkdir(join(repo, 'gc'), { recursive: true });
        await writeFile(join(repo, 'gc', 'lock'), JSON.stringify({ version: 1, startedAt: '2026-12-01T03:00:00.000Z', host: 'backup-1', pid: 4242 }));
      },
    );
    const locked = await hoardCli(['repair', '--repo', repo]);
    expectCode(locked, 1);
    expect(locked.stderr).toMatch(/locked by a run started at 2026-12-01T03:00:00.000Z on backup-1 \(pid 4242\)/);
    expect(locked.stderr).toMatch(/--break-lock/);
  });
});

describe('hoard: damaged metadata is exit 3', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-exit3-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a damaged manifest (the only one, or the newest) and a missing or altered store record', async () => {
    const repo = join(dir, 'repo');
    expectCode(await hoardCli(['init', '--repo', repo]), 0);
    expectCode(await hoardCli(['backup', '--repo', repo, '--job', 'vm', '-'], { stdin: testData(3, MiB) }), 0);
    const [manifest] = await listKeys(repo, 'snapshots');
    await flipBit(join(repo, manifest), 30);

    const listing = await hoardCli(['snapshots', '--repo', repo, '--job', 'vm']);
    expectCode(listing, 3);
    expect(listing.stderr).toContain(manifest);

    // Was exit 2 ("job vm has no snapshots (1 damaged)").
    const only = await hoardCli(['restore', '--repo', repo, 'vm', '--to', '-']);
    expectCode(only, 3);
    expect(only.stderr).toContain(manifest);

    // The newest is damaged: exit 3, not silently the older snapshot.
    await nextSecond();
    expectCode(await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: testData(4, MiB) }), 0);
    await nextSecond();
    expectCode(await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: testData(5, MiB) }), 0);
    const dbManifests = await listKeys(repo, 'snapshots/db');
    expect(dbManifests).toHaveLength(2);
    await flipBit(join(repo, dbManifests[1]), 30);
    const newest = await hoardCli(['restore', '--repo', repo, 'db', '--to', '-']);
    expectCode(newest, 3);
    expect(newest.stderr).toContain(dbManifests[1]);
    expect(newest.stdoutBytes.length).toBe(0);
    const older = await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', dbManifests[0].slice(-16), '--to', '-']);
    expectCode(older, 0);
    expect(sha(older.stdoutBytes)).toBe(sha(testData(4, MiB)));

    // A store record whose id was altered (still valid JSON): was exit 2 ("no fingerprint store with id").
    const storePath = join(repo, 'stores', 'global');
    const { readFile } = await import('node:fs/promises');
    const record = JSON.parse(await readFile(storePath, 'utf8')) as { id: string };
    await chmod(storePath, 0o644);
    await writeFile(storePath, JSON.stringify({ ...record, id: `${record.id[0] === '0' ? '1' : '0'}${record.id.slice(1)}` }));
    const altered = await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', dbManifests[0].slice(-16), '--to', '-']);
    expectCode(altered, 3);
    expect(altered.stderr).toMatch(/has no readable record/);
    // Missing altogether.
    await unlink(storePath);
    expectCode(await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', dbManifests[0].slice(-16), '--to', '-']), 3);
    // Garbled.
    await writeFile(storePath, '{"version": 1, "na');
    const garbled = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-'], { stdin: testData(6, MiB) });
    expectCode(garbled, 3);
    expect(garbled.stderr).toMatch(/stores\/global is damaged/);
  });
});
