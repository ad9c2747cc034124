/**
 * How much of its host an agent may take (docs/operations.md, "Agent footprint"): an
 * agent runs on hypervisor and database hosts, where every CPU second and disk read it
 * uses is taken from the VMs and databases it protects.
 *
 * - `nice` (0-19): the agent's CPU priority. Set on every thread of the process with
 *   setpriority (os.setPriority on each task id: on Linux a priority is per thread);
 *   threads and programs started afterwards (chunker and encode workers, pg_dump,
 *   mysqldump, qemu-img, qemu-nbd, hooks) inherit it, since fork and clone copy it.
 * - `io` (idle, or best-effort 0-7): the I/O scheduling class. Node has no ioprio_set,
 *   so the agent runs util-linux's `ionice -p` on its own task ids once; children inherit
 *   the class the same way. It only has an effect with an I/O scheduler that honours
 *   classes (bfq, cfq); mq-deadline and none ignore it.
 * - `workers`: chunker worker threads and encode worker threads (one each on a busy host).
 * - `readBytesPerSecond`: a cap on the bytes read from sources (disk images, block
 *   devices, files, dump output), a TokenBucket like the upload bandwidth cap.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { ErrorCode } from '@hoard/errors';
import { TokenBucket, parseBandwidth } from '@hoard/protocol/agent';

export type IoPriority = { class: 'idle' } | { class: 'best-effort'; level: number };

export interface AgentFootprint {
  /** CPU nice level, 0 (the default) to 19 (only what nothing else wants). */
  nice?: number;
  /** I/O scheduling class of the agent and what it starts. */
  io?: IoPriority;
  /** Chunker worker threads, and encode worker threads (1-64). */
  workers?: number;
  /** Bytes per second read from sources at most. */
  readBytesPerSecond?: number;
}

/** A footprint setting with a bad value: the message names the setting and what would be right. */
export class FootprintSettingError extends Error {
  override readonly name = 'FootprintSettingError';
  readonly code: ErrorCode = 'invalid_arguments';
}

/** Applying a setting failed (ionice missing, refused by the kernel). */
export class FootprintApplyError extends Error {
  override readonly name = 'FootprintApplyError';
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = 'work_failed') {
    super(message);
    this.code = code;
  }
}

/** Settings as written on a command line or in the environment (undefined: not given). */
export interface FootprintText {
  nice?: string;
  ioClass?: string;
  workers?: string;
  readLimit?: string;
}

/** Parses and checks every setting; throws FootprintSettingError naming the first bad one. */
export function parseFootprint(text: FootprintText): AgentFootprint {
  const out: AgentFootprint = {};
  if (text.nice !== undefined) out.nice = integerIn('--nice', text.nice, 0, 19, 'a nice level from 0 (normal) to 19 (lowest priority)');
  if (text.ioClass !== undefined) out.io = parseIoClass(text.ioClass);
  if (text.workers !== undefined) out.workers = integerIn('--workers', text.workers, 1, 64, 'a number of worker threads from 1 to 64');
  if (text.readLimit !== undefined) {
    try {
      out.readBytesPerSecond = parseBandwidth(text.readLimit).bytesPerSecond;
    } catch (err) {
      throw new FootprintSettingError(`--read-limit ${(err as Error).message}`);
    }
  }
  return out;
}

function integerIn(option: string, value: string, min: number, max: number, what: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > max)
    throw new FootprintSettingError(`${option} ${JSON.stringify(value)}: expected ${what}`);
  return n;
}

/** `idle`, `best-effort` (level 7) or `best-effort:N` (N 0-7, 0 first). */
export function parseIoClass(value: string): IoPriority {
  const v = value.trim();
  if (v === 'idle') return { class: 'idle' };
  const m = /^best-effort(?::(\d))?$/.exec(v);
  if (m) {
    const level = m[1] === undefined ? 7 : Number(m[1]);
    if (level <= 7) return { class: 'best-effort', level };
  }
  throw new FootprintSettingError(
    `--io-class ${JSON.stringify(value)}: expected idle (disk time only when no one else wants it) or best-effort:N with N from 0 (first) to 7 (last)`,
  );
}

/** The settings for the log line and `hoard agent start`'s greeting. */
export function describeFootprint(f: AgentFootprint): string {
  const parts: string[] = [];
  if (f.nice !== undefined) parts.push(`nice ${f.nice}`);
  if (f.io) parts.push(`io ${f.io.class === 'idle' ? 'idle' : `best-effort:${f.io.level}`}`);
  if (f.workers !== undefined) parts.push(`${f.workers} worker${f.workers === 1 ? '' : 's'}`);
  if (f.readBytesPerSecond !== undefined) parts.push(`reads at most ${(f.readBytesPerSecond / 1e6).toFixed(1)} MB/s`);
  return parts.length > 0 ? parts.join(', ') : 'no footprint limits';
}

/**
 * Applies nice and the I/O class to every thread of process `pid` (default this one).
 * Workers the process starts later inherit both; so do programs it spawns.
 */
export function applyPriority(f: Pick<AgentFootprint, 'nice' | 'io'>, pid = process.pid): void {
  if (f.nice === undefined && f.io === undefined) return;
  const tasks = taskIds(pid);
  if (f.nice !== undefined) {
    for (const tid of tasks) {
      try {
        setPriority(tid, f.nice);
      } catch (err) {
        // A thread that ended since the listing is fine; anything else (EACCES: a lower nice
        // than the process has, without CAP_SYS_NICE) is not.
        if ((err as { info?: { code?: string } }).info?.code === 'ESRCH') continue;
        throw new FootprintApplyError(`cannot set nice ${f.nice} on the agent (thread ${tid}): ${(err as Error).message}`);
      }
    }
  }
  if (f.io !== undefined) {
    const args = f.io.class === 'idle' ? ['-c', '3'] : ['-c', '2', '-n', String(f.io.level)];
    const r = spawnSync('ionice', [...args, '-p', ...tasks.map(String)], { encoding: 'utf8' });
    if (r.error) {
      throw new FootprintApplyError(
        `--io-class needs the ionice program (Debian package util-linux): ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`,
        'tool_missing',
      );
    }
    // A thread that ended between the listing and ionice makes it fail for that id only.
    if (r.status !== 0 && !/No such process/i.test(r.stderr)) throw new FootprintApplyError(`ionice ${args.join(' ')} failed: ${r.stderr.trim()}`);
  }
}

/** Thread ids of a process (Linux /proc); just the pid elsewhere. */
function taskIds(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [pid];
  }
}

/** The source read cap as a token bucket (undefined: no cap). */
export function readThrottle(f: AgentFootprint): TokenBucket | undefined {
  return f.readBytesPerSecond !== undefined ? new TokenBucket(f.readBytesPerSecond) : undefined;
}
