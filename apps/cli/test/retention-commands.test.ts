/**
 * `hoard prune`, `hoard gc` and `hoard snapshots --protect` through the built binary:
 * a policy forgets what it does not keep (and says which rule keeps the rest), protection
 * overrides it, gc frees the space over two runs, and every mistake is a usage error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, noise, STACK_TRACE } from './helpers.js';

describe('hoard prune, gc, snapshots --protect', () => {
  let dir: string;
  let repo: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-cli-gc-'));
    repo = join(dir, 'repo');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prunes by policy, keeps protected snapshots, and gc frees the space in its second run', async () => {
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    const dumps = [1, 2, 3, 4].map((i) => noise(i, 512 * 1024));
    const ids: string[] = [];
    for (const dump of dumps) {
      const r = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-', '--json'], { stdin: dump });
      expect(r.stderr).toBe('');
      ids.push((JSON.parse(r.stdout) as { snapshot: string }).snapshot);
    }
    const protect = await hoardCli(['snapshots', '--repo', repo, '--job', 'db', '--protect', ids[0]]);
    expect(protect.code).toBe(0);
    expect(protect.stdout).toMatch(new RegExp(`snapshot ${ids[0]} of job db is protected`));

    const dry = await hoardCli(['prune', '--repo', repo, '--job', 'db', '--keep-last', '1', '--dry-run', '--json']);
    expect(dry.stderr).toBe('');
    const plan = JSON.parse(dry.stdout) as { dryRun: boolean; kept: number; forgotten: number; snapshots: { id: string; keep: boolean; reasons: string[] }[] };
    expect(plan).toMatchObject({ dryRun: true, kept: 2, forgotten: 2 });
    expect(plan.snapshots.map((s) => [s.id, s.keep, s.reasons])).toEqual([
      [ids[3], true, ['last']],
      [ids[2], false, []],
      [ids[1], false, []],
      [ids[0], true, ['protected']],
    ]);
    const text = await hoardCli(['prune', '--repo', repo, '--job', 'db', '--keep-last', '1', '--dry-run']);
    expect(text.stdout).toMatch(/would forget/);
    expect(text.stdout).toMatch(/dry run: would keep 2, would forget 2 snapshot\(s\) of job db/);
    expect(JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--job', 'db', '--json'])).stdout)).toHaveLength(4);

    const prune = await hoardCli(['prune', '--repo', repo, '--job', 'db', '--keep-last', '1']);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/kept 2, forgot 2 snapshot\(s\) of job db; run `hoard gc`/);
    const left = JSON.parse((await hoardCli(['snapshots', '--repo', repo, '--job', 'db', '--json'])).stdout) as { id: string }[];
    expect(left.map((s) => s.id)).toEqual([ids[3], ids[0]]);

    const first = await hoardCli(['gc', '--repo', repo, '--grace', '0s', '--json']);
    expect(first.stderr).toBe('');
    const r1 = JSON.parse(first.stdout) as { packs: { condemned: number; deleted: number; repacked: number } };
    expect(r1.packs.condemned + r1.packs.repacked).toBeGreaterThan(0);
    expect(r1.packs.deleted).toBe(0);
    const second = await hoardCli(['gc', '--repo', repo, '--grace', '0s']);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/stored bytes: .* before, .* after/);
    expect(second.stdout).toMatch(/[1-9]\d* deleted/);

    for (const [i, id] of [
      [3, ids[3]],
      [0, ids[0]],
    ] as const) {
      const back = await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', id, '--to', '-']);
      expect(back.code).toBe(0);
      expect(back.stdoutBytes.equals(dumps[i])).toBe(true);
    }
    const verify = await hoardCli(['verify', '--repo', repo, '--read-data']);
    expect(verify.stdout).toMatch(/no problems found/);

    const unprotect = await hoardCli(['snapshots', '--repo', repo, '--job', 'db', '--unprotect', ids[0], '--json']);
    expect(JSON.parse(unprotect.stdout)).toMatchObject({ id: ids[0], protected: false });
    const again = await hoardCli(['prune', '--repo', repo, '--job', 'db', '--keep-last', '1', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ kept: 1, forgotten: 1 });
  });

  it('mistakes are usage errors (exit 2) with a message that says what to write', async () => {
    const cases: [string[], RegExp][] = [
      [['prune', '--repo', repo, '--job', 'db'], /at least one rule/],
      [['prune', '--repo', repo, '--job', 'db', '--keep-daily', 'x'], /keep-daily must be a whole number >= 0, got "x"/],
      [['prune', '--repo', repo, '--job', 'db', '--keep-within', '2q'], /keep-within "2q": use a whole number followed by h, d, w, m or y/],
      [['prune', '--repo', repo, '--job', 'db', '--keep-last', '1', '--timezone', 'Mars/Base'], /time zone "Mars\/Base" is not known/],
      [['gc', '--repo', repo, '--grace', '5x'], /--grace "5x": use a whole number followed by s, m, h or d/],
      [['gc', '--repo', repo, '--repack-threshold', '2'], /--repack-threshold 2: give the dead share/],
      [['snapshots', '--repo', repo, '--protect', 'abcd'], /need --job/],
    ];
    for (const [args, message] of cases) {
      const r = await hoardCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  });
});
