/**
 * `pnpm bench network` figures: the wire budget, the throughput of the network path
 * against the embedded one, the server's memory per indexed chunk and the concurrent-agent
 * throughput; the targets and the tables. Pure functions of the measured runs, so they are
 * unit-tested.
 */
import { fmt, renderTable } from './table.js';

const MiB = 1 << 20;

/** The wire budget: 1.05 x new compressed bytes + 0.5% of the logical bytes. */
export const WIRE_BUDGET = { stored: 1.05, logical: 0.005 } as const;

export function wireBudget(storedBytes: number, logicalBytes: number): number {
  return WIRE_BUDGET.stored * storedBytes + WIRE_BUDGET.logical * logicalBytes;
}

/** One day of one series, backed up through the server and then embedded. */
export interface NetworkDay {
  /** "vm_image" | "db_dump" */
  series: string;
  day: number;
  /** Bytes of that day's file (= what the agent read). */
  logical_bytes: number;
  /** 1-minute load average right before the network run (other work on the machine). */
  load_1m: number;

  // --- network path: `hoard run` -> agent -> media server
  /** `hoard run ... --json` from spawn to exit (queue, agent, server, commit, answer). */
  net_wall_s: number;
  /**
   * The run's life on the server: queued .. finished (createdAt .. finishedAt, ms
   * resolution). net_wall_s - net_run_s is the `hoard run` process's own start and exit.
   */
  net_run_s: number;
  /** The agent's own time for the target (open source .. commit answered). */
  net_agent_s: number;
  /** logical_bytes / net_wall_s, MB/s (10^6 B/s). */
  net_mb_s: number;
  /** Request-body bytes the agent sent on the data path (its `bytesSent`). */
  bytes_sent: number;
  /** Delta of the server's hoard_received_bytes_total over the run (should equal bytes_sent). */
  server_received_bytes: number;
  /**
   * Delta of the server process's read() bytes (/proc/PID/io rchar) over the run: every
   * byte it read from its sockets, HTTP headers and control calls included (and any file
   * reads, of which there are none on this path). null when /proc is not readable.
   */
  server_read_bytes: number | null;
  /** Raw bytes of chunks the store did not have. */
  bytes_new: number;
  /** Bytes those new chunks take in packs (compressed): "new compressed bytes". */
  bytes_stored: number;
  chunks: number;
  chunks_new: number;
  wire_budget_bytes: number;
  /** bytes_sent / wire_budget_bytes (target <= 1). */
  wire_over_budget_ratio: number;
  /** CPU seconds the server and the agent processes used during the run. */
  server_cpu_s: number;
  agent_cpu_s: number;
  /** CPU of the source's own process (`cat` for the dump's cmd: source), once the agent has reaped it. */
  source_cpu_s: number;
  /** CPU of the `hoard run` CLI process itself (null without GNU time). */
  cli_cpu_s: number | null;
  /** VmHWM of the series' agent (a0) after this day's run: its peak so far. */
  agent_peak_rss_bytes: number;
  /**
   * CPU seconds the rest of the machine (anything but the benchmark's processes) used
   * during the network run: 0 on a quiet machine; on 2 cores, anything near the run's wall
   * time means the figure is not clean. null without /proc/stat.
   */
  net_others_cpu_s: number | null;

  // --- embedded path: `hoard backup --repo DIR`
  emb_wall_s: number;
  emb_mb_s: number;
  emb_bytes_stored: number;
  emb_peak_rss_bytes: number | null;
  emb_cpu_s: number | null;
  /** As net_others_cpu_s, during the embedded run. */
  emb_others_cpu_s: number | null;

  /** net_mb_s / emb_mb_s. */
  throughput_ratio: number;
}

/** N agents backing up N different images at once. */
export interface FleetResult {
  agents: number;
  /** Size of each agent's image. */
  image_bytes: number;
  logical_bytes: number;
  /** From queueing the runs to the last one finished. */
  wall_s: number;
  mb_s: number;
  /** Each run's time from queueing to its finish. */
  per_agent_s: number[];
  bytes_sent: number;
  bytes_stored: number;
  server_cpu_s: number;
  agents_cpu_s: number;
  others_cpu_s: number | null;
  load_1m: number;
  /** mb_s / one image of the same size backed up embedded (hoard backup --repo). */
  ratio_embedded?: number;
}

/** What each path costs for a 1 MiB file: process start, session, commit (best of 3). */
export interface FixedCost {
  /** `hoard run` from spawn to exit. */
  net_wall_s: number;
  /** The run on the server, queued .. finished. */
  net_run_s: number;
  /** The agent's own time for the target. */
  net_agent_s: number;
  /** `hoard backup --repo` from spawn to exit. */
  emb_wall_s: number;
}

export interface ServerMemory {
  /** VmRSS of the server a moment after it started, before any run (empty repository). */
  idle_rss_bytes: number;
  /** VmHWM of the server after the day series (before the concurrent agents). */
  peak_rss_after_series_bytes: number;
  /** VmHWM of the server at the end. */
  peak_rss_bytes: number;
  /** Fingerprints in all store indexes at the end (GET /v1/stores). */
  index_entries: number;
  /** What the indexes say they take (GET /v1/stores memoryBytes). */
  index_memory_bytes: number;
  /** Highest VmHWM of any agent process. */
  agent_peak_rss_bytes: number;
  /** VmHWM of the agent of the day series (a0) after them, before the concurrent agents. */
  agent_peak_rss_after_series_bytes: number;
}

export interface NetworkFigures {
  /** Worst bytes_sent / budget over days 1.. of both series (target <= 1). */
  wire_over_budget_ratio: number | null;
  /** The same over day 0 (the full first backup). */
  wire_over_budget_ratio_first_day: number | null;
  /** Network MB/s / embedded MB/s over all days of both series: sum of embedded wall times / sum of network wall times. */
  throughput_ratio_embedded: number | null;
  throughput_ratio_embedded_first_day: number | null;
  throughput_ratio_embedded_later_days: number | null;
  /**
   * The same over all days with the network side timed by the server (run queued ..
   * finished, net_run_s) instead of the `hoard run` process: what a run the server's own
   * scheduler starts costs. The embedded side keeps its process start (it has no other).
   */
  throughput_ratio_embedded_run_timed: number | null;
  /**
   * The most throughput_ratio_embedded could be with the CPU the network path used: its
   * processes' CPU seconds (server, agent, the source's process, the `hoard run` CLI) spread
   * perfectly over the machine's cores, against the embedded wall time. The network wall
   * time cannot be shorter than that CPU over the cores (on loopback every process shares
   * them), so below the target this says the target needs less CPU, not better overlap.
   * null without the cores or without CPU figures.
   */
  throughput_ratio_cpu_bound: number | null;
  throughput_ratio_cpu_bound_first_day: number | null;
  /** Aggregate MB/s of each path over all days (logical bytes / wall time). */
  network_mb_s: number | null;
  embedded_mb_s: number | null;
  /** Largest |server_received_bytes - bytes_sent| / bytes_sent of any day (the cross-check; 0 when they agree). */
  wire_count_mismatch: number | null;
  /** Largest server_read_bytes / bytes_sent of any day: what HTTP framing and control calls add. */
  wire_read_over_sent: number | null;
  /** Server VmHWM / (index entries / 1e6). */
  server_rss_bytes_per_million_chunks: number | null;
  /** (Server VmHWM - idle RSS) / (index entries / 1e6). */
  server_rss_above_idle_bytes_per_million_chunks: number | null;
  /** Index memory / entries, as the server reports it. */
  index_bytes_per_entry: number | null;
  server_idle_rss_bytes: number;
  server_peak_rss_bytes: number;
  index_entries: number;
  agent_peak_rss_bytes: number;
  /** The day series' agent alone (before N agents at once share the cores). */
  agent_peak_rss_after_series_bytes: number;
  /** N agents at once: total logical bytes / wall time, MB/s. */
  four_agents_mb_s: number | null;
  concurrent_agents: number;
  /** One agent alone on a first backup of the VM image (day 0 of the series), MB/s, for comparison. */
  single_agent_first_day_mb_s: number | null;
}

export interface Target {
  measure: keyof NetworkFigures;
  op: '<=' | '>=';
  target: number;
  value: number | null;
  met: boolean | null;
}

const round = (v: number, digits = 3) => Number(v.toFixed(digits));
const maxOrNull = (values: number[]): number | null => (values.length === 0 ? null : round(Math.max(...values)));
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

function timeRatio(days: NetworkDay[], net_s: (d: NetworkDay) => number = (d) => d.net_wall_s): number | null {
  const net = sum(days.map(net_s));
  return days.length === 0 || net <= 0 ? null : round(sum(days.map((d) => d.emb_wall_s)) / net);
}

/** Embedded wall time / (network-path CPU seconds / cores), over `days` (see throughput_ratio_cpu_bound). */
function cpuBoundRatio(days: NetworkDay[], cores: number | undefined): number | null {
  if (!cores || days.length === 0) return null;
  const cpu = sum(days.map((d) => d.server_cpu_s + d.agent_cpu_s + d.source_cpu_s + (d.cli_cpu_s ?? 0)));
  return cpu > 0 ? round(sum(days.map((d) => d.emb_wall_s)) / (cpu / cores)) : null;
}

export function computeFigures(days: NetworkDay[], fleet: FleetResult | null, memory: ServerMemory, cores?: number): NetworkFigures {
  const first = days.filter((d) => d.day === 0);
  const later = days.filter((d) => d.day > 0);
  const logical = sum(days.map((d) => d.logical_bytes));
  const netWall = sum(days.map((d) => d.net_wall_s));
  const embWall = sum(days.map((d) => d.emb_wall_s));
  const perMillion = (bytes: number) => (memory.index_entries > 0 ? Math.round(bytes / (memory.index_entries / 1e6)) : null);
  const vmDay0 = days.find((d) => d.series === 'vm_image' && d.day === 0);
  const reads = days.filter((d) => d.server_read_bytes !== null && d.bytes_sent > 0);
  return {
    wire_over_budget_ratio: maxOrNull(later.map((d) => d.wire_over_budget_ratio)),
    wire_over_budget_ratio_first_day: maxOrNull(first.map((d) => d.wire_over_budget_ratio)),
    throughput_ratio_embedded: timeRatio(days),
    throughput_ratio_embedded_first_day: timeRatio(first),
    throughput_ratio_embedded_later_days: timeRatio(later),
    throughput_ratio_embedded_run_timed: timeRatio(days, (d) => d.net_run_s),
    throughput_ratio_cpu_bound: cpuBoundRatio(days, cores),
    throughput_ratio_cpu_bound_first_day: cpuBoundRatio(first, cores),
    network_mb_s: netWall > 0 ? round(logical / netWall / 1e6, 1) : null,
    embedded_mb_s: embWall > 0 ? round(logical / embWall / 1e6, 1) : null,
    wire_count_mismatch:
      days.length === 0 ? null : round(Math.max(...days.map((d) => Math.abs(d.server_received_bytes - d.bytes_sent) / Math.max(1, d.bytes_sent))), 6),
    wire_read_over_sent: reads.length === 0 ? null : round(Math.max(...reads.map((d) => d.server_read_bytes! / d.bytes_sent)), 4),
    server_rss_bytes_per_million_chunks: perMillion(memory.peak_rss_bytes),
    server_rss_above_idle_bytes_per_million_chunks: perMillion(Math.max(0, memory.peak_rss_bytes - memory.idle_rss_bytes)),
    index_bytes_per_entry: memory.index_entries > 0 ? round(memory.index_memory_bytes / memory.index_entries, 1) : null,
    server_idle_rss_bytes: memory.idle_rss_bytes,
    server_peak_rss_bytes: memory.peak_rss_bytes,
    index_entries: memory.index_entries,
    agent_peak_rss_bytes: memory.agent_peak_rss_bytes,
    agent_peak_rss_after_series_bytes: memory.agent_peak_rss_after_series_bytes,
    four_agents_mb_s: fleet ? fleet.mb_s : null,
    concurrent_agents: fleet ? fleet.agents : 0,
    single_agent_first_day_mb_s: vmDay0 ? vmDay0.net_mb_s : null,
  };
}

/** The targets: the wire within budget on later days, the network path at least 0.8x the embedded one. */
export function evaluateTargets(f: NetworkFigures): Target[] {
  const t = (measure: keyof NetworkFigures, op: '<=' | '>=', target: number): Target => {
    const v = f[measure];
    const value = typeof v === 'number' ? v : null;
    return { measure, op, target, value, met: value === null ? null : op === '<=' ? value <= target : value >= target };
  };
  return [t('wire_over_budget_ratio', '<=', 1), t('throughput_ratio_embedded', '>=', 0.8)];
}

const mib = (b: number) => (b / MiB).toFixed(1);
const secs = (s: number) => s.toFixed(2);

export function renderDays(days: NetworkDay[]): string {
  const wire = renderTable(
    [
      'series',
      'day',
      'logical MiB',
      'sent MiB',
      'server rcvd MiB',
      'new MiB',
      'stored MiB',
      'emb stored MiB',
      'budget MiB',
      'sent/budget',
      'chunks',
      'new chunks',
    ],
    days.map((d) => [
      d.series,
      String(d.day),
      mib(d.logical_bytes),
      mib(d.bytes_sent),
      mib(d.server_received_bytes),
      mib(d.bytes_new),
      mib(d.bytes_stored),
      mib(d.emb_bytes_stored),
      mib(d.wire_budget_bytes),
      d.wire_over_budget_ratio.toFixed(3),
      fmt.int(d.chunks),
      fmt.int(d.chunks_new),
    ]),
  );
  const speed = renderTable(
    [
      'series',
      'day',
      'net s',
      'run s',
      'agent s',
      'net MB/s',
      'server CPU s',
      'agent CPU s',
      'embedded s',
      'emb MB/s',
      'emb CPU s',
      'net/emb',
      'load',
      'others CPU s net/emb',
    ],
    days.map((d) => [
      d.series,
      String(d.day),
      secs(d.net_wall_s),
      secs(d.net_run_s),
      secs(d.net_agent_s),
      fmt.mbps(d.net_mb_s),
      secs(d.server_cpu_s),
      secs(d.agent_cpu_s),
      secs(d.emb_wall_s),
      fmt.mbps(d.emb_mb_s),
      d.emb_cpu_s === null ? '-' : secs(d.emb_cpu_s),
      d.throughput_ratio.toFixed(2),
      d.load_1m.toFixed(2),
      `${d.net_others_cpu_s ?? '-'} / ${d.emb_others_cpu_s ?? '-'}`,
    ]),
  );
  return `Bytes on the wire per day (agent -> server, request bodies)\n\n${wire}\n\nThroughput: network path vs embedded (\`hoard backup --repo\`)\n\n${speed}`;
}

export function renderFleet(fleets: FleetResult[], embedded?: { mb_s: number } | null): string {
  const table = renderTable(
    [
      'agents at once',
      'MiB each',
      'wall s',
      'MB/s total',
      'x embedded',
      'slowest s',
      'fastest s',
      'sent MiB',
      'stored MiB',
      'server CPU s',
      'agents CPU s',
      'load',
      'others CPU s',
    ],
    fleets.map((f) => [
      String(f.agents),
      mib(f.image_bytes),
      secs(f.wall_s),
      fmt.mbps(f.mb_s),
      f.ratio_embedded === undefined ? '-' : f.ratio_embedded.toFixed(2),
      secs(Math.max(...f.per_agent_s)),
      secs(Math.min(...f.per_agent_s)),
      mib(f.bytes_sent),
      mib(f.bytes_stored),
      secs(f.server_cpu_s),
      secs(f.agents_cpu_s),
      f.load_1m.toFixed(2),
      f.others_cpu_s === null ? '-' : secs(f.others_cpu_s),
    ]),
  );
  return embedded ? `${table}\n\none image of the same size embedded: ${fmt.mbps(embedded.mb_s)} MB/s` : table;
}

export function renderFixed(f: FixedCost): string {
  return renderTable(
    ['path', 'seconds', 'what'],
    [
      ['network', secs(f.net_wall_s), '`hoard run` from spawn to exit'],
      ['  run', secs(f.net_run_s), 'queued .. finished, on the server'],
      ['  agent', secs(f.net_agent_s), 'the agent: open, session, chunk, send, commit'],
      ['embedded', secs(f.emb_wall_s), '`hoard backup --repo` from spawn to exit'],
    ],
  );
}

export function renderSummary(f: NetworkFigures, targets: Target[]): string {
  const show = (v: unknown) =>
    v === null || v === undefined ? '-' : typeof v === 'number' && Number.isInteger(v) && Math.abs(v) >= 10000 ? fmt.int(v) : String(v);
  const figures = renderTable(
    ['measure', 'value'],
    Object.entries(f).map(([k, v]) => [k, show(v)]),
  );
  const goals = renderTable(
    ['target', 'value', 'goal', 'met'],
    targets.map((t) => [t.measure, show(t.value), `${t.op} ${t.target}`, t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED']),
  );
  return `${figures}\n\n${goals}`;
}
