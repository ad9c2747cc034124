import { describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { postgresBinDir } from '../../../test-support/postgres.js';
import { hoardCli, STACK_TRACE } from './helpers.js';

const demoClusters = async (): Promise<string[]> => (await readdir(tmpdir())).filter((name) => name.startsWith('hoard-demo-pg-'));

describe('hoard CLI', () => {
  it('demo --json: a real backup series where later days store little, and a byte-identical point-in-time restore', async () => {
    const { code, stdout, stderr } = await hoardCli(['demo', '--embedded', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as {
      days: Array<{ job: string; day: number; snapshot: string; logicalBytes: number; newBytes: number; storedBytes: number }>;
      restore: { job: string; identical: boolean; snapshot: string };
      stats: { stores: Array<{ name: string; snapshots: number; dedupFactor: number }> };
    };
    for (const job of ['vm', 'db']) {
      const days = report.days.filter((d) => d.job === job);
      expect(days.length).toBeGreaterThanOrEqual(3);
      expect(days[0].newBytes).toBeGreaterThan(days[0].logicalBytes * 0.3);
      // after the first day, a day adds a small fraction of its size
      for (const d of days.slice(1)) expect(d.newBytes).toBeLessThan(d.logicalBytes * 0.25);
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

  interface NetworkDemoReport {
    dumpSource: 'postgresql' | 'generated';
    dumpNote: string;
    days: Array<{ day: number; source: string; readBytes: number; sentBytes: number; newBytes: number; storedBytes: number }>;
    restores: Array<{ source: string; check: 'sha256' | 'pg_restore'; identical: boolean; bytes: number; rows?: number; day1Rows?: number }>;
  }

  const checkNetworkDemo = (report: NetworkDemoReport): void => {
    expect(report.days).toHaveLength(4);
    for (const d of report.days.filter((r) => r.day === 0)) expect(d.sentBytes).toBeGreaterThanOrEqual(d.storedBytes);
    for (const d of report.days.filter((r) => r.day === 1)) {
      // Only new chunks cross the wire: sent is about the new compressed bytes, far below what was read.
      expect(d.sentBytes).toBeLessThan(d.readBytes * 0.2);
      expect(d.sentBytes).toBeLessThanOrEqual(d.storedBytes * 1.05 + d.readBytes * 0.005 + 64 * 1024);
    }
    expect(report.restores.map((r) => r.identical)).toEqual([true, true]);
  };

  it('demo (server + agent over HTTP): the second day sends a small share of what it reads, and both point-in-time restores check out (a real PostgreSQL dump when installed)', async () => {
    const before = await demoClusters();
    const { code, stdout, stderr } = await hoardCli(['demo', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as NetworkDemoReport;
    checkNetworkDemo(report);
    const installed = await postgresBinDir().then(
      () => true,
      () => false,
    );
    expect(report.dumpSource, report.dumpNote).toBe(installed ? 'postgresql' : 'generated');
    if (report.dumpSource === 'postgresql') {
      expect(report.days.map((d) => d.source)).toEqual(['web-01.img', 'pg_dump shop', 'web-01.img', 'pg_dump shop']);
      // Restored with pg_restore into a fresh database: day 0's rows, not day 1's.
      const db = report.restores[1]!;
      expect(db.check).toBe('pg_restore');
      expect(db.rows).toBeGreaterThan(100_000);
      expect(db.rows).not.toBe(db.day1Rows);
    }
    // The throwaway cluster is gone.
    expect((await demoClusters()).filter((name) => !before.includes(name))).toEqual([]);
  });

  it('demo with HOARD_DEMO_NO_POSTGRES=1 falls back to the generated SQL dump stream and says so', async () => {
    const json = await hoardCli(['demo', '--json'], { env: { HOARD_DEMO_NO_POSTGRES: '1' } });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as NetworkDemoReport;
    checkNetworkDemo(report);
    expect(report.dumpSource).toBe('generated');
    expect(report.days.map((d) => d.source)).toEqual(['web-01.img', 'cat shop.sql', 'web-01.img', 'cat shop.sql']);
    expect(report.dumpNote).toBe('HOARD_DEMO_NO_POSTGRES is set');
    expect(report.restores.map((r) => r.check)).toEqual(['sha256', 'sha256']);
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
