/**
 * Running a tool as a child process and measuring it: wall time (our own clock around the
 * child), peak RSS and CPU time (GNU time, which reads the child's rusage from wait4), and
 * the size of a directory tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { lstat, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GNU time (Debian package `time`); `bash`'s `time` keyword reports no memory. */
export const TIME_BIN = '/usr/bin/time';
/** Elapsed s, max RSS KiB, user s, system s. */
export const TIME_FORMAT = '%e %M %U %S';

export interface TimeFigures {
  elapsed_s: number;
  peak_rss_bytes: number;
  user_s: number;
  sys_s: number;
}

/**
 * Parses what `/usr/bin/time -f '%e %M %U %S' -o FILE` wrote. GNU time puts "Command exited
 * with non-zero status N" (or "Command terminated by signal N") on a line before the
 * format line, so the figures are taken from the last line that has the format's shape.
 * `%M` is in KiB (GNU time >= 1.8; 1.7 reported 4x too much, Debian ships 1.9).
 */
export function parseTimeOutput(text: string): TimeFigures {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const num = '(\\d+(?:\\.\\d+)?)';
  const shape = new RegExp(`^${num} (\\d+) ${num} ${num}$`);
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = shape.exec(lines[i]);
    if (m) {
      return { elapsed_s: Number(m[1]), peak_rss_bytes: Number(m[2]) * 1024, user_s: Number(m[3]), sys_s: Number(m[4]) };
    }
  }
  throw new Error(`no "%e %M %U %S" line in GNU time output: ${JSON.stringify(text.slice(0, 300))}`);
}

export interface Measured {
  /** Wall time from spawn to exit, by our clock (GNU time's %e has 10 ms resolution). */
  wall_s: number;
  peak_rss_bytes: number;
  /** User + system CPU seconds of the child (and of its waited-for children). */
  cpu_s: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep at most this many trailing bytes of stdout/stderr (default 1 MiB each). */
  keepOutput?: number;
}

/** Measured children still running (each leads its own process group: GNU time + the tool). */
const running = new Map<ChildProcess, string>();

/**
 * Sends `signal` to the process groups of the measured children still running and removes
 * their GNU time output files (for Ctrl-C: the caller exits right after).
 */
export function killRunning(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const [child, timeFile] of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
    rmSync(timeFile, { force: true });
  }
  running.clear();
}

/** Keeps the last `limit` bytes of a stream. */
class Tail {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
    while (this.size - this.parts[0].length >= this.limit) this.size -= this.parts.shift()!.length;
  }
  text(): string {
    const all = Buffer.concat(this.parts);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Runs `command args` under GNU time and returns its figures. Throws, with the command line
 * and the tail of its stderr, when the command fails.
 */
export async function runMeasured(command: string, args: string[], opts: RunOptions = {}): Promise<Measured> {
  const timeFile = join(tmpdir(), `hoard-bench-time-${process.pid}-${randomBytes(6).toString('hex')}`);
  const keep = opts.keepOutput ?? 1 << 20;
  const out = new Tail(keep);
  const err = new Tail(keep);
  const started = process.hrtime.bigint();
  const code = await new Promise<number | string>((resolve, reject) => {
    const child = spawn(TIME_BIN, ['-f', TIME_FORMAT, '-o', timeFile, command, ...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that an interrupted benchmark can stop GNU time and the
      // tool under it together (GNU time ignores SIGINT while it waits).
      detached: true,
    });
    running.set(child, timeFile);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.on('close', (c, signal) => {
      running.delete(child);
      resolve(c ?? signal ?? 'unknown');
    });
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  let timeText = '';
  try {
    timeText = await readFile(timeFile, 'utf8');
  } catch {
    // GNU time could not run the command at all; reported below.
  } finally {
    await rm(timeFile, { force: true });
  }
  const stderr = err.text();
  if (code !== 0) {
    const tail = `${stderr}\n${timeText}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${[command, ...args].join(' ')} failed (${typeof code === 'number' ? `exit ${code}` : code}):\n${tail}`);
  }
  const t = parseTimeOutput(timeText);
  return { wall_s: wall, peak_rss_bytes: t.peak_rss_bytes, cpu_s: t.user_s + t.sys_s, stdout: out.text(), stderr };
}

/** Sum of the sizes of the regular files under `path` (symlinks are not followed). */
export async function dirBytes(path: string): Promise<number> {
  const st = await lstat(path);
  if (st.isFile()) return st.size;
  if (!st.isDirectory()) return 0;
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) total += await dirBytes(p);
    else if (entry.isFile()) total += (await lstat(p)).size;
  }
  return total;
}

/** Regular files named `name` under `root` (depth-first), or `root` itself if it is that file. */
export async function findFiles(root: string, name: string): Promise<string[]> {
  const st = await lstat(root);
  if (st.isFile()) return [root];
  if (!st.isDirectory()) return [];
  const found: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const p = join(root, entry.name);
    if (entry.isDirectory()) found.push(...(await findFiles(p, name)));
    else if (entry.isFile() && entry.name === name) found.push(p);
  }
  return found;
}
