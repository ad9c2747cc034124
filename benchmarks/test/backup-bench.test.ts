// The pure parts of `pnpm bench backup`, imported from the built output. restic, borg and
// hoard are never run here.
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupArgs } from '../dist/backup-bench.js';
import {
  computeRatios,
  evaluateTargets,
  renderFloors,
  renderRestores,
  renderSeries,
  renderSummary,
  type BackupRun,
  type RestoreRun,
  type S3Result,
  type SeriesResult,
} from '../dist/backup-report.js';
import { combineFloors } from '../dist/floors.js';
import { dirBytes, findFiles, parseTimeOutput } from '../dist/measure.js';
import { hoardSnapshotId, missingPackages, resticSnapshotId, type ToolName } from '../dist/peers.js';
import { usrTarSeries } from '../dist/real-series.js';

describe('parseTimeOutput', () => {
  it('reads "%e %M %U %S" (RSS in KiB)', () => {
    expect(parseTimeOutput('12.34 204800 10.50 1.25\n')).toEqual({ elapsed_s: 12.34, peak_rss_bytes: 204800 * 1024, user_s: 10.5, sys_s: 1.25 });
  });

  it('skips the line GNU time adds for a failed command', () => {
    const t = parseTimeOutput('Command exited with non-zero status 1\n0.01 17976 0.00 0.01\n');
    expect(t.peak_rss_bytes).toBe(17976 * 1024);
    expect(t.elapsed_s).toBe(0.01);
  });

  it('throws when there is no figure line', () => {
    expect(() => parseTimeOutput('')).toThrow(/GNU time/);
    expect(() => parseTimeOutput('/usr/bin/time: cannot run foo: No such file or directory\n')).toThrow(/GNU time/);
  });
});

describe('dirBytes and findFiles', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'hoard-bench-test-'));
    await mkdir(join(root, 'a/b'), { recursive: true });
    await writeFile(join(root, 'x'), Buffer.alloc(1000));
    await writeFile(join(root, 'a/y'), Buffer.alloc(234));
    await writeFile(join(root, 'a/b/vm.img'), Buffer.alloc(4096));
    await writeFile(join(root, 'a/vm.img.tmp'), Buffer.alloc(5));
    await symlink(join(root, 'x'), join(root, 'a/link'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('sums regular file sizes recursively, not following symlinks', async () => {
    expect(await dirBytes(root)).toBe(1000 + 234 + 4096 + 5);
    expect(await dirBytes(join(root, 'a/b'))).toBe(4096);
    expect(await dirBytes(join(root, 'x'))).toBe(1000);
  });

  it('finds a restored file by name at any depth', async () => {
    expect(await findFiles(root, 'vm.img')).toEqual([join(root, 'a/b/vm.img')]);
    expect(await findFiles(root, 'dump.sql')).toEqual([]);
    expect(await findFiles(join(root, 'x'), 'vm.img')).toEqual([join(root, 'x')]);
  });
});

describe('parseBackupArgs', () => {
  it('defaults to all three tools, tables, full size', () => {
    expect(parseBackupArgs([])).toEqual({
      json: false,
      quick: false,
      help: false,
      tools: ['hoard', 'restic', 'borg'],
      encrypt: false,
      keep: false,
      s3: true,
      series: 'all',
    });
  });

  it('takes --tools as "--tools a,b" or "--tools=a,b", in canonical order', () => {
    expect(parseBackupArgs(['--tools', 'borg,restic'])).toMatchObject({ tools: ['restic', 'borg'] });
    expect(parseBackupArgs(['--quick', '--tools=restic', '--json'])).toMatchObject({ tools: ['restic'], quick: true, json: true });
    expect(parseBackupArgs(['--dir', '/scratch', '--keep', '--encrypt'])).toMatchObject({ dir: '/scratch', keep: true, encrypt: true });
  });

  it('takes --restic PATH and --no-s3', () => {
    expect(parseBackupArgs(['--restic', '/usr/bin/restic', '--no-s3'])).toMatchObject({ restic: '/usr/bin/restic', s3: false });
    expect(parseBackupArgs(['--restic=/opt/restic'])).toMatchObject({ restic: '/opt/restic', s3: true });
    expect(parseBackupArgs(['--restic'])).toEqual({ error: expect.stringMatching(/--restic needs/) });
    expect(parseBackupArgs(['--no-s3=1'])).toEqual({ error: expect.stringMatching(/takes no value/) });
    expect(parseBackupArgs(['--series', 'real'])).toMatchObject({ series: 'real' });
    expect(parseBackupArgs(['--series=generated'])).toMatchObject({ series: 'generated' });
    expect(parseBackupArgs(['--series', 'usr'])).toEqual({ error: '--series takes one of all, generated, real; got usr' });
  });

  it('rejects unknown tools, options and arguments', () => {
    expect(parseBackupArgs(['--tools', 'restic,tar'])).toEqual({ error: expect.stringMatching(/unknown tool "tar"/) });
    expect(parseBackupArgs(['--tools'])).toEqual({ error: expect.stringMatching(/needs a list/) });
    expect(parseBackupArgs(['--fast'])).toEqual({ error: 'unknown option --fast' });
    expect(parseBackupArgs(['chunker'])).toEqual({ error: 'unexpected argument "chunker"' });
    expect(parseBackupArgs(['--json=1'])).toEqual({ error: expect.stringMatching(/takes no value/) });
  });
});

describe('usrTarSeries', () => {
  it('tars the first files of a sorted walk up to the budget, and swaps some for later ones each day', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hoard-bench-usr-'));
    try {
      for (let i = 0; i < 40; i++) await writeFile(join(root, `f${String(i).padStart(2, '0')}`), Buffer.alloc(1000, i));
      const s = await usrTarSeries({ root, budgetBytes: 20_000, days: 3, seed: 1, churn: 0.25 });
      const names = async (day: number): Promise<string[]> => {
        const pieces: Buffer[] = [];
        for await (const p of s.day(day)) pieces.push(Buffer.from(p));
        const tar = Buffer.concat(pieces);
        const out: string[] = [];
        // ustar headers: a name in the first 100 bytes of each 512-byte header, 1000-byte bodies padded to 1024.
        for (let at = 0; at + 512 <= tar.length; at += 512 + 1024) {
          const name = tar
            .subarray(at, at + 100)
            .toString('utf8')
            .replace(/\0.*$/s, '');
          if (name === '') break;
          out.push(name.slice(name.lastIndexOf('/') + 1));
        }
        return out;
      };
      const day0 = await names(0);
      expect(day0).toEqual(Array.from({ length: 20 }, (_, i) => `f${String(i).padStart(2, '0')}`));
      const day1 = await names(1);
      expect(day1).not.toEqual(day0);
      expect(day1.some((n) => n >= 'f20')).toBe(true); // files from further along the walk
      expect([...day1].sort()).toEqual(day1); // still in path order
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('snapshot ids from tool output', () => {
  it('restic: the summary line of backup --json', () => {
    const out = ['{"message_type":"status","percent_done":1}', '{"message_type":"summary","files_new":1,"snapshot_id":"d2c5e7d8a1"}'].join('\n');
    expect(resticSnapshotId(out)).toBe('d2c5e7d8a1');
    expect(() => resticSnapshotId('{"message_type":"status"}')).toThrow(/snapshot_id/);
  });

  it('hoard: "snapshot" as a string or an object with id, pretty-printed or not', () => {
    expect(hoardSnapshotId('{"snapshot":"abc","bytes":1}\n')).toBe('abc');
    expect(hoardSnapshotId(JSON.stringify({ snapshot: { id: 'def' } }, null, 2))).toBe('def');
    expect(hoardSnapshotId('progress...\n{"snapshot":"ghi"}')).toBe('ghi');
    expect(() => hoardSnapshotId('{"ok":true}')).toThrow(/snapshot/);
  });
});

describe('missingPackages', () => {
  it('asks for GNU time always and for the peers the run uses', () => {
    const none = () => null;
    expect(missingPackages(['hoard'], none).map((r) => r.pkg)).toEqual(['time']);
    expect(missingPackages(['hoard', 'restic', 'borg'], none).map((r) => r.pkg)).toEqual(['time', 'restic', 'borgbackup']);
    expect(missingPackages(['restic', 'borg'], (b) => (b === 'borg' ? null : `/usr/bin/${b}`)).map((r) => r.pkg)).toEqual(['borgbackup']);
  });
});

function run(tool: ToolName, day: number, backup_s: number, stored_bytes: number, peak_rss_bytes = 100): BackupRun {
  return { day, tool, bytes: 1e9, backup_s, backup_mb_s: 1e9 / backup_s / 1e6, stored_bytes, peak_rss_bytes, cpu_s: backup_s };
}

function series(name: string, runs: BackupRun[], restores: Array<[ToolName, number, number]>): SeriesResult {
  return {
    name,
    job: name,
    days: 3,
    day_bytes: [1e9, 1e9, 1e9],
    backups: runs,
    restores: restores.map(([tool, restore_s, peak_rss_bytes]) => ({
      day: 2,
      tool,
      bytes: 1e9,
      restore_s,
      restore_mb_s: 1e9 / restore_s / 1e6,
      peak_rss_bytes,
      cpu_s: restore_s,
    })),
  };
}

describe('computeRatios', () => {
  const vm = series(
    'vm_image',
    [
      run('hoard', 0, 4, 500),
      run('restic', 0, 10, 600),
      run('borg', 0, 8, 700),
      run('hoard', 1, 1, 520),
      run('restic', 1, 4, 650),
      run('borg', 1, 2, 760),
      run('hoard', 2, 1.5, 540, 300),
      run('restic', 2, 5, 700),
      run('borg', 2, 2, 820),
    ],
    [
      ['hoard', 0.5, 150],
      ['restic', 2, 200],
      ['borg', 1, 90],
    ],
  );
  const dump = series(
    'db_dump',
    [
      run('hoard', 0, 2, 100),
      run('restic', 0, 5, 90),
      run('borg', 0, 3, 120),
      run('hoard', 1, 1, 110),
      run('restic', 1, 4, 100),
      run('borg', 1, 2, 150),
      run('hoard', 2, 1, 120),
      run('restic', 2, 4, 100),
      run('borg', 2, 2, 180),
    ],
    [
      ['hoard', 0.8, 100],
      ['restic', 1.6, 100],
      ['borg', 0.4, 100],
    ],
  );

  it("reports a real-data series apart: its ratios are the *_real ones, the others stay the generated series'", () => {
    const real = { ...series('usr_tar', [run('hoard', 0, 3, 90), run('restic', 0, 2, 100), run('borg', 0, 6, 150)], []), days: 1, real: true };
    const r = computeRatios([vm, dump, real]);
    expect(r.stored_bytes_ratio_restic).toBe(1.2); // the generated series only, as without the real one
    expect(r.backup_time_ratio_restic).toBe(0.4);
    expect(r.stored_bytes_ratio_restic_real).toBe(0.9);
    expect(r.backup_time_ratio_restic_real).toBe(1.5);
    expect(r.backup_time_ratio_borg_real).toBe(0.5);
    const target = evaluateTargets(r).find((t) => t.measure === 'stored_bytes_ratio_restic_real');
    expect(target).toMatchObject({ op: '<=', target: 0.9, met: true });
    expect(computeRatios([vm, dump]).stored_bytes_ratio_restic_real).toBeNull();
  });

  it('takes the worst day, the last day, the highest peak and the slowest restore', () => {
    const r = computeRatios([vm, dump]);
    expect(r.backup_time_ratio_restic).toBe(0.4); // dump day 0: 2 / 5
    expect(r.backup_time_ratio_restic_first_day).toBe(0.4);
    expect(r.backup_time_ratio_restic_later_days).toBe(0.3); // vm day 2: 1.5 / 5
    expect(r.backup_time_ratio_borg).toBe(0.75); // vm day 2: 1.5 / 2
    expect(r.backup_time_ratio_borg_first_day).toBe(0.667); // dump: 2 / 3
    expect(r.stored_bytes_ratio_restic).toBe(1.2); // dump after day 2: 120 / 100
    expect(r.stored_bytes_ratio_borg).toBe(0.667); // dump: 120 / 180
    expect(r.peak_rss_ratio_restic).toBe(1.5); // 300 / 200
    expect(r.peak_rss_ratio_borg).toBe(3); // 300 / 100
    expect(r.backup_peak_rss_ratio_restic).toBe(3); // backups only: 300 / 100 (restic's 200 was a restore)
    expect(r.restore_mb_s).toBe(1250); // dump: 1e9 B in 0.8 s
    expect(r.restore_time_ratio_restic).toBe(0.5);
    expect(r.restore_time_ratio_borg).toBe(2);
    expect(r.restore_mb_s_restic).toBe(500); // vm: 1e9 B in 2 s
    expect(r.restore_mb_s_borg).toBe(1000); // vm: 1 s
    expect(r.restore_peak_rss_ratio_restic).toBe(1); // dump: 100 / 100 (vm: 150 / 200)
    // No server or S3 restores in these series.
    expect(r.restore_server_mb_s).toBeNull();
    expect(r.restore_server_ratio_embedded).toBeNull();
    expect(r.restore_s3_time_ratio_restic).toBeNull();
  });

  const restoreOf = (tool: ToolName, restore_s: number, peak_rss_bytes: number): RestoreRun => ({
    day: 2,
    tool,
    bytes: 1e9,
    restore_s,
    restore_mb_s: 1e9 / restore_s / 1e6,
    peak_rss_bytes,
    cpu_s: restore_s,
  });

  it('through the server: server / embedded MB/s, worst series', () => {
    const withServer = [
      { ...vm, server_restores: [{ ...restoreOf('hoard', 0.625, 120), server_cpu_s: 0.4, server_peak_rss_bytes: 300 }] }, // 0.5 / 0.625 = 0.8
      { ...dump, server_restores: [{ ...restoreOf('hoard', 0.8, 120), server_cpu_s: 0.4, server_peak_rss_bytes: 300 }] }, // 0.8 / 0.8 = 1
    ];
    const r = computeRatios(withServer);
    expect(r.restore_server_ratio_embedded).toBe(0.8);
    expect(r.restore_server_mb_s).toBe(1250); // vm 1600, dump 1250: the slower
    const text = renderRestores(withServer, null);
    expect(text.split('\n').filter((l) => l.startsWith('hoard server'))).toHaveLength(2);
  });

  it('from S3: hoard / restic time, and the S3 pair counts for the restore RSS ratio', () => {
    const s3: S3Result = {
      status: 'measured',
      reason: null,
      series: 'vm_image',
      bytes: 1e9,
      backups: [],
      restores: [restoreOf('hoard', 3, 400), restoreOf('restic', 2, 200)],
    };
    const r = computeRatios([vm, dump], s3);
    expect(r.restore_s3_time_ratio_restic).toBe(1.5);
    expect(r.restore_s3_mb_s).toBe(333.3);
    expect(r.restore_s3_mb_s_restic).toBe(500);
    expect(r.restore_peak_rss_ratio_restic).toBe(2); // S3: 400 / 200
    const failed: S3Result = { ...s3, status: 'failed', reason: 'could not start Ceph RGW: radosgw did not answer', restores: [] };
    const rf = computeRatios([vm, dump], failed);
    expect(rf.restore_s3_time_ratio_restic).toBeNull();
    expect(rf.restore_peak_rss_ratio_restic).toBe(1);
    expect(renderRestores([vm, dump], failed)).toContain('S3 restores: failed: could not start Ceph RGW');
  });

  it('gives null for every figure that needs a tool that did not run', () => {
    const peersOnly = (s: SeriesResult): SeriesResult => ({
      ...s,
      backups: s.backups.filter((b) => b.tool !== 'hoard'),
      restores: s.restores.filter((b) => b.tool !== 'hoard'),
    });
    const r = computeRatios([peersOnly(vm), peersOnly(dump)]);
    // Only the peers' own restore rates remain.
    const { restore_mb_s_restic, restore_mb_s_borg, ...hoardFigures } = r;
    expect([restore_mb_s_restic, restore_mb_s_borg]).toEqual([500, 1000]);
    expect(Object.values(hoardFigures).every((v) => v === null)).toBe(true);
    expect(evaluateTargets(r).every((t) => t.met === null)).toBe(true);
    expect(renderSummary(r, evaluateTargets(r))).toContain('not measured');
  });

  it('the first-backup floor: cut + non-zero BLAKE3 + compressible zstd on all cores, against restic and hoard on day 0', () => {
    const measured = (share: number) => ({
      sample_bytes: 1,
      compressed_share: 1,
      lz4_decode_mb_s: 1,
      blake3_mb_s: 2000,
      cdc_mb_s: 1000,
      zstd_compress_mb_s: 250,
      zstd_share: share,
      nonzero_share: share,
    });
    const floors = combineFloors(
      {
        // 1e9 B: (1/1000 + 0.5/2000 + 0.5 x 0.5/250) s per MB = 2.25 s, / 2 cores = 1.125 s
        vm_image: measured(0.5),
        // (1/1000 + 1/2000 + 1/250) = 5.5 s, / 2 = 2.75 s
        db_dump: measured(1),
      },
      1000,
      { cores: 2, durableWriteMbS: 200 },
    );
    // Writing what hoard stored on day 0 durably: vm 500 B, dump 100 B: far below the CPU floor.
    const r = computeRatios([vm, dump], null, floors);
    expect(r.backup_floor_ratio_restic_first_day).toBe(0.55); // dump: 2.75 / 5 (vm: 1.125 / 10)
    expect(r.backup_time_over_floor_first_day).toBe(3.556); // vm: 4 / 1.125 (dump: 2 / 2.75)
    // A slow disk: writing vm's 500 B at 100 B/s takes 5 s, above its 1.125 s of CPU.
    const slowDisk = computeRatios([vm, dump], null, combineFloors(floors.by_series, 1000, { cores: 2, durableWriteMbS: 1e-4 }));
    expect(slowDisk.backup_floor_ratio_restic_first_day).toBe(0.55); // dump: 100 B / 100 B/s = 1 s < 2.75 s
    expect(slowDisk.backup_time_over_floor_first_day).toBe(0.8); // vm: 4 / 5: below a floor means the floor is not one
    // Without the cut and zstd figures (an older run's floors) there is no floor.
    const old = computeRatios(
      [vm, dump],
      null,
      combineFloors({ vm_image: { sample_bytes: 1, compressed_share: 1, lz4_decode_mb_s: 1, blake3_mb_s: 1 } }, 1000, { cores: 2 }),
    );
    expect(old.backup_floor_ratio_restic_first_day).toBeNull();
    expect(renderFloors(floors)).toMatch(/zstd3_compress_mb_s\s+250\s+250/);
    expect(renderFloors(floors)).toMatch(/durable_write_mb_s\s+200/);
  });

  it('checks the issue targets', () => {
    const targets = evaluateTargets(computeRatios([vm, dump]));
    const met = Object.fromEntries(targets.map((t) => [t.measure, t.met]));
    expect(met).toEqual({
      backup_time_ratio_restic_first_day: true,
      backup_time_ratio_restic_later_days: true,
      stored_bytes_ratio_restic: false,
      backup_peak_rss_ratio_restic: false,
      restore_mb_s: true,
      restore_time_ratio_restic: true, // 0.5 on the worst series
      restore_s3_time_ratio_restic: null,
      restore_server_ratio_embedded: null,
      restore_peak_rss_ratio_restic: true,
      stored_bytes_ratio_restic_real: null, // no real-data series
    });
  });

  it('renders the floors', () => {
    const f = combineFloors(
      {
        vm_image: { sample_bytes: 64 * 2 ** 20, compressed_share: 0.7, lz4_decode_mb_s: 3000, blake3_mb_s: 4000 },
        db_dump: { sample_bytes: 32 * 2 ** 20, compressed_share: 1, lz4_decode_mb_s: 2500, blake3_mb_s: 4100 },
      },
      1800,
    );
    expect(f).toMatchObject({ lz4_decode_mb_s: 2500, blake3_mb_s: 4000, page_cache_write_mb_s: 1800, block_bytes: 65536 });
    const text = renderFloors(f);
    expect(text).toMatch(/lz4_decode_mb_s\s+2500/);
    expect(text).toMatch(/page_cache_write_mb_s\s+1800/);
  });

  it('renders one row per day and tool', () => {
    const text = renderSeries(vm);
    expect(text.split('\n').filter((l) => /^\d\s/.test(l))).toHaveLength(9);
    expect(text).toContain('restore');
  });
});
