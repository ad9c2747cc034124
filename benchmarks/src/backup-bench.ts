/**
 * `pnpm bench backup`: hoard vs restic vs borg, end to end, on the generated VM-image and
 * SQL-dump series: wall time of each day's backup, repository size after each day, peak
 * RSS, and the restore time of the last day.
 *
 * Method (see benchmarks/README.md):
 * - each day's file is generated to disk before any tool runs (never timed), always at
 *   the same path (written beside it, then renamed over it), so every tool sees one file
 *   that changed, as a daily VM image or dump is;
 * - before each timed run the file is read once, so every tool starts with it in the
 *   page cache (dropping the cache needs privileges and a quiet machine; warming it is
 *   reproducible); `sync` runs between tools, outside the timing;
 * - each tool runs as a child process under GNU time: wall time by our clock, peak RSS and
 *   CPU from the child's rusage;
 * - stored bytes = sum of the file sizes in the tool's repository directory;
 * - restore: the last day's snapshot into an empty directory, then checked against the
 *   SHA-256 of the generated file (not timed).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dumpSeries, vmImageSeries, type DataSeries } from '@hoard/bench-data';
import {
  computeRatios,
  evaluateTargets,
  renderSeries,
  renderSummary,
  type BackupRun,
  type RestoreRun,
  type SeriesResult,
} from './backup-report.js';
import { machine } from './machine.js';
import { dirBytes, findFiles, killRunning } from './measure.js';
import { ALL_TOOLS, checkHoardCli, createTool, ensureInstalled, type BackupTool, type ToolName } from './peers.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

export interface BackupBenchOptions {
  vmImageBytes: number;
  dumpBytes: number;
  days: number;
  seed: number;
  tools: ToolName[];
  encrypt: boolean;
  /** Parent of the work directory (default: the OS temp dir). */
  dir?: string;
  keep: boolean;
  log: (line: string) => void;
}

type Sizes = Pick<BackupBenchOptions, 'vmImageBytes' | 'dumpBytes' | 'days' | 'seed'>;

export const fullBackupRun: Sizes = { vmImageBytes: 2 * GiB, dumpBytes: 512 * MiB, days: 5, seed: 1 };
export const quickBackupRun: Sizes = { vmImageBytes: 128 * MiB, dumpBytes: 32 * MiB, days: 3, seed: 1 };

export interface BackupArgs {
  json: boolean;
  quick: boolean;
  help: boolean;
  tools: ToolName[];
  encrypt: boolean;
  dir?: string;
  keep: boolean;
}

/** Parses the arguments after `backup`. Returns an error message for bad input. */
export function parseBackupArgs(argv: string[]): BackupArgs | { error: string } {
  const a: BackupArgs = { json: false, quick: false, help: false, tools: [...ALL_TOOLS], encrypt: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '--json':
      case '--quick':
      case '--help':
      case '--encrypt':
      case '--keep':
        if (eq > 0) return { error: `option ${name} takes no value` };
        a[name.slice(2) as 'json' | 'quick' | 'help' | 'encrypt' | 'keep'] = true;
        break;
      case '--tools': {
        const v = value();
        if (!v) return { error: '--tools needs a list, e.g. --tools restic,borg' };
        const tools = v.split(',').map((t) => t.trim()).filter(Boolean);
        const bad = tools.find((t) => !(ALL_TOOLS as readonly string[]).includes(t));
        if (bad !== undefined) return { error: `unknown tool "${bad}" (tools: ${ALL_TOOLS.join(', ')})` };
        if (tools.length === 0) return { error: '--tools needs at least one tool' };
        // Keep the canonical order, drop duplicates.
        a.tools = ALL_TOOLS.filter((t) => tools.includes(t));
        break;
      }
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

interface SeriesSpec {
  name: string;
  job: string;
  fileName: string;
  series: DataSeries;
}

/** Writes day `day` of `series` to `path` (beside it, then renamed over it); returns its size and SHA-256. */
export async function materialize(series: DataSeries, day: number, path: string): Promise<{ bytes: number; sha256: string }> {
  const tmp = `${path}.tmp`;
  const hash = createHash('sha256');
  const fh = await open(tmp, 'w');
  let bytes = 0;
  try {
    for await (const piece of series.day(day, 4 * MiB)) {
      hash.update(piece);
      await fh.write(piece);
      bytes += piece.length;
    }
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  return { bytes, sha256: hash.digest('hex') };
}

/** Reads the file once (into the page cache) and returns its SHA-256. */
export async function readThrough(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(8 * MiB);
  let bytes = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

export function syncDisks(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

const mbps = (bytes: number, s: number) => Number((bytes / s / 1e6).toFixed(1));
const r3 = (v: number) => Number(v.toFixed(3));

async function runSeries(spec: SeriesSpec, tools: BackupTool[], work: string, log: (l: string) => void): Promise<SeriesResult> {
  const { series, job, fileName } = spec;
  const srcDir = join(work, 'src', spec.name);
  const file = join(srcDir, fileName);
  await mkdir(srcDir, { recursive: true });
  const repoOf = (t: BackupTool) => join(work, 'repos', `${t.name}-${spec.name}`);
  for (const t of tools) {
    await mkdir(join(work, 'repos'), { recursive: true });
    await t.init(repoOf(t));
  }
  const result: SeriesResult = { name: spec.name, job, days: series.days, day_bytes: [], backups: [], restores: [] };
  const snapshots = new Map<ToolName, string>();
  let last = { bytes: 0, sha256: '' };
  for (let day = 0; day < series.days; day++) {
    const t0 = Date.now();
    last = await materialize(series, day, file);
    result.day_bytes.push(last.bytes);
    syncDisks();
    log(`${spec.name} day ${day}: ${(last.bytes / MiB).toFixed(0)} MiB generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const t of tools) {
      await readThrough(file);
      const b = await t.backup(repoOf(t), job, file, day, series.name);
      snapshots.set(t.name, b.snapshot);
      const run: BackupRun = {
        day,
        tool: t.name,
        bytes: last.bytes,
        backup_s: r3(b.wall_s),
        backup_mb_s: mbps(last.bytes, b.wall_s),
        stored_bytes: await dirBytes(repoOf(t)),
        peak_rss_bytes: b.peak_rss_bytes,
        cpu_s: r3(b.cpu_s),
      };
      result.backups.push(run);
      syncDisks();
      log(
        `  ${t.name.padEnd(6)} backup ${run.backup_s.toFixed(2)} s (${run.backup_mb_s.toFixed(0)} MB/s), ` +
          `repo ${(run.stored_bytes / MiB).toFixed(1)} MiB, peak RSS ${(run.peak_rss_bytes / MiB).toFixed(0)} MiB`,
      );
    }
  }
  const day = series.days - 1;
  for (const t of tools) {
    const target = join(work, 'restore', `${t.name}-${spec.name}`);
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    const m = await t.restore(repoOf(t), job, snapshots.get(t.name)!, target, fileName);
    const found = await findFiles(target, fileName);
    if (found.length !== 1) throw new Error(`${t.name} restore: expected one ${fileName} under ${target}, found ${found.length}`);
    const got = await readThrough(found[0]);
    if (got.bytes !== last.bytes || got.sha256 !== last.sha256) {
      throw new Error(`${t.name} restore of ${spec.name} day ${day} differs from the source (${got.bytes} vs ${last.bytes} bytes)`);
    }
    const run: RestoreRun = {
      day,
      tool: t.name,
      bytes: last.bytes,
      restore_s: r3(m.wall_s),
      restore_mb_s: mbps(last.bytes, m.wall_s),
      peak_rss_bytes: m.peak_rss_bytes,
      cpu_s: r3(m.cpu_s),
    };
    result.restores.push(run);
    await rm(target, { recursive: true, force: true });
    syncDisks();
    log(`  ${t.name.padEnd(6)} restore ${run.restore_s.toFixed(2)} s (${run.restore_mb_s.toFixed(0)} MB/s), verified`);
  }
  await rm(srcDir, { recursive: true, force: true });
  return result;
}

/**
 * Rough disk need: the day's file twice (while the next one is written), a restore, and
 * per tool up to ~1.5 days of repository (borg on the default run: 1.4x the image).
 */
export function diskNeed(o: Sizes & { tools: readonly ToolName[] }): number {
  const dump = o.dumpBytes * 1.1;
  return Math.round(3 * Math.max(o.vmImageBytes, dump) + o.tools.length * 1.5 * (o.vmImageBytes + dump));
}

export async function runBackupBench(o: BackupBenchOptions): Promise<Record<string, unknown>> {
  const started = Date.now();
  if (o.tools.includes('hoard')) checkHoardCli();
  ensureInstalled(o.tools, o.log);
  const parent = resolve(o.dir ?? tmpdir());
  await mkdir(parent, { recursive: true });
  const fsStat = await statfs(parent);
  const free = fsStat.bavail * fsStat.bsize;
  const need = diskNeed(o);
  if (free < need) o.log(`warning: ${(free / GiB).toFixed(1)} GiB free in ${parent}, the run needs about ${(need / GiB).toFixed(1)} GiB (use --dir)`);
  const work = await mkdtemp(join(parent, 'hoard-bench-backup-'));
  o.log(`work directory ${work}${o.keep ? ' (kept)' : ''}`);
  const stateDir = join(work, 'state');
  await mkdir(stateDir, { recursive: true });
  const tools = o.tools.map((name) => createTool(name, { stateDir, encrypt: o.encrypt }));
  const versions = Object.fromEntries(tools.map((t) => [t.name, t.version()]));
  for (const t of tools) o.log(`${t.name}: ${versions[t.name]}; ${t.settings}`);
  const specs: SeriesSpec[] = [
    { name: 'vm_image', job: 'vm', fileName: 'vm.img', series: vmImageSeries({ seed: o.seed, imageBytes: o.vmImageBytes, days: o.days }) },
    { name: 'db_dump', job: 'dump', fileName: 'dump.sql', series: dumpSeries({ seed: o.seed, approxBytes: o.dumpBytes, days: o.days }) },
  ];
  const series: SeriesResult[] = [];
  // A full run would leave up to ~12 GiB behind if interrupted: clean up on Ctrl-C / SIGTERM too.
  const onSignal = (signal: NodeJS.Signals) => {
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
  try {
    for (const spec of specs) series.push(await runSeries(spec, tools, work, o.log));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!o.keep) await rm(work, { recursive: true, force: true });
  }
  const ratios = computeRatios(series);
  return {
    benchmark: 'backup',
    tools: o.tools,
    ...ratios,
    targets: evaluateTargets(ratios),
    versions,
    settings: Object.fromEntries(tools.map((t) => [t.name, t.settings])),
    data: { vm_image_bytes: o.vmImageBytes, db_dump_bytes_day0: o.dumpBytes, days: o.days, seed: o.seed },
    series: Object.fromEntries(series.map((s) => [s.name, s])),
    machine: machine(),
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

export function renderBackupReport(res: Record<string, unknown>): string {
  const series = Object.values(res.series as Record<string, SeriesResult>);
  const ratios = computeRatios(series);
  const parts = series.map(renderSeries);
  parts.push(renderSummary(ratios, evaluateTargets(ratios)));
  parts.push(`versions: ${JSON.stringify(res.versions)}\nmachine: ${JSON.stringify(res.machine)}; ${String(res.seconds)} s`);
  return parts.join('\n\n');
}

/** `bench backup ...`: returns the exit code. */
export async function backupCommand(argv: string[], usage: string): Promise<number> {
  const args = parseBackupArgs(argv);
  if ('error' in args) {
    process.stderr.write(`bench backup: ${args.error}\n\n${usage}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(usage);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const sizes = args.quick ? quickBackupRun : fullBackupRun;
  let res: Record<string, unknown>;
  try {
    res = await runBackupBench({ ...sizes, tools: args.tools, encrypt: args.encrypt, dir: args.dir, keep: args.keep, log });
  } catch (err) {
    process.stderr.write(`bench backup: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const out = { benchmark: 'backup', quick: args.quick, encrypt: args.encrypt, ...res };
  if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(`${renderBackupReport(out)}\n`);
  return 0;
}
