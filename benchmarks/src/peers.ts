/**
 * The three backup tools as the benchmark drives them: install checks for restic and
 * borg (Debian packages, installed with apt-get when missing and running as root), and one
 * runner per tool for init / backup of one file / restore of one snapshot.
 *
 * Every tool gets a local repository, compression on, and its caches under the work
 * directory (so runs do not share state with the user's own caches):
 * - hoard: `apps/cli/dist/main.js`, unencrypted unless `encrypt` (HOARD_PASSPHRASE);
 * - restic: repository format 2 (the one with compression), `--compression auto`; restic
 *   always encrypts (there is no unencrypted mode);
 * - borg 1.2: `--encryption none` unless `encrypt` (then repokey-blake2), `--compression lz4`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TIME_BIN, runMeasured, type Measured } from './measure.js';

export type ToolName = 'hoard' | 'restic' | 'borg';
export const ALL_TOOLS: readonly ToolName[] = ['hoard', 'restic', 'borg'];

/** Repository root (benchmarks/dist/peers.js -> ../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HOARD_CLI = join(REPO_ROOT, 'apps/cli/dist/main.js');

/** Passphrase for encrypted repositories: a benchmark, not a secret. */
const PASSPHRASE = 'hoard-bench';

export interface BackupResult extends Measured {
  /** Snapshot/archive to restore this backup by. */
  snapshot: string;
}

export interface BackupTool {
  readonly name: ToolName;
  readonly settings: string;
  version(): string;
  init(repo: string): Promise<void>;
  /**
   * Backs up `file` (always the same path for a job) as that day's snapshot. `kind` is the
   * data series ("vm-image" | "db-dump"); only hoard has per-source presets to pick with it.
   */
  backup(repo: string, job: string, file: string, day: number, kind: string): Promise<BackupResult>;
  /** Restores `snapshot` into the empty directory `target`; the file ends up somewhere under it. */
  restore(repo: string, job: string, snapshot: string, target: string, fileName: string): Promise<Measured>;
}

export interface ToolContext {
  /** Where caches and homes go (inside the benchmark's work directory). */
  stateDir: string;
  encrypt: boolean;
  /** The restic binary (default: `restic` on PATH). */
  resticBin?: string;
  /** Extra environment for every run (the S3 endpoint and keys). */
  env?: NodeJS.ProcessEnv;
}

export function createTool(name: 'hoard', ctx: ToolContext): Hoard;
export function createTool(name: ToolName, ctx: ToolContext): BackupTool;
export function createTool(name: ToolName, ctx: ToolContext): BackupTool {
  switch (name) {
    case 'hoard':
      return new Hoard(ctx);
    case 'restic':
      return new Restic(ctx);
    case 'borg':
      return new Borg(ctx);
  }
}

// ---------------------------------------------------------------------------------------
// Installation

interface Requirement {
  bin: string;
  pkg: string;
  why: string;
}

/** Absolute path of `bin` on PATH (or `bin` itself if absolute and executable), or null. */
export function findOnPath(bin: string, path = process.env.PATH ?? ''): string | null {
  const candidates = bin.includes('/')
    ? [bin]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

/** The Debian packages missing for `tools` (GNU time is always needed). */
export function missingPackages(tools: readonly ToolName[], find: (bin: string) => string | null = findOnPath): Requirement[] {
  const need: Requirement[] = [{ bin: TIME_BIN, pkg: 'time', why: 'peak RSS of each run' }];
  if (tools.includes('restic')) need.push({ bin: 'restic', pkg: 'restic', why: 'the restic runs' });
  if (tools.includes('borg')) need.push({ bin: 'borg', pkg: 'borgbackup', why: 'the borg runs' });
  return need.filter((r) => find(r.bin) === null);
}

function aptGet(args: string[], log: (l: string) => void): boolean {
  log(`  apt-get ${args.join(' ')}`);
  // apt's output goes to stderr, so that --json output on stdout stays one object. Another
  // apt or dpkg run (a test run installing its servers) holds the lock for minutes: wait.
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], {
    stdio: ['ignore', 2, 2],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

/**
 * `apt-get install -y --no-install-recommends PKGS` (after an `apt-get update` if the first
 * attempt fails); throws when it fails. The caller checks that it runs as root.
 */
export function aptInstall(pkgs: string[], log: (l: string) => void): void {
  if (findOnPath('apt-get') === null) throw new Error(`apt-get is not available to install ${pkgs.join(' ')}: install them by hand.`);
  log(`installing ${pkgs.join(' ')} ...`);
  const install = ['install', '-y', '--no-install-recommends', ...pkgs];
  if (!aptGet(install, log)) {
    if (!aptGet(['update'], log) || !aptGet(install, log)) {
      throw new Error(`apt-get install ${pkgs.join(' ')} failed (output above)`);
    }
  }
}

/**
 * Makes sure GNU time, restic and borg (as `tools` need) are installed: installs the missing
 * Debian packages with `apt-get install -y --no-install-recommends` (after an `apt-get update`
 * if the first attempt fails). Needs root; otherwise throws with the command to run.
 * (`pnpm bench backup` resolves restic itself, see restic-sid.ts, and leaves it out here.)
 */
export function ensureInstalled(tools: readonly ToolName[], log: (l: string) => void): void {
  const missing = missingPackages(tools);
  if (missing.length === 0) return;
  const pkgs = missing.map((r) => r.pkg);
  const list = missing.map((r) => `${r.pkg} (${r.bin}, for ${r.why})`).join(', ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error(
      `missing: ${list}.\n` +
        `The benchmark installs them itself only when it runs as root, and it is not running as root.\n` +
        `Install them with:\n  sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}\n` +
        `or run as root${tools.includes('hoard') ? ', or leave the peers out with --tools hoard' : ''}.`,
    );
  }
  if (findOnPath('apt-get') === null) {
    throw new Error(`missing: ${list}, and apt-get is not available to install them: install them by hand.`);
  }
  aptInstall(pkgs, log);
  const still = missingPackages(tools);
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.map((r) => r.bin).join(', ')}`);
}

/** Throws unless the hoard CLI is built and has the backup and restore commands. */
export function checkHoardCli(): void {
  const r = spawnSync(process.execPath, [HOARD_CLI, '--help'], { encoding: 'utf8' });
  const help = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const has = (cmd: string) => new RegExp(`^\\s+${cmd}\\b`, 'm').test(help);
  if (r.status !== 0 || !has('backup') || !has('restore') || !has('init')) {
    throw new Error(
      `the hoard CLI (${HOARD_CLI}) ${r.status !== 0 ? 'did not run (is it built? npx pnpm@10.34.9 build)' : 'has no init/backup/restore commands yet'}.\n` +
        'Compare the peers alone with --tools restic,borg.',
    );
  }
}

// ---------------------------------------------------------------------------------------
// Runners

function firstLines(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

function firstLine(command: string, args: string[]): string {
  return firstLines(command, args).split('\n')[0] || 'unknown';
}

/** Runs a setup command (not measured), stdout/stderr captured; throws on failure. */
async function run(command: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise(out)
        : reject(new Error(`${[command, ...args].join(' ')} failed (exit ${code}):\n${out.trim().split('\n').slice(-15).join('\n')}`)),
    );
  });
}

class Restic implements BackupTool {
  readonly name = 'restic' as const;
  readonly settings =
    'repository v2, --compression auto (zstd), AES-256 + Poly1305 (always encrypted), default chunker (avg 1 MiB); restore --sparse where supported (0.15+)';
  private readonly env: NodeJS.ProcessEnv;
  private readonly bin: string;
  private sparse: boolean | undefined;

  constructor(ctx: ToolContext) {
    this.bin = ctx.resticBin ?? 'restic';
    this.env = {
      ...process.env,
      ...ctx.env,
      RESTIC_PASSWORD: PASSPHRASE,
      RESTIC_CACHE_DIR: join(ctx.stateDir, 'restic-cache'),
      RESTIC_PROGRESS_FPS: undefined,
    };
  }

  version(): string {
    return firstLine(this.bin, ['version']);
  }

  async init(repo: string): Promise<void> {
    await run(this.bin, ['-r', repo, 'init', '--repository-version', '2'], { env: this.env });
  }

  async backup(repo: string, _job: string, file: string): Promise<BackupResult> {
    const m = await runMeasured(this.bin, ['-r', repo, 'backup', '--compression', 'auto', '--host', 'hoard-bench', '--json', basename(file)], {
      cwd: dirname(file),
      env: this.env,
      keepOutput: 64 * 1024,
    });
    return { ...m, snapshot: resticSnapshotId(m.stdout) };
  }

  async restore(repo: string, _job: string, snapshot: string, target: string): Promise<Measured> {
    // Restoring a VM image with holes for zero runs is what one would do; 0.14 cannot.
    this.sparse ??= /--sparse\b/.test(firstLines(this.bin, ['restore', '--help']));
    return runMeasured(this.bin, ['-r', repo, 'restore', snapshot, '--target', target, ...(this.sparse ? ['--sparse'] : [])], {
      env: this.env,
    });
  }
}

/** The snapshot id from `restic backup --json` output (its last line is the summary). */
export function resticSnapshotId(stdout: string): string {
  for (const line of stdout.trim().split('\n').reverse()) {
    try {
      const msg = JSON.parse(line) as { message_type?: string; snapshot_id?: string };
      if (msg.message_type === 'summary' && typeof msg.snapshot_id === 'string') return msg.snapshot_id;
    } catch {
      // a partial first line of the kept tail, or not JSON
    }
  }
  throw new Error(`no summary with snapshot_id in restic backup output: ${stdout.slice(-300)}`);
}

class Borg implements BackupTool {
  readonly name = 'borg' as const;
  readonly settings: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly encryption: string;

  constructor(ctx: ToolContext) {
    this.encryption = ctx.encrypt ? 'repokey-blake2' : 'none';
    this.settings = `--encryption ${this.encryption}, --compression lz4, default chunker (buzhash, avg 2 MiB); extract --sparse`;
    this.env = {
      ...process.env,
      ...ctx.env,
      BORG_BASE_DIR: join(ctx.stateDir, 'borg-home'),
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      BORG_PASSPHRASE: PASSPHRASE,
    };
  }

  version(): string {
    return firstLine('borg', ['--version']);
  }

  async init(repo: string): Promise<void> {
    await run('borg', ['init', '--encryption', this.encryption, repo], { env: this.env });
  }

  async backup(repo: string, _job: string, file: string, day: number): Promise<BackupResult> {
    const archive = `day-${day}`;
    const m = await runMeasured('borg', ['create', '--compression', 'lz4', `${repo}::${archive}`, basename(file)], {
      cwd: dirname(file),
      env: this.env,
    });
    return { ...m, snapshot: archive };
  }

  async restore(repo: string, _job: string, snapshot: string, target: string): Promise<Measured> {
    return runMeasured('borg', ['extract', '--sparse', `${repo}::${snapshot}`], { cwd: target, env: this.env });
  }
}

export class Hoard implements BackupTool {
  readonly name = 'hoard' as const;
  readonly settings: string;
  /** The environment every hoard command runs with (a media server on its repository too). */
  readonly env: NodeJS.ProcessEnv;
  private readonly encrypt: boolean;

  constructor(ctx: ToolContext) {
    this.encrypt = ctx.encrypt;
    this.settings = `${ctx.encrypt ? '--encrypt' : 'unencrypted'}, --chunking vm-image (avg 64 KiB) / db-dump (avg 16 KiB), the default compression of new repositories (zstd:3)`;
    this.env = { ...process.env, ...ctx.env, XDG_CACHE_HOME: join(ctx.stateDir, 'hoard-cache'), HOARD_PASSPHRASE: PASSPHRASE };
  }

  version(): string {
    let version = 'unknown';
    try {
      version = (JSON.parse(readFileSync(join(REPO_ROOT, 'apps/cli/package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // keep unknown
    }
    const rev = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
    const dirty = spawnSync('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
    const commit = rev.status === 0 ? ` (${rev.stdout.trim()}${dirty.stdout?.trim() ? ', uncommitted changes' : ''})` : '';
    return `hoard ${version}${commit}, node ${process.version}`;
  }

  async init(repo: string): Promise<void> {
    if (!repo.startsWith('s3://')) await mkdir(dirname(repo), { recursive: true });
    await run(process.execPath, [HOARD_CLI, 'init', '--repo', repo, ...(this.encrypt ? ['--encrypt'] : [])], { env: this.env });
  }

  async backup(repo: string, job: string, file: string, _day: number, kind: string): Promise<BackupResult> {
    // A file source defaults to the vm-image preset; name the preset so the dump gets its own
    // (what `pg_dump | hoard backup -` would pick).
    const args = [HOARD_CLI, 'backup', '--repo', repo, '--job', job, '--chunking', kind, file, '--json'];
    const m = await runMeasured(process.execPath, args, {
      cwd: dirname(file),
      env: this.env,
    });
    return { ...m, snapshot: hoardSnapshotId(m.stdout) };
  }

  async restore(repo: string, job: string, snapshot: string, target: string, fileName: string): Promise<Measured> {
    return runMeasured(process.execPath, [HOARD_CLI, 'restore', '--repo', repo, job, '--snapshot', snapshot, '--to', join(target, fileName)], {
      env: this.env,
    });
  }
}

/** The snapshot id from `hoard backup --json` (one JSON object; `snapshot` is the id or an object with `id`). */
export function hoardSnapshotId(stdout: string): string {
  const text = stdout.trim();
  const candidates = [text, ...text.split('\n').reverse()];
  for (const c of candidates) {
    try {
      const obj = JSON.parse(c) as { snapshot?: unknown };
      const s = obj.snapshot;
      if (typeof s === 'string') return s;
      if (s !== null && typeof s === 'object' && typeof (s as { id?: unknown }).id === 'string') return (s as { id: string }).id;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`no "snapshot" in hoard backup --json output: ${text.slice(0, 300)}`);
}
