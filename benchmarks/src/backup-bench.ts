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
 *   SHA-256 of the generated file (not timed);
 * - hoard's restore again through a media server on loopback serving the same repository
 *   (`hoard server start --storage fs:REPO`, `hoard restore --server`);
 * - the last VM-image day backed up into one Ceph RGW (one bucket per tool, not part of
 *   the figures) and restored from it by hoard and restic (rgw.ts);
 * - the machine's floors in the same run: lz4 decode and BLAKE3 on 64 KiB blocks of the
 *   generated files, page-cache write rate (floors.ts).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, statfs } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dumpSeries, vmImageSeries } from '@hoard/bench-data';
import type { SourceKind as ChunkingKind } from '@hoard/chunker';
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
  type ServerRestoreRun,
} from './backup-report.js';
import { Server, killDaemons } from './daemon.js';
import { combineFloors, measureSeriesFloors, measureWrites, type Floors, type SeriesFloors } from './floors.js';
import { machine } from './machine.js';
import { dirBytes, findFiles, killRunning, runMeasured, type Measured } from './measure.js';
import { ALL_TOOLS, HOARD_CLI, checkHoardCli, createTool, ensureInstalled, type BackupTool, type Hoard, type ToolName } from './peers.js';
import { pgbenchDumpSeries, usrTarSeries, type BenchSeries, type RealSeries } from './real-series.js';
import { resolveRestic, type ResticBinary } from './restic-sid.js';
import { ensureRgwInstalled, startRgw } from './rgw.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

export interface BackupBenchOptions {
  vmImageBytes: number;
  dumpBytes: number;
  usrBytes: number;
  pgbenchScale: number;
  pgbenchTransactions: number;
  days: number;
  seed: number;
  tools: ToolName[];
  encrypt: boolean;
  /** Parent of the work directory (default: the OS temp dir). */
  dir?: string;
  keep: boolean;
  /** A restic binary to run instead of Debian unstable's (--restic PATH). */
  restic?: string;
  /** Restore from a Ceph RGW too (off with --no-s3). */
  s3: boolean;
  /** Which series run: the generated ones, the real-data ones (real-series.ts), or both. */
  series: SeriesChoice;
  log: (line: string) => void;
}

export type SeriesChoice = 'all' | 'generated' | 'real';
export const SERIES_CHOICES: readonly SeriesChoice[] = ['all', 'generated', 'real'];

/** The series' sizes. usrBytes: bytes of /usr in usr_tar; pgbenchScale: `pgbench -i -s` (about 10 MiB of dump per unit); pgbenchTransactions: between two days. */
type Sizes = Pick<BackupBenchOptions, 'vmImageBytes' | 'dumpBytes' | 'days' | 'seed' | 'usrBytes' | 'pgbenchScale' | 'pgbenchTransactions'>;

export const fullBackupRun: Sizes = {
  vmImageBytes: 2 * GiB,
  dumpBytes: 512 * MiB,
  days: 5,
  seed: 1,
  usrBytes: 384 * MiB,
  pgbenchScale: 30,
  pgbenchTransactions: 5000,
};
export const quickBackupRun: Sizes = {
  vmImageBytes: 128 * MiB,
  dumpBytes: 32 * MiB,
  days: 3,
  seed: 1,
  usrBytes: 48 * MiB,
  pgbenchScale: 3,
  pgbenchTransactions: 1000,
};

export interface BackupArgs {
  json: boolean;
  quick: boolean;
  help: boolean;
  tools: ToolName[];
  encrypt: boolean;
  dir?: string;
  keep: boolean;
  restic?: string;
  s3: boolean;
  series: SeriesChoice;
}

/** Parses the arguments after `backup`. Returns an error message for bad input. */
export function parseBackupArgs(argv: string[]): BackupArgs | { error: string } {
  const a: BackupArgs = { json: false, quick: false, help: false, tools: [...ALL_TOOLS], encrypt: false, keep: false, s3: true, series: 'all' };
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
        const tools = v
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
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
      case '--restic': {
        const v = value();
        if (!v) return { error: '--restic needs the path of a restic binary, e.g. --restic /usr/bin/restic' };
        a.restic = v;
        break;
      }
      case '--series': {
        const v = value();
        if (!v || !(SERIES_CHOICES as readonly string[]).includes(v))
          return { error: `--series takes one of ${SERIES_CHOICES.join(', ')}; got ${v ?? 'nothing'}` };
        a.series = v as SeriesChoice;
        break;
      }
      case '--no-s3':
        if (eq > 0) return { error: 'option --no-s3 takes no value' };
        a.s3 = false;
        break;
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
  series: BenchSeries;
  /** A real-data series (real-series.ts): its figures are reported apart from the generated ones. */
  real?: boolean;
}

/** Writes day `day` of `series` to `path` (beside it, then renamed over it); returns its size and SHA-256. */
export async function materialize(series: BenchSeries, day: number, path: string): Promise<{ bytes: number; sha256: string }> {
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

/** Largest sample of each series' file the lz4/BLAKE3 floors use. */
const FLOOR_SAMPLE_BYTES = 256 * MiB;

/** What runs after a series' last-day restores, while its last file is still on disk. */
interface AfterSeries {
  spec: SeriesSpec;
  file: string;
  last: { bytes: number; sha256: string };
  snapshots: Map<ToolName, string>;
  repoOf: (t: BackupTool) => string;
}

/** Restores into an empty directory with `restore`, checks the file against `last` (not timed), then removes it. */
async function timedRestore(
  what: string,
  target: string,
  fileName: string,
  last: { bytes: number; sha256: string },
  restore: (target: string) => Promise<Measured>,
): Promise<Measured> {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const m = await restore(target);
  const found = await findFiles(target, fileName);
  if (found.length !== 1) throw new Error(`${what}: expected one ${fileName} under ${target}, found ${found.length}`);
  const got = await readThrough(found[0]);
  if (got.bytes !== last.bytes || got.sha256 !== last.sha256) {
    throw new Error(`${what} differs from the source (${got.bytes} vs ${last.bytes} bytes)`);
  }
  await rm(target, { recursive: true, force: true });
  syncDisks();
  return m;
}

function restoreRun(tool: ToolName, day: number, bytes: number, m: Measured): RestoreRun {
  return { day, tool, bytes, restore_s: r3(m.wall_s), restore_mb_s: mbps(bytes, m.wall_s), peak_rss_bytes: m.peak_rss_bytes, cpu_s: r3(m.cpu_s) };
}

async function runSeries(
  spec: SeriesSpec,
  tools: BackupTool[],
  work: string,
  log: (l: string) => void,
  after: (a: AfterSeries) => Promise<Partial<SeriesResult>>,
): Promise<SeriesResult> {
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
  if (spec.real) {
    result.real = true;
    result.describe = (series as RealSeries).describe;
  }
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
    const m = await timedRestore(`${t.name} restore of ${spec.name} day ${day}`, target, fileName, last, (to) =>
      t.restore(repoOf(t), job, snapshots.get(t.name)!, to, fileName),
    );
    const run = restoreRun(t.name, day, last.bytes, m);
    result.restores.push(run);
    log(`  ${t.name.padEnd(6)} restore ${run.restore_s.toFixed(2)} s (${run.restore_mb_s.toFixed(0)} MB/s), verified`);
  }
  Object.assign(result, await after({ spec, file, last, snapshots, repoOf }));
  await rm(srcDir, { recursive: true, force: true });
  return result;
}

/**
 * hoard's restore of the last day through a media server on loopback that serves the
 * series' own hoard repository (`hoard server start --storage fs:REPO`): the same snapshot
 * the embedded restore just read, `hoard restore --server URL --token T JOB --snapshot ID`.
 */
async function restoreThroughServer(hoard: Hoard, a: AfterSeries, work: string, log: (l: string) => void): Promise<ServerRestoreRun> {
  const { spec, last } = a;
  const day = spec.series.days - 1;
  const server = await Server.start(a.repoOf(hoard), join(work, 'server-data', spec.name), hoard.env);
  try {
    const before = await server.daemon.cpuSeconds();
    const m = await timedRestore(
      `hoard restore --server of ${spec.name} day ${day}`,
      join(work, 'restore', `hoard-server-${spec.name}`),
      spec.fileName,
      last,
      (to) =>
        runMeasured(
          process.execPath,
          [
            HOARD_CLI,
            'restore',
            '--server',
            server.url,
            '--token',
            server.adminToken,
            spec.job,
            '--snapshot',
            a.snapshots.get('hoard')!,
            '--to',
            join(to, spec.fileName),
          ],
          { env: hoard.env },
        ),
    );
    // Read after the check: the server is idle again, its CPU since `before` is the restore's.
    const cpu = await server.daemon.cpuSeconds();
    const mem = await server.daemon.memory();
    const run: ServerRestoreRun = { ...restoreRun('hoard', day, last.bytes, m), server_cpu_s: r3(cpu.self - before.self), server_peak_rss_bytes: mem.hwm };
    log(`  hoard  restore through the server ${run.restore_s.toFixed(2)} s (${run.restore_mb_s.toFixed(0)} MB/s), server CPU ${run.server_cpu_s} s, verified`);
    return run;
  } finally {
    await server.daemon.stop();
  }
}

/**
 * hoard and restic restoring the last VM-image day from the same Ceph RGW: each backs the
 * file up into its own bucket first (recorded, not a figure), then restores it (timed,
 * checked). Any failure (RGW not installed or not starting, a tool failing against it)
 * gives status "failed" with the reason, not a failed benchmark.
 */
async function runS3(
  a: AfterSeries,
  o: { encrypt: boolean; resticBin: string; stateDir: string; work: string; unavailable: string | null; log: (l: string) => void },
): Promise<S3Result> {
  const result: S3Result = { status: 'failed', reason: null, series: a.spec.name, bytes: a.last.bytes, backups: [], restores: [] };
  if (o.unavailable !== null) return { ...result, reason: o.unavailable };
  const { spec, file, last } = a;
  const day = spec.series.days - 1;
  let rgw: Awaited<ReturnType<typeof startRgw>> | undefined;
  try {
    const t0 = Date.now();
    rgw = await startRgw();
    o.log(`S3: Ceph RGW at ${rgw.endpoint}, started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const env: NodeJS.ProcessEnv = {
      AWS_ACCESS_KEY_ID: rgw.accessKeyId,
      AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_REGION: 'us-east-1',
      HOARD_S3_ENDPOINT: rgw.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const stateDir = join(o.stateDir, 's3');
    await mkdir(stateDir, { recursive: true });
    const tools: Array<{ tool: BackupTool; repo: string }> = [
      { tool: createTool('hoard', { stateDir, encrypt: o.encrypt, env }), repo: `s3://hoard-${spec.job}` },
      { tool: createTool('restic', { stateDir, encrypt: o.encrypt, env, resticBin: o.resticBin }), repo: `s3:${rgw.endpoint}/restic-${spec.job}` },
    ];
    const snapshots = new Map<ToolName, string>();
    for (const { tool, repo } of tools) {
      await tool.init(repo);
      await readThrough(file);
      const b = await tool.backup(repo, spec.job, file, day, spec.series.name);
      snapshots.set(tool.name, b.snapshot);
      result.backups.push({ tool: tool.name, backup_s: r3(b.wall_s), peak_rss_bytes: b.peak_rss_bytes, cpu_s: r3(b.cpu_s) });
      syncDisks();
      o.log(`  ${tool.name.padEnd(6)} backup into S3 ${b.wall_s.toFixed(2)} s (not a figure)`);
    }
    for (const { tool, repo } of tools) {
      const m = await timedRestore(
        `${tool.name} restore from S3 of ${spec.name} day ${day}`,
        join(o.work, 'restore', `${tool.name}-s3-${spec.name}`),
        spec.fileName,
        last,
        (to) => tool.restore(repo, spec.job, snapshots.get(tool.name)!, to, spec.fileName),
      );
      const run = restoreRun(tool.name, day, last.bytes, m);
      result.restores.push(run);
      o.log(`  ${tool.name.padEnd(6)} restore from S3 ${run.restore_s.toFixed(2)} s (${run.restore_mb_s.toFixed(0)} MB/s), verified`);
    }
    result.status = 'measured';
  } catch (err) {
    result.reason = (err as Error).message.split('\n').slice(0, 6).join('\n').slice(0, 1000);
    o.log(`S3 restores not measured: ${result.reason}`);
  } finally {
    await rgw?.stop();
  }
  return result;
}

/**
 * Rough disk need: the day's file twice (while the next one is written), a restore, and
 * per tool up to ~1.5 days of repository (borg on the default run: 1.4x the image); the
 * real-data series likewise, plus the pgbench database (about twice its dump).
 */
export function diskNeed(o: Sizes & { tools: readonly ToolName[] }): number {
  const dump = o.dumpBytes * 1.1;
  const pg = o.pgbenchScale * 12 * MiB;
  const real = 2 * pg + o.tools.length * 1.5 * (o.usrBytes + pg);
  return Math.round(3 * Math.max(o.vmImageBytes, dump) + o.tools.length * 1.5 * (o.vmImageBytes + dump) + real + GiB);
}

/** Why the S3 restores are not measured before anything runs, or null to try them. */
function s3SkipReason(o: BackupBenchOptions): string | null {
  if (!o.s3) return '--no-s3';
  const left = (['hoard', 'restic'] as const).filter((t) => !o.tools.includes(t));
  return left.length > 0 ? `${left.join(' and ')} left out with --tools` : null;
}

export async function runBackupBench(o: BackupBenchOptions): Promise<Record<string, unknown>> {
  const started = Date.now();
  // Others may run tests on this machine at the same time: the load is part of the record.
  const loadAtStart = loadavg().map((l) => Number(l.toFixed(2)));
  o.log(`load average at start: ${loadAtStart.join(' ')}`);
  if (o.tools.includes('hoard')) checkHoardCli();
  // restic is Debian unstable's (or --restic PATH), not the machine's package.
  ensureInstalled(
    o.tools.filter((t) => t !== 'restic'),
    o.log,
  );
  const restic: ResticBinary | null = o.tools.includes('restic') ? await resolveRestic(o.restic, o.log) : null;
  const s3Skip = s3SkipReason(o);
  const rgwUnavailable = s3Skip === null ? ensureRgwInstalled(o.log) : null;
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
  const tools = o.tools.map((name) => createTool(name, { stateDir, encrypt: o.encrypt, resticBin: restic?.path }));
  const hoard = tools.find((t): t is Hoard => t.name === 'hoard');
  const versions = Object.fromEntries(tools.map((t) => [t.name, t.version()]));
  for (const t of tools) o.log(`${t.name}: ${versions[t.name]}; ${t.settings}`);
  if (restic) o.log(`restic binary: ${restic.path} (${restic.source})`);
  const specs: SeriesSpec[] =
    o.series === 'real'
      ? []
      : [
          { name: 'vm_image', job: 'vm', fileName: 'vm.img', series: vmImageSeries({ seed: o.seed, imageBytes: o.vmImageBytes, days: o.days }) },
          { name: 'db_dump', job: 'dump', fileName: 'dump.sql', series: dumpSeries({ seed: o.seed, approxBytes: o.dumpBytes, days: o.days }) },
        ];
  const realSeries: RealSeries[] = [];
  const series: SeriesResult[] = [];
  const floorsBySeries: Record<string, SeriesFloors> = {};
  let s3: S3Result = { status: 'skipped', reason: s3Skip, series: 'vm_image', bytes: null, backups: [], restores: [] };
  let writes: { pageCacheMbS: number; durableMbS: number } | null = null;
  // A full run would leave up to ~12 GiB behind if interrupted: clean up on Ctrl-C / SIGTERM too.
  // (The RGW's own watchdog stops it once this process is gone.)
  const onSignal = (signal: NodeJS.Signals) => {
    killRunning('SIGTERM');
    killDaemons();
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
    if (o.series !== 'generated') {
      const usr = await usrTarSeries({ budgetBytes: o.usrBytes, days: o.days, seed: o.seed });
      realSeries.push(usr);
      specs.push({ name: 'usr_tar', job: 'usr', fileName: 'usr.tar', series: usr, real: true });
      o.log(`usr_tar: ${usr.describe}`);
      const pg = await pgbenchDumpSeries({ scale: o.pgbenchScale, transactions: o.pgbenchTransactions, days: o.days, seed: o.seed, log: o.log });
      realSeries.push(pg);
      specs.push({ name: 'pgbench_dump', job: 'pgbench', fileName: 'pgbench.dump', series: pg, real: true });
      o.log(`pgbench_dump: ${pg.describe}`);
    }
    for (const spec of specs) {
      const after = async (a: AfterSeries): Promise<Partial<SeriesResult>> => {
        const extra: Partial<SeriesResult> = {};
        // The real-data series are about stored bytes and backup time: the restore through a
        // media server is measured on the generated series only.
        if (hoard && !spec.real) extra.server_restores = [await restoreThroughServer(hoard, a, work, o.log)];
        if (spec.name === 'vm_image' && s3Skip === null && restic) {
          s3 = await runS3(a, { encrypt: o.encrypt, resticBin: restic.path, stateDir, work, unavailable: rgwUnavailable, log: o.log });
        }
        floorsBySeries[spec.name] = await measureSeriesFloors(a.file, FLOOR_SAMPLE_BYTES, spec.series.name as ChunkingKind);
        return extra;
      };
      series.push(await runSeries(spec, tools, work, o.log, after));
    }
    writes = measureWrites(work);
    syncDisks();
  } finally {
    for (const r of realSeries) await r.close().catch((err: Error) => o.log(`could not stop a real-data series: ${err.message}`));
    killDaemons();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!o.keep) await rm(work, { recursive: true, force: true });
  }
  const floors = combineFloors(floorsBySeries, writes?.pageCacheMbS ?? null, { durableWriteMbS: writes?.durableMbS ?? null, cores: availableParallelism() });
  o.log(
    `floors: lz4 decode ${floors.lz4_decode_mb_s} MB/s, BLAKE3 ${floors.blake3_mb_s} MB/s, page-cache write ${floors.page_cache_write_mb_s} MB/s, durable write ${floors.durable_write_mb_s} MB/s`,
  );
  const ratios = computeRatios(series, s3, floors);
  return {
    benchmark: 'backup',
    tools: o.tools,
    ...ratios,
    targets: evaluateTargets(ratios),
    floors,
    s3,
    restic: restic && { version: restic.version, version_line: restic.versionLine, source: restic.source },
    versions,
    settings: {
      ...Object.fromEntries(tools.map((t) => [t.name, t.settings])),
      server:
        'hoard server start --storage fs:<the series hoard repository> --listen 127.0.0.1:0 (plain HTTP), then hoard restore --server URL --token T JOB --snapshot ID --to PATH',
      s3: 'Ceph RGW (test-support/ceph-rgw.sh: memstore OSD, objects in RAM) on 127.0.0.1; hoard: s3://hoard-vm with HOARD_S3_ENDPOINT; restic: -r s3:http://127.0.0.1:PORT/restic-vm; the last VM-image day',
    },
    data: {
      series: o.series,
      vm_image_bytes: o.vmImageBytes,
      db_dump_bytes_day0: o.dumpBytes,
      usr_tar_bytes: o.usrBytes,
      pgbench_scale: o.pgbenchScale,
      pgbench_transactions_per_day: o.pgbenchTransactions,
      days: o.days,
      seed: o.seed,
    },
    series: Object.fromEntries(series.map((s) => [s.name, s])),
    machine: machine(),
    load_average: { start: loadAtStart, end: loadavg().map((l) => Number(l.toFixed(2))) },
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

export function renderBackupReport(res: Record<string, unknown>): string {
  const series = Object.values(res.series as Record<string, SeriesResult>);
  const s3 = (res.s3 as S3Result | undefined) ?? null;
  const ratios = computeRatios(series, s3, res.floors as Floors | undefined);
  const parts = series.map(renderSeries);
  parts.push(renderRestores(series, s3));
  if (res.floors) parts.push(renderFloors(res.floors as Floors));
  parts.push(renderSummary(ratios, evaluateTargets(ratios)));
  const restic = res.restic as { version: string; source: string } | null | undefined;
  parts.push(
    `versions: ${JSON.stringify(res.versions)}${restic ? `\nrestic ${restic.version}: ${restic.source}` : ''}\nmachine: ${JSON.stringify(res.machine)}; ${String(res.seconds)} s`,
  );
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
    res = await runBackupBench({
      ...sizes,
      tools: args.tools,
      encrypt: args.encrypt,
      dir: args.dir,
      keep: args.keep,
      restic: args.restic,
      s3: args.s3,
      series: args.series,
      log,
    });
  } catch (err) {
    process.stderr.write(`bench backup: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const out = { benchmark: 'backup', quick: args.quick, encrypt: args.encrypt, ...res };
  if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(`${renderBackupReport(out)}\n`);
  return 0;
}
