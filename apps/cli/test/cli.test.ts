import { describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';

describe('hoard CLI', () => {
  it('demo --json: a real backup series where later days store little, and a byte-identical point-in-time restore', async () => {
    const { code, stdout, stderr } = await hoardCli(['demo', '--embedded', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as {
      days: Array<{ job: string; day: number; snapshot: string; logical_bytes: number; new_bytes: number; stored_bytes: number }>;
      restore: { job: string; identical: boolean; snapshot: string };
      stats: { stores: Array<{ name: string; snapshots: number; dedupFactor: number }> };
    };
    for (const job of ['vm', 'db']) {
      const days = report.days.filter((d) => d.job === job);
      expect(days.length).toBeGreaterThanOrEqual(3);
      expect(days[0].new_bytes).toBeGreaterThan(days[0].logical_bytes * 0.3);
      // after the first day, a day adds a small fraction of its size
      for (const d of days.slice(1)) expect(d.new_bytes).toBeLessThan(d.logical_bytes * 0.25);
    }
    expect(report.restore.identical).toBe(true);
    expect(report.restore.snapshot).toBe(report.days.filter((d) => d.job === 'db')[1].snapshot);
    const global = report.stats.stores.find((s) => s.name === 'global')!;
    expect(global.snapshots).toBe(report.days.length);
    expect(global.dedupFactor).toBeGreaterThan(2);
  });

  it('demo --embedded prints a readable table', async () => {
    const { code, stdout } = await hoardCli(['demo', '--embedded']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/dedup so far/);
    expect(stdout).toMatch(/byte-identical to the day-1 dump/);
  });

  it('demo (server + agent over HTTP): the second day sends a small share of what it reads, and both point-in-time restores are byte-identical', async () => {
    const { code, stdout, stderr } = await hoardCli(['demo', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as {
      days: Array<{ day: number; source: string; read_bytes: number; sent_bytes: number; new_bytes: number; stored_bytes: number }>;
      restores: Array<{ source: string; identical: boolean; bytes: number }>;
    };
    expect(report.days).toHaveLength(4);
    for (const d of report.days.filter((r) => r.day === 0)) expect(d.sent_bytes).toBeGreaterThanOrEqual(d.stored_bytes);
    for (const d of report.days.filter((r) => r.day === 1)) {
      // Only new chunks cross the wire: sent is about the new compressed bytes, far below what was read.
      expect(d.sent_bytes).toBeLessThan(d.read_bytes * 0.2);
      expect(d.sent_bytes).toBeLessThanOrEqual(d.stored_bytes * 1.05 + d.read_bytes * 0.005 + 64 * 1024);
    }
    expect(report.restores.map((r) => r.identical)).toEqual([true, true]);
  });

  it('--help teaches; an unknown command is a usage error (exit 2) without a stack trace', async () => {
    const help = await hoardCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/demo/);
    const bad = await hoardCli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(bad.stderr).not.toMatch(STACK_TRACE);
  });
});
