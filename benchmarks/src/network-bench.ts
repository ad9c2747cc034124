/**
 * `pnpm bench network`: the agent -> media server path on loopback, as separate processes
 * started through the built CLI (`apps/cli/dist/main.js`):
 *
 * - one media server (`hoard server start --storage fs:DIR --listen 127.0.0.1:0`) and N
 *   agents (`hoard agent add` + `hoard agent start`);
 * - the VM-image and dump series of `bench backup`, day by day: each day once through the
 *   server (`hoard run --agent a0 --source file:IMAGE` / `--source "cmd:cat DUMP"`) and
 *   once embedded (`hoard backup --repo DIR`, its own repository), same bytes, same chunk
 *   sizes; per day the bytes the agent sent (cross-checked with the server's
 *   hoard_received_bytes_total and with what the server process read from its sockets),
 *   the new and new-compressed bytes, wall times and CPU seconds of both processes;
 * - the server's peak RSS (VmHWM) per million indexed chunks, and its idle RSS;
 * - 1, 2, 4 ... N agents at once, each backing up its own image (a different seed of the
 *   VM-image generator): total MB/s, and its ratio to one such image backed up embedded.
 *
 * Method notes (see benchmarks/README.md, "network"): every file is generated before any
 * run and read once right before each timed run (warm page cache); `sync` runs between
 * runs, outside the timing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dumpSeries, vmImageSeries, type DataSeries } from '@hoard/bench-data';
import { materialize, readThrough, syncDisks } from './backup-bench.js';
import { machine } from './machine.js';
import { TIME_BIN, killRunning, runMeasured } from './measure.js';
import {
  computeFigures,
  evaluateTargets,
  renderDays,
  renderFixed,
  renderFleet,
  renderSummary,
  wireBudget,
  type FixedCost,
  type FleetResult,
  type NetworkDay,
  type ServerMemory,
} from './network-report.js';
import type { SessionTotals } from '@hoard/protocol';
import { CLK_TCK, Daemon, Server, TextTail, killDaemons, unitEnvironment } from './daemon.js';
import { HOARD_CLI, REPO_ROOT, findOnPath } from './peers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

export interface NetworkSizes {
  vmImageBytes: number;
  dumpBytes: number;
  days: number;
  /** Agents backing up at once in the concurrent phase (0 skips it). */
  agents: number;
  /** Size of each concurrent agent's image. */
  agentImageBytes: number;
  seed: number;
}

export const fullNetworkRun: NetworkSizes = { vmImageBytes: 1 * GiB, dumpBytes: 256 * MiB, days: 5, agents: 4, agentImageBytes: 512 * MiB, seed: 1 };
export const quickNetworkRun: NetworkSizes = { vmImageBytes: 128 * MiB, dumpBytes: 32 * MiB, days: 3, agents: 4, agentImageBytes: 64 * MiB, seed: 1 };

export interface NetworkBenchOptions extends NetworkSizes {
  dir?: string;
  keep: boolean;
  log: (line: string) => void;
}

export interface NetworkArgs {
  json: boolean;
  quick: boolean;
  help: boolean;
  keep: boolean;
  dir?: string;
  /** Size overrides, in MiB (image sizes) or counts. */
  imageMib?: number;
  dumpMib?: number;
  days?: number;
  agents?: number;
  agentImageMib?: number;
  seed?: number;
}

const NUMERIC: Record<string, { key: keyof NetworkArgs; min: number }> = {
  '--image-mib': { key: 'imageMib', min: 1 },
  '--dump-mib': { key: 'dumpMib', min: 1 },
  '--days': { key: 'days', min: 1 },
  '--agents': { key: 'agents', min: 0 },
  '--agent-image-mib': { key: 'agentImageMib', min: 1 },
  '--seed': { key: 'seed', min: 0 },
};

/** Parses the arguments after `network`. Returns an error message for bad input. */
export function parseNetworkArgs(argv: string[]): NetworkArgs | { error: string } {
  const a: NetworkArgs = { json: false, quick: false, help: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (name in NUMERIC) {
      const { key, min } = NUMERIC[name];
      const v = value();
      const n = Number(v);
      if (v === undefined || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) return { error: `${name} needs an integer >= ${min}` };
      (a as unknown as Record<string, number>)[key] = n;
      continue;
    }
    switch (name) {
      case '--json':
      case '--quick':
      case '--help':
      case '--keep':
        if (eq > 0) return { error: `option ${name} takes no value` };
        a[name.slice(2) as 'json' | 'quick' | 'help' | 'keep'] = true;
        break;
      case '--dir': {
        const v = value();
        if (!v) return { error: '--dir needs a directory' };
        a.dir = v;
        break;
      }
      default:
        return { error: arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument "${arg}"` };
    }
  }
  return a;
}

/** The sizes a parsed command line asks for: the preset, then the overrides. */
export function sizesFor(a: NetworkArgs): NetworkSizes {
  const base = a.quick ? quickNetworkRun : fullNetworkRun;
  return {
    vmImageBytes: a.imageMib !== undefined ? a.imageMib * MiB : base.vmImageBytes,
    dumpBytes: a.dumpMib !== undefined ? a.dumpMib * MiB : base.dumpBytes,
    days: a.days ?? base.days,
    agents: a.agents ?? base.agents,
    agentImageBytes: a.agentImageMib !== undefined ? a.agentImageMib * MiB : base.agentImageBytes,
    seed: a.seed ?? base.seed,
  };
}

// ---------------------------------------------------------------------------------------
// Processes

/** Runs the CLI to completion (not measured); returns stdout; throws with the output tail on failure. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; wall_s: number }> {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [HOARD_CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = new TextTail(1 << 20);
    const err = new TextTail();
    child.stdout.setEncoding('utf8').on('data', (s: string) => out.push(s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wall_s = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === 0) return resolvePromise({ stdout: out.text, wall_s });
      const shown = args.map((a) => (/^hoard_(admin|agent)_/.test(a) ? '<token>' : a));
      reject(new Error(`hoard ${shown.join(' ')} failed (${code ?? signal}):\n${`${out.text}\n${err.text}`.trim().split('\n').slice(-15).join('\n')}`));
    });
  });
}

/** Last JSON object line of a command's stdout. */
function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line) as T;
    } catch {
      // progress or log line
    }
  }
  throw new Error(`no JSON in output: ${stdout.slice(-300)}`);
}

/** A target's totals as the agent reports them (the protocol's SessionTotals). */
type Totals = SessionTotals;

/** `hoard run --json`: the run, with null for what does not apply (docs/cli.md, "JSON output"). */
interface RunViewLite {
  id: string;
  state: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  targets: Array<{ name: string; ok: boolean; error: string | null; totals: Totals | null; durationMs: number }>;
}

/** The one successful target of a finished run, or an error naming what failed. */
function targetOf(run: RunViewLite, what: string): RunViewLite['targets'][number] & { totals: Totals } {
  const t = run.targets[0];
  if (run.state !== 'succeeded' || !t?.ok || !t.totals) throw new Error(`${what}: run ${run.id} ${run.state}: ${run.error ?? t?.error ?? 'no target result'}`);
  return t as RunViewLite['targets'][number] & { totals: Totals };
}

/**
 * Busy CPU seconds of the whole machine so far (/proc/stat: user, nice, system, irq,
 * softirq, steal), or null without /proc. Compared with what the benchmark's own processes
 * used over a run, it tells how much other work shared the cores during that run.
 */
async function machineBusySeconds(): Promise<number | null> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK;
  } catch {
    return null;
  }
}

/** This benchmark process's own CPU seconds. */
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** What the server process and the agents did between two readings. */
interface Reading {
  received: number;
  read: number | null;
  serverCpu: number;
  /** Agents' own CPU seconds. */
  agentsCpu: number;
  /** CPU of the agents' reaped children (a cmd: source's command). */
  agentsChildrenCpu: number;
  busy: number | null;
  self: number;
}

async function reading(server: Server, agents: Daemon[]): Promise<Reading> {
  const [received, read, serverCpu, busy, ...agentCpu] = await Promise.all([
    server.receivedBytes(),
    server.daemon.readBytes(),
    server.daemon.cpuSeconds(),
    machineBusySeconds(),
    ...agents.map((a) => a.cpuSeconds()),
  ]);
  return {
    received,
    read,
    serverCpu: serverCpu.self,
    agentsCpu: agentCpu.reduce((a, b) => a + b.self, 0),
    agentsChildrenCpu: agentCpu.reduce((a, b) => a + b.children, 0),
    busy,
    self: selfCpu(),
  };
}

/**
 * CPU seconds used on the machine between `before` and `after` by anything but the
 * benchmark's processes (`ownCpu`: children measured separately): other work sharing the
 * cores. null without /proc/stat.
 */
function othersCpu(before: Reading, after: Reading, ownCpu: number): number | null {
  if (before.busy === null || after.busy === null) return null;
  const ours =
    after.serverCpu -
    before.serverCpu +
    (after.agentsCpu - before.agentsCpu) +
    (after.agentsChildrenCpu - before.agentsChildrenCpu) +
    (after.self - before.self) +
    ownCpu;
  return r3(Math.max(0, after.busy - before.busy - ours));
}

// ---------------------------------------------------------------------------------------
// The benchmark

interface SeriesSpec {
  name: 'vm_image' | 'db_dump';
  job: string;
  fileName: string;
  series: DataSeries;
  /** The agent's source spec for the file. */
  source: (file: string) => string;
  /** The chunk preset the server hands the agent for that source, given to the embedded backup too. */
  chunking: string;
}

const mbps = (bytes: number, s: number) => Number((bytes / s / 1e6).toFixed(1));
const r3 = (v: number) => Number(v.toFixed(3));
const load1 = () => Number(loadavg()[0].toFixed(2));

/** A CLI command under GNU time when it is installed (peak RSS, CPU), else by our clock alone. */
async function timedCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ wall_s: number; peak_rss_bytes: number | null; cpu_s: number | null; stdout: string }> {
  if (findOnPath(TIME_BIN) !== null) return runMeasured(process.execPath, [HOARD_CLI, ...args], { env, keepOutput: 64 * 1024 });
  const r = await cli(args, env);
  return { wall_s: r.wall_s, peak_rss_bytes: null, cpu_s: null, stdout: r.stdout };
}

export function diskNeed(o: NetworkSizes): number {
  const dump = o.dumpBytes * 1.1;
  // The day's files twice, two repositories of ~1.5 days each, the agents' images and their share of the server repository.
  const fleetImages = fleetSizes(o.agents).reduce((n, c) => n + c, 0) + 1;
  return Math.round(2 * (o.vmImageBytes + dump) + 2 * 1.5 * (o.vmImageBytes + dump) + 2 * fleetImages * o.agentImageBytes);
}

/** The fleet phases: 1, 2, 4, ... agents at once, up to `agents` (which is always one of them). */
export function fleetSizes(agents: number): number[] {
  const sizes: number[] = [];
  for (let n = 1; n < agents; n *= 2) sizes.push(n);
  if (agents > 0) sizes.push(agents);
  return sizes;
}

export async function runNetworkBench(o: NetworkBenchOptions): Promise<Record<string, unknown>> {
  const started = Date.now();
  const help = spawnSync(process.execPath, [HOARD_CLI, '--help'], { encoding: 'utf8' });
  const helpText = `${help.stdout ?? ''}${help.stderr ?? ''}`;
  for (const cmd of ['server', 'agent', 'run', 'backup', 'init']) {
    if (help.status !== 0 || !new RegExp(`^\\s+${cmd}\\b`, 'm').test(helpText)) {
      throw new Error(`the hoard CLI (${HOARD_CLI}) ${help.status !== 0 ? 'did not run (is it built? npx tsc -b)' : `has no "${cmd}" command`}`);
    }
  }
  const parent = resolve(o.dir ?? tmpdir());
  await mkdir(parent, { recursive: true });
  const fsStat = await statfs(parent);
  const free = fsStat.bavail * fsStat.bsize;
  const need = diskNeed(o);
  if (free < need) o.log(`warning: ${(free / GiB).toFixed(1)} GiB free in ${parent}, the run needs about ${(need / GiB).toFixed(1)} GiB (use --dir)`);
  const work = await mkdtemp(join(parent, 'hoard-bench-network-'));
  o.log(`work directory ${work}${o.keep ? ' (kept)' : ''}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CACHE_HOME: join(work, 'cache'),
    HOARD_SERVER: undefined,
    HOARD_TOKEN: undefined,
    HOARD_REPO: undefined,
  };

  const onSignal = (signal: NodeJS.Signals) => {
    killDaemons();
    killRunning('SIGTERM');
    if (!o.keep) {
      try {
        rmSync(work, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        o.log(`could not remove ${work}`);
      }
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const loads: Record<string, number> = { start: load1() };
  try {
    const src = join(work, 'src');
    const embRepo = join(work, 'embedded-repo');
    await mkdir(src, { recursive: true });
    await cli(['init', '--repo', embRepo], env);

    // Server and agents run with their systemd units' environment, as installed.
    const serverEnv = { ...env, ...unitEnvironment('hoard-server') };
    const agentEnv = { ...env, ...unitEnvironment('hoard-agent') };
    o.log(`agent environment (deploy/systemd/hoard-agent.service): ${JSON.stringify(unitEnvironment('hoard-agent'))}`);
    const server = await Server.start(join(work, 'server-repo'), join(work, 'server-data'), serverEnv);
    o.log(`media server ${server.url} (pid ${server.daemon.pid})`);
    const agentCount = Math.max(1, o.agents);
    const agents: Daemon[] = [];
    for (let i = 0; i < agentCount; i++) {
      const added = lastJson<{ name: string; token: string }>(
        (await cli(['agent', 'add', `a${i}`, '--server', server.url, '--token', server.adminToken, '--json'], env)).stdout,
      );
      const agent = new Daemon(`agent a${i}`, ['agent', 'start', '--server', server.url, '--token', added.token, '--log-level', 'warn'], agentEnv);
      agents.push(agent);
    }
    await Promise.all(agents.map((a) => a.waitFor(/connected to/)));
    // Idle: the server has started, loaded an empty index and answered a few admin calls.
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await server.daemon.memory();
    o.log(`server idle RSS ${(idle.rss / MiB).toFixed(0)} MiB; ${agents.length} agent(s) connected`);

    // Fixed cost of each path: a 1 MiB file (random bytes), best of 3, before the series.
    const tiny = join(src, 'tiny.bin');
    await writeFile(tiny, randomBytes(MiB));
    const fixed: FixedCost = { net_wall_s: Infinity, net_run_s: Infinity, net_agent_s: Infinity, emb_wall_s: Infinity };
    for (let i = 0; i < 3; i++) {
      const run = await cli(
        ['run', '--server', server.url, '--token', server.adminToken, '--agent', 'a0', '--job', 'tiny', '--source', `file:${tiny}`, '--json'],
        env,
      );
      const view = lastJson<RunViewLite>(run.stdout);
      const t = targetOf(view, 'the 1 MiB run');
      fixed.net_wall_s = Math.min(fixed.net_wall_s, r3(run.wall_s));
      fixed.net_run_s = Math.min(fixed.net_run_s, r3((Date.parse(view.finishedAt ?? view.createdAt) - Date.parse(view.createdAt)) / 1000));
      fixed.net_agent_s = Math.min(fixed.net_agent_s, r3(t.durationMs / 1000));
      const emb = await cli(['backup', '--repo', embRepo, '--job', 'tiny', tiny, '--json'], env);
      fixed.emb_wall_s = Math.min(fixed.emb_wall_s, r3(emb.wall_s));
    }
    await rm(tiny, { force: true });
    o.log(`1 MiB file, best of 3: network ${fixed.net_wall_s} s (run ${fixed.net_run_s} s, agent ${fixed.net_agent_s} s), embedded ${fixed.emb_wall_s} s`);

    const specs: SeriesSpec[] = [
      {
        name: 'vm_image',
        job: 'vm',
        fileName: 'vm.img',
        series: vmImageSeries({ seed: o.seed, imageBytes: o.vmImageBytes, days: o.days }),
        source: (f) => `file:${f}`,
        chunking: 'vm-image',
      },
      {
        name: 'db_dump',
        job: 'dump',
        fileName: 'dump.sql',
        series: dumpSeries({ seed: o.seed, approxBytes: o.dumpBytes, days: o.days }),
        // A dump arrives on a command's stdout; cmd: sources get the "file" preset (avg 64 KiB).
        source: (f) => `cmd:cat ${f}`,
        chunking: 'file',
      },
    ];
    const days: NetworkDay[] = [];
    const a0 = agents[0];
    for (const spec of specs) {
      const file = join(src, spec.fileName);
      for (let day = 0; day < o.days; day++) {
        const t0 = Date.now();
        const made = await materialize(spec.series, day, file);
        syncDisks();
        o.log(`${spec.name} day ${day}: ${(made.bytes / MiB).toFixed(0)} MiB generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

        // Network path.
        await readThrough(file);
        const load_1m = load1();
        const before = await reading(server, [a0]);
        const run = await timedCli(
          ['run', '--server', server.url, '--token', server.adminToken, '--agent', 'a0', '--job', spec.job, '--source', spec.source(file), '--json'],
          env,
        );
        const after = await reading(server, [a0]);
        const view = lastJson<RunViewLite>(run.stdout);
        const target = targetOf(view, `${spec.name} day ${day}`);
        const runSeconds = (Date.parse(view.finishedAt ?? view.createdAt) - Date.parse(view.createdAt)) / 1000;
        const t = target.totals;
        if (t.bytesRead !== made.bytes) throw new Error(`${spec.name} day ${day}: the agent read ${t.bytesRead} bytes of a ${made.bytes}-byte file`);
        syncDisks();

        const agentHwm = (await a0!.memory()).hwm;

        // Embedded path.
        await readThrough(file);
        const embBefore = await reading(server, [a0]);
        const emb = await timedCli(['backup', '--repo', embRepo, '--job', spec.job, '--chunking', spec.chunking, file, '--json'], env);
        const embAfter = await reading(server, [a0]);
        const embOut = lastJson<{ bytesRead: number; bytesStored: number }>(emb.stdout);
        syncDisks();

        const budget = wireBudget(t.bytesStored, made.bytes);
        const row: NetworkDay = {
          series: spec.name,
          day,
          logical_bytes: made.bytes,
          load_1m,
          net_wall_s: r3(run.wall_s),
          net_run_s: r3(runSeconds),
          net_agent_s: r3(target.durationMs / 1000),
          net_mb_s: mbps(made.bytes, run.wall_s),
          bytes_sent: t.bytesSent,
          server_received_bytes: after.received - before.received,
          server_read_bytes: after.read !== null && before.read !== null ? after.read - before.read : null,
          bytes_new: t.bytesNew,
          bytes_stored: t.bytesStored,
          chunks: t.chunks,
          chunks_new: t.chunksNew,
          wire_budget_bytes: Math.round(budget),
          wire_over_budget_ratio: r3(t.bytesSent / budget),
          server_cpu_s: r3(after.serverCpu - before.serverCpu),
          agent_cpu_s: r3(after.agentsCpu - before.agentsCpu),
          source_cpu_s: r3(after.agentsChildrenCpu - before.agentsChildrenCpu),
          cli_cpu_s: run.cpu_s === null ? null : r3(run.cpu_s),
          agent_peak_rss_bytes: agentHwm,
          net_others_cpu_s: othersCpu(before, after, run.cpu_s ?? 0),
          emb_wall_s: r3(emb.wall_s),
          emb_mb_s: mbps(made.bytes, emb.wall_s),
          emb_bytes_stored: embOut.bytesStored,
          emb_peak_rss_bytes: emb.peak_rss_bytes,
          emb_cpu_s: emb.cpu_s === null ? null : r3(emb.cpu_s),
          emb_others_cpu_s: othersCpu(embBefore, embAfter, emb.cpu_s ?? 0),
          throughput_ratio: r3(emb.wall_s / run.wall_s),
        };
        days.push(row);
        o.log(
          `  network ${row.net_wall_s.toFixed(2)} s (${row.net_mb_s.toFixed(0)} MB/s), sent ${(row.bytes_sent / MiB).toFixed(1)} MiB ` +
            `(server counted ${(row.server_received_bytes / MiB).toFixed(1)}), stored ${(row.bytes_stored / MiB).toFixed(1)} MiB, sent/budget ${row.wire_over_budget_ratio.toFixed(3)}; ` +
            `embedded ${row.emb_wall_s.toFixed(2)} s (${row.emb_mb_s.toFixed(0)} MB/s); load ${load_1m}, others' CPU ${row.net_others_cpu_s} / ${row.emb_others_cpu_s} s`,
        );
      }
      await rm(file, { force: true });
    }
    const afterSeries = await server.daemon.memory();
    const agentAfterSeries = await a0!.memory();
    loads.after_series = load1();

    // 1, 2, 4 ... agents at once (up to --agents), each its own image: every phase has new
    // images (seeds of their own), so each is a first backup with nothing to dedup against.
    // One image of the same size through the embedded path gives the ratio's reference.
    const fleets: FleetResult[] = [];
    let fleetEmbedded: { wall_s: number; mb_s: number; cpu_s: number | null } | null = null;
    if (o.agents > 0) {
      const makeImage = async (seed: number, name: string): Promise<string> => {
        const file = join(src, name);
        await materialize(vmImageSeries({ seed, imageBytes: o.agentImageBytes, days: 1 }), 0, file);
        return file;
      };
      const reference = await makeImage(o.seed + 99, 'fleet-embedded.img');
      syncDisks();
      await readThrough(reference);
      const emb = await timedCli(['backup', '--repo', embRepo, '--job', 'fleet-embedded', '--chunking', 'vm-image', reference, '--json'], env);
      fleetEmbedded = { wall_s: r3(emb.wall_s), mb_s: mbps(o.agentImageBytes, emb.wall_s), cpu_s: emb.cpu_s === null ? null : r3(emb.cpu_s) };
      o.log(`one ${(o.agentImageBytes / MiB).toFixed(0)} MiB image embedded: ${fleetEmbedded.wall_s.toFixed(2)} s, ${fleetEmbedded.mb_s.toFixed(0)} MB/s`);
      await rm(reference, { force: true });
      for (const count of fleetSizes(o.agents)) {
        const files: string[] = [];
        for (let i = 0; i < count; i++) files.push(await makeImage(o.seed + 100 + 10 * count + i, `fleet-${count}-${i}.img`));
        syncDisks();
        for (const f of files) await readThrough(f);
        o.log(`${count} agent(s) at once, ${(o.agentImageBytes / MiB).toFixed(0)} MiB each ...`);
        const load_1m = load1();
        const before = await reading(server, agents);
        const t0 = process.hrtime.bigint();
        const queued = await Promise.all(
          files.map((f, i) => server.api<RunViewLite>('POST', '/v1/runs', { agent: `a${i}`, job: `fleet-${count}-${i}`, sources: [`file:${f}`] })),
        );
        const finished = await Promise.all(
          queued.map(async (q) => {
            let run = q;
            while (run.state === 'queued' || run.state === 'running') run = await server.api<RunViewLite>('GET', `/v1/runs/${run.id}?wait=30`);
            return { run, s: Number(process.hrtime.bigint() - t0) / 1e9 };
          }),
        );
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const after = await reading(server, agents);
        const totals = finished.map((f, i) => targetOf(f.run, `agent a${i}`).totals);
        const logical = totals.reduce((n, t) => n + t.bytesRead, 0);
        const fleet: FleetResult = {
          agents: count,
          image_bytes: o.agentImageBytes,
          logical_bytes: logical,
          wall_s: r3(wall),
          mb_s: mbps(logical, wall),
          per_agent_s: finished.map((f) => r3(f.s)),
          bytes_sent: totals.reduce((n, t) => n + t.bytesSent, 0),
          bytes_stored: totals.reduce((n, t) => n + t.bytesStored, 0),
          server_cpu_s: r3(after.serverCpu - before.serverCpu),
          agents_cpu_s: r3(after.agentsCpu - before.agentsCpu),
          others_cpu_s: othersCpu(before, after, 0),
          load_1m,
          ratio_embedded: r3(mbps(logical, wall) / fleetEmbedded.mb_s),
        };
        fleets.push(fleet);
        o.log(`  ${fleet.wall_s.toFixed(2)} s, ${fleet.mb_s.toFixed(0)} MB/s in total (${fleet.ratio_embedded} x embedded)`);
        for (const f of files) await rm(f, { force: true });
        syncDisks();
      }
    }
    const fleet = fleets.find((f) => f.agents === o.agents) ?? null;

    const end = await server.daemon.memory();
    const index = await server.index();
    const agentMem = await Promise.all(agents.map((a) => a.memory()));
    loads.end = load1();
    const memory: ServerMemory = {
      idle_rss_bytes: idle.rss,
      // The highest of every reading: the kernel syncs a threaded process's RSS counters
      // lazily, so VmHWM read later can fall a few pages short of an earlier VmRSS (seen:
      // 160 KiB below the idle reading).
      peak_rss_after_series_bytes: Math.max(afterSeries.hwm, idle.rss),
      peak_rss_bytes: Math.max(end.hwm, afterSeries.hwm, idle.rss),
      index_entries: index.entries,
      index_memory_bytes: index.memoryBytes,
      agent_peak_rss_bytes: Math.max(...agentMem.map((m) => m.hwm)),
      agent_peak_rss_after_series_bytes: agentAfterSeries.hwm,
    };
    await Promise.all(agents.map((a) => a.stop()));
    await server.daemon.stop();

    const figures = computeFigures(days, fleet, memory, availableParallelism());
    return {
      benchmark: 'network',
      ...figures,
      targets: evaluateTargets(figures),
      server_memory: memory,
      fixed_cost: fixed,
      days,
      four_agents: fleet,
      fleets,
      fleet_embedded: fleetEmbedded,
      agents_mb_s: Object.fromEntries(fleets.map((f) => [String(f.agents), f.mb_s])),
      agents_ratio_embedded: Object.fromEntries(fleets.map((f) => [String(f.agents), f.ratio_embedded ?? null])),
      loads,
      settings: {
        vm_image: 'file: source on the agent, chunking vm-image (FastCDC avg 64 KiB); embedded: hoard backup --chunking vm-image FILE',
        db_dump: 'cmd:cat FILE on the agent, which gets the "file" preset (FastCDC avg 64 KiB); embedded: hoard backup --chunking file FILE',
        repository: 'unencrypted, the default compression (zstd:3), fs: storage on the same disk; server: default settings (uploads verified)',
        loopback: 'server on 127.0.0.1, plain HTTP',
        daemon_environment: `each daemon with its systemd unit's Environment= lines: agent ${JSON.stringify(unitEnvironment('hoard-agent'))}, server ${JSON.stringify(unitEnvironment('hoard-server'))}`,
      },
      data: {
        vm_image_bytes: o.vmImageBytes,
        db_dump_bytes_day0: o.dumpBytes,
        days: o.days,
        seed: o.seed,
        agents: o.agents,
        agent_image_bytes: o.agentImageBytes,
        agent_image_seeds: Object.fromEntries(fleetSizes(o.agents).map((n) => [String(n), Array.from({ length: n }, (_, i) => o.seed + 100 + 10 * n + i)])),
        embedded_image_seed: o.seed + 99,
      },
      version: hoardVersion(),
      machine: machine(),
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    killDaemons();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!o.keep) await rm(work, { recursive: true, force: true, maxRetries: 3 });
  }
}

function hoardVersion(): string {
  const rev = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const dirty = spawnSync('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return rev.status === 0 ? `${rev.stdout.trim()}${dirty.stdout?.trim() ? ' (uncommitted changes)' : ''}` : 'unknown';
}

export function renderNetworkReport(res: Record<string, unknown>): string {
  const days = res.days as NetworkDay[];
  const fleet = res.four_agents as FleetResult | null;
  const figures = computeFigures(days, fleet, res.server_memory as ServerMemory, (res.machine as { cores?: number } | undefined)?.cores);
  const parts = [renderDays(days)];
  const fixed = res.fixed_cost as FixedCost | undefined;
  if (fixed) parts.push(`Fixed cost, a 1 MiB file (best of 3)\n\n${renderFixed(fixed)}`);
  const fleets = (res.fleets as FleetResult[] | undefined) ?? (fleet ? [fleet] : []);
  if (fleets.length > 0) parts.push(`Agents at once\n\n${renderFleet(fleets, res.fleet_embedded as { mb_s: number } | null)}`);
  parts.push(renderSummary(figures, evaluateTargets(figures)));
  parts.push(`loads: ${JSON.stringify(res.loads)}\nhoard ${String(res.version)}; machine: ${JSON.stringify(res.machine)}; ${String(res.seconds)} s`);
  return parts.join('\n\n');
}

/** `bench network ...`: returns the exit code. */
export async function networkCommand(argv: string[], usage: string): Promise<number> {
  const args = parseNetworkArgs(argv);
  if ('error' in args) {
    process.stderr.write(`bench network: ${args.error}\n\n${usage}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(usage);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let res: Record<string, unknown>;
  try {
    res = await runNetworkBench({ ...sizesFor(args), dir: args.dir, keep: args.keep, log });
  } catch (err) {
    process.stderr.write(`bench network: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const out = { benchmark: 'network', quick: args.quick, ...res };
  if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(`${renderNetworkReport(out)}\n`);
  return 0;
}
