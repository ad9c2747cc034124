/**
 * Issue 15, item 4, the way it was found: a backup fails after writing packs, `hoard gc`
 * condemns them, and a retry of the same data writes packs with exactly the same bytes
 * (packs are content-named). The retry must commit and restore, every time, and GC must
 * leave no pack behind that no snapshot needs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';

const MiB = 1024 * 1024;
/** The smallest pack size (4 MiB), so a few MiB of data fill several packs. */
const PACK_MIB = 4;
/** Three packs' worth of random data; the failed attempt announces two packs more. */
const DATA_BYTES = 3 * PACK_MIB * MiB;
const ANNOUNCED_BYTES = DATA_BYTES + 2 * PACK_MIB * MiB;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-gc-retry-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function packs(repo: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(join(repo, 'packs')).catch(() => [] as string[])) out.push(...(await readdir(join(repo, 'packs', sub))));
  return out.sort();
}

describe('hoard backup retried after a failed attempt and a gc', () => {
  it('commits and restores on every retry; gc then leaves only packs snapshots need', async () => {
    const repo = join(dir, 'repo');
    expect((await hoardCli(['init', '--repo', repo, '--pack-size', String(PACK_MIB)])).code).toBe(0);
    for (let round = 0; round < 2; round++) {
      const data = randomBytes(DATA_BYTES);
      const source = join(dir, `source-${round}.bin`);
      await writeFile(source, data);
      // The attempt fails: the source ends two packs short of the size it announced. Full
      // packs were uploaded by then; no segment, page or manifest names them.
      const failed = await hoardCli(['backup', '--repo', repo, '--job', 'db', '--name', 'dump', '--size', String(ANNOUNCED_BYTES), '-'], { stdin: data });
      expect(failed.code, failed.stderr).toBe(1);
      expect(failed.stderr).toMatch(/ended early/);
      const gc = await hoardCli(['gc', '--repo', repo, '--grace', '0s', '--json']);
      expect(gc.code, gc.stderr).toBe(0);
      expect((JSON.parse(gc.stdout) as { packs: { condemned: number } }).packs.condemned).toBeGreaterThan(0);
      // Before the fix: "garbage collection condemned pack ... too late to revive it", every time.
      for (let attempt = 0; attempt < 2; attempt++) {
        const retry = await hoardCli(['backup', '--repo', repo, '--job', 'db', '--name', 'dump', '-', '--json'], { stdin: data });
        expect(retry.code, retry.stderr).toBe(0);
        expect(retry.stderr).not.toMatch(STACK_TRACE);
        const { snapshot } = JSON.parse(retry.stdout) as { snapshot: string };
        const restored = await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', snapshot, '--to', '-']);
        expect(restored.code, restored.stderr).toBe(0);
        expect(sha(restored.stdoutBytes)).toBe(sha(data));
      }
    }
    // Two gc runs: whatever the failed attempts left that no retry reused is condemned, then
    // deleted. What stays is exactly what the index lists, and verify reads it all.
    for (let i = 0; i < 2; i++) expect((await hoardCli(['gc', '--repo', repo, '--grace', '0s'])).code).toBe(0);
    const last = await hoardCli(['gc', '--repo', repo, '--grace', '0s', '--json']);
    const report = JSON.parse(last.stdout) as { packs: { condemned: number; waiting: number; deleted: number }; blobs: { dead: number } };
    expect(report.packs).toMatchObject({ condemned: 0, waiting: 0, deleted: 0 });
    expect(report.blobs.dead).toBe(0);
    // Nothing is condemned or revived any more (the fs store leaves empty directories).
    expect(await readdir(join(repo, 'gc', 'condemned')).catch(() => [])).toEqual([]);
    expect(
      await readdir(join(repo, 'gc', 'revived'), { recursive: true }).then(
        (names) => names.filter((n) => /-\d+$/.test(n)),
        () => [],
      ),
    ).toEqual([]);
    const verified = await hoardCli(['verify', '--repo', repo, '--read-data']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect((await packs(repo)).length).toBeGreaterThan(0);
  });
});
