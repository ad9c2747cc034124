// `pnpm bench network` at a tiny size (a few MiB, 2 days, 2 agents): the real server and
// agent processes from the built CLI, checked for sane figures only (tests never judge
// speed). Plus the pure parts: argument parsing and the figures.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fleetSizes, parseNetworkArgs, sizesFor } from '../dist/network-bench.js';
import { computeFigures, evaluateTargets, wireBudget, type NetworkDay, type ServerMemory } from '../dist/network-report.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../dist/main.js');

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bench network, tiny', () => {
  // The config's 120 s timeout, not 60 s: this took 35 s in a sequential run on a loaded
  // 2-core machine, and runs beside another test file now.
  it('runs server and agents as processes and reports every figure', async () => {
    const r = await runBench(['network', '--json', '--image-mib', '8', '--dump-mib', '2', '--days', '2', '--agents', '2', '--agent-image-mib', '4']);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, unknown> & { days: NetworkDay[]; four_agents: { agents: number; per_agent_s: number[] } };
    for (const field of ['wire_over_budget_ratio', 'throughput_ratio_embedded', 'server_rss_bytes_per_million_chunks', 'four_agents_mb_s']) {
      expect(typeof res[field], field).toBe('number');
      expect(Number.isFinite(res[field] as number), field).toBe(true);
      expect(res[field] as number, field).toBeGreaterThan(0);
    }
    expect(res.days).toHaveLength(4);
    expect(res.days.map((d) => `${d.series}/${d.day}`)).toEqual(['vm_image/0', 'vm_image/1', 'db_dump/0', 'db_dump/1']);
    for (const d of res.days) {
      expect(d.bytes_sent).toBeGreaterThan(0);
      // The agent's count and the server's agree byte for byte.
      expect(d.server_received_bytes).toBe(d.bytes_sent);
      expect(d.bytes_stored).toBeGreaterThan(0);
      expect(d.bytes_stored).toBeLessThanOrEqual(d.logical_bytes);
      expect(d.wire_over_budget_ratio).toBeCloseTo(d.bytes_sent / wireBudget(d.bytes_stored, d.logical_bytes), 2);
      expect(d.net_wall_s).toBeGreaterThan(0);
      expect(d.emb_wall_s).toBeGreaterThan(0);
      // Same bytes, same chunker on both paths: the same new compressed bytes.
      expect(d.emb_bytes_stored).toBe(d.bytes_stored);
    }
    // Day 0 of the 8 MiB image is 8 MiB; the dump is about 2 MiB.
    expect(res.days[0].logical_bytes).toBe(8 << 20);
    expect(res.four_agents.agents).toBe(2);
    expect(res.four_agents.per_agent_s).toHaveLength(2);
    expect(res.concurrent_agents).toBe(2);
    // 1 agent, then 2 at once, each phase with the ratio to the same image size embedded.
    const fleets = res.fleets as Array<{ agents: number; mb_s: number; ratio_embedded: number }>;
    expect(fleets.map((f) => f.agents)).toEqual([1, 2]);
    expect(Object.keys(res.agents_mb_s as object)).toEqual(['1', '2']);
    for (const f of fleets) expect(f.ratio_embedded).toBeCloseTo(f.mb_s / (res.fleet_embedded as { mb_s: number }).mb_s, 2);
    const fixed = res.fixed_cost as Record<string, number>;
    for (const k of ['net_wall_s', 'net_run_s', 'net_agent_s', 'emb_wall_s']) expect(fixed[k], k).toBeGreaterThan(0);
    expect(res.index_entries as number).toBeGreaterThan(0);
    expect(res.server_peak_rss_bytes as number).toBeGreaterThanOrEqual(res.server_idle_rss_bytes as number);
    expect((res.targets as Array<{ measure: string }>).map((t) => t.measure)).toEqual(['wire_over_budget_ratio', 'throughput_ratio_embedded']);
  });
});

describe('fleetSizes', () => {
  it('doubles from 1 up to the agent count, which is always included', () => {
    expect(fleetSizes(0)).toEqual([]);
    expect(fleetSizes(1)).toEqual([1]);
    expect(fleetSizes(4)).toEqual([1, 2, 4]);
    expect(fleetSizes(6)).toEqual([1, 2, 4, 6]);
  });
});

describe('parseNetworkArgs', () => {
  it('takes sizes as "--x N" or "--x=N" over the preset', () => {
    const a = parseNetworkArgs(['--image-mib', '64', '--days=2', '--agents', '0', '--json']);
    expect(a).toMatchObject({ imageMib: 64, days: 2, agents: 0, json: true });
    if ('error' in a) throw new Error(a.error);
    expect(sizesFor(a)).toEqual({ vmImageBytes: 64 << 20, dumpBytes: 256 << 20, days: 2, agents: 0, agentImageBytes: 512 << 20, seed: 1 });
    const q = parseNetworkArgs(['--quick']);
    if ('error' in q) throw new Error(q.error);
    expect(sizesFor(q)).toMatchObject({ vmImageBytes: 128 << 20, days: 3 });
  });

  it('rejects bad numbers, unknown options and arguments', () => {
    expect(parseNetworkArgs(['--days', '0'])).toEqual({ error: '--days needs an integer >= 1' });
    expect(parseNetworkArgs(['--image-mib', '1.5'])).toEqual({ error: '--image-mib needs an integer >= 1' });
    expect(parseNetworkArgs(['--agents'])).toEqual({ error: '--agents needs an integer >= 0' });
    expect(parseNetworkArgs(['--fast'])).toEqual({ error: 'unknown option --fast' });
    expect(parseNetworkArgs(['backup'])).toEqual({ error: 'unexpected argument "backup"' });
  });
});

function day(series: string, d: number, o: { logical: number; sent: number; stored: number; net: number; emb: number; run?: number }): NetworkDay {
  const budget = wireBudget(o.stored, o.logical);
  return {
    series,
    day: d,
    logical_bytes: o.logical,
    load_1m: 0,
    net_wall_s: o.net,
    net_run_s: o.run ?? o.net,
    net_agent_s: o.net,
    net_mb_s: o.logical / o.net / 1e6,
    bytes_sent: o.sent,
    server_received_bytes: o.sent,
    server_read_bytes: o.sent + 1000,
    bytes_new: o.stored,
    bytes_stored: o.stored,
    chunks: 10,
    chunks_new: 1,
    wire_budget_bytes: budget,
    wire_over_budget_ratio: o.sent / budget,
    server_cpu_s: 1,
    agent_cpu_s: 1,
    source_cpu_s: 0,
    cli_cpu_s: null,
    agent_peak_rss_bytes: 1.2e8,
    net_others_cpu_s: null,
    emb_wall_s: o.emb,
    emb_mb_s: o.logical / o.emb / 1e6,
    emb_bytes_stored: o.stored,
    emb_peak_rss_bytes: null,
    emb_cpu_s: null,
    emb_others_cpu_s: null,
    throughput_ratio: o.emb / o.net,
  };
}

describe('computeFigures', () => {
  const memory: ServerMemory = {
    idle_rss_bytes: 80e6,
    peak_rss_after_series_bytes: 150e6,
    peak_rss_bytes: 200e6,
    index_entries: 500_000,
    index_memory_bytes: 15e6,
    agent_peak_rss_bytes: 1e8,
    agent_peak_rss_after_series_bytes: 9e7,
  };
  const days = [
    day('vm_image', 0, { logical: 1e9, sent: 5e8, stored: 5e8, net: 5, emb: 4, run: 3 }),
    day('vm_image', 1, { logical: 1e9, sent: 2.2e7, stored: 1.6e7, net: 2, emb: 2 }),
    day('db_dump', 0, { logical: 2e8, sent: 1e8, stored: 1e8, net: 1, emb: 1 }),
    day('db_dump', 1, { logical: 2e8, sent: 1e7, stored: 1e7, net: 1, emb: 1 }),
  ];

  it('takes the worst later day for the wire, aggregate wall times for throughput', () => {
    const f = computeFigures(
      days,
      {
        agents: 4,
        image_bytes: 1,
        logical_bytes: 4e9,
        wall_s: 20,
        mb_s: 200,
        per_agent_s: [20],
        bytes_sent: 1,
        bytes_stored: 1,
        server_cpu_s: 1,
        agents_cpu_s: 1,
        others_cpu_s: null,
        load_1m: 0,
      },
      memory,
      2,
    );
    // vm day 1: 2.2e7 / (1.05 * 1.6e7 + 0.005 * 1e9) = 2.2e7 / 2.18e7
    expect(f.wire_over_budget_ratio).toBe(1.009);
    expect(f.wire_over_budget_ratio_first_day).toBe(0.943); // 5e8 / 5.3e8 (vm day 0: 1.05 * 5e8 + 5e6)
    expect(f.throughput_ratio_embedded).toBe(0.889); // 8 / 9
    expect(f.throughput_ratio_embedded_first_day).toBe(0.833); // 5 / 6
    expect(f.throughput_ratio_embedded_later_days).toBe(1);
    expect(f.throughput_ratio_embedded_run_timed).toBe(1.143); // 8 / 7
    // 2 CPU s per day (server 1, agent 1) on 2 cores: 8 s embedded / (8 CPU s / 2); day 0: 5 / (4 / 2)
    expect(f.throughput_ratio_cpu_bound).toBe(2);
    expect(f.throughput_ratio_cpu_bound_first_day).toBe(2.5);
    expect(f.server_rss_bytes_per_million_chunks).toBe(400e6);
    expect(f.server_rss_above_idle_bytes_per_million_chunks).toBe(240e6);
    expect(f.index_bytes_per_entry).toBe(30);
    expect(f.four_agents_mb_s).toBe(200);
    expect(f.single_agent_first_day_mb_s).toBe(200);
    expect(f.wire_count_mismatch).toBe(0);
    const met = Object.fromEntries(evaluateTargets(f).map((t) => [t.measure, t.met]));
    expect(met).toEqual({ wire_over_budget_ratio: false, throughput_ratio_embedded: true });
  });

  it('gives null where nothing was measured', () => {
    const f = computeFigures(
      days.filter((d) => d.day === 0),
      null,
      { ...memory, index_entries: 0 },
    );
    expect(f.wire_over_budget_ratio).toBeNull();
    expect(f.throughput_ratio_embedded_later_days).toBeNull();
    expect(f.four_agents_mb_s).toBeNull();
    expect(f.throughput_ratio_cpu_bound).toBeNull(); // no core count given
    expect(f.server_rss_bytes_per_million_chunks).toBeNull();
    expect(evaluateTargets(f)[0].met).toBeNull();
  });
});
