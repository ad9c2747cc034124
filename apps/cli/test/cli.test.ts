import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const hoard = fileURLToPath(new URL('../dist/main.js', import.meta.url));

async function hoardCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [hoard, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('hoard CLI', () => {
  it('demo --json: later days are mostly deduplicated; dumps dedup far better content-defined than fixed', async () => {
    const { code, stdout } = await hoardCli('demo', '--json');
    expect(code).toBe(0);
    const { days } = JSON.parse(stdout) as { days: Array<Record<string, number | string>> };
    const of = (series: string, fixed: boolean) =>
      days.filter((d) => d.series === series && String(d.chunker).startsWith('fixed') === fixed);
    for (const series of ['vm-image', 'db-dump']) {
      const cdc = of(series, false);
      expect(cdc.length).toBeGreaterThanOrEqual(3);
      // after the first day, a day adds a small fraction of its size
      for (const d of cdc.slice(1)) expect(Number(d.new_bytes)).toBeLessThan(Number(d.logical_bytes) * 0.25);
      expect(Number(cdc.at(-1)!.cumulative_dedup_ratio)).toBeGreaterThan(2);
    }
    const dumpCdc = of('db-dump', false).at(-1)!;
    const dumpFixed = of('db-dump', true).at(-1)!;
    expect(Number(dumpCdc.cumulative_stored_bytes)).toBeLessThan(Number(dumpFixed.cumulative_stored_bytes) * 0.6);
  });

  it('demo prints a readable table', async () => {
    const { code, stdout } = await hoardCli('demo');
    expect(code).toBe(0);
    expect(stdout).toMatch(/dedup so far/);
    expect(stdout).toMatch(/content-defined chunking stores/);
  });

  it('--help teaches; an unknown command is a usage error (exit 2) without a stack trace', async () => {
    const help = await hoardCli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/demo/);
    const bad = await hoardCli('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(bad.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});
