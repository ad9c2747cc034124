/**
 * Long-running hoard CLI processes the benchmarks start (a media server, agents) and what
 * they read from /proc about them: CPU seconds, RSS, bytes read.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HOARD_CLI, REPO_ROOT } from './peers.js';

/**
 * The `Environment=` settings of one of hoard's systemd units (deploy/systemd/NAME.service),
 * so a benchmark runs the daemon as it is installed (the agent's unit holds V8's young
 * generation and glibc's malloc arenas down) and follows the unit when it changes.
 */
export function unitEnvironment(unit: 'hoard-agent' | 'hoard-server'): Record<string, string> {
  const text = readFileSync(join(REPO_ROOT, 'deploy/systemd', `${unit}.service`), 'utf8');
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)) env[m[1]] = m[2].trim();
  return env;
}

/** Clock ticks per second for /proc/PID/stat (100 on Linux almost everywhere). */
export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Keeps the last `limit` characters. */
export class TextTail {
  text = '';
  constructor(private readonly limit = 64 * 1024) {}
  push(s: string): void {
    this.text += s;
    if (this.text.length > 2 * this.limit) this.text = this.text.slice(-this.limit);
  }
}

/** Long-running CLI processes (server, agents) still alive: stopped on Ctrl-C. */
const daemons = new Set<Daemon>();

/** A long-running `node apps/cli/dist/main.js ...` process: the node process itself, so /proc/PID is its own. */
export class Daemon {
  readonly child: ChildProcess;
  readonly out = new TextTail();
  readonly err = new TextTail();
  readonly exited: Promise<number | string>;
  private lineWaiters: Array<() => void> = [];

  constructor(
    readonly label: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, [HOARD_CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    daemons.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.out.push(s);
      this.lineWaiters.splice(0).forEach((w) => w());
    });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => this.err.push(s));
    this.exited = new Promise((resolvePromise) => {
      this.child.on('error', (e) => resolvePromise(e.message));
      this.child.on('close', (code, signal) => {
        daemons.delete(this);
        this.lineWaiters.splice(0).forEach((w) => w());
        resolvePromise(code ?? signal ?? 'unknown');
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.label} did not start`);
    return this.child.pid;
  }

  /** Waits until stdout matches `re`; throws if the process exits first or after `ms`. */
  async waitFor(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const m = re.exec(this.out.text);
      if (m) return m;
      if (exited || this.child.exitCode !== null) throw new Error(`${this.label} exited before it was ready:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label} was not ready after ${ms / 1000} s:\n${this.tail()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(left, 250));
        this.lineWaiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  tail(): string {
    return `${this.out.text}\n${this.err.text}`.trim().split('\n').slice(-15).join('\n');
  }

  /** VmRSS and VmHWM (peak RSS) in bytes, from /proc/PID/status. */
  async memory(): Promise<{ rss: number; hwm: number }> {
    const text = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kib = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
      if (!m) throw new Error(`no ${field} in /proc/${this.pid}/status`);
      return Number(m[1]) * 1024;
    };
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  }

  /**
   * User + system CPU seconds of the process (all its threads) and of its children it has
   * waited for (an agent's `cat` for a cmd: source).
   */
  async cpuSeconds(): Promise<{ self: number; children: number }> {
    const text = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return { self: (f[11] + f[12]) / CLK_TCK, children: (f[13] + f[14]) / CLK_TCK };
  }

  /** Bytes the process passed to read() and friends (sockets included): /proc/PID/io rchar, or null. */
  async readBytes(): Promise<number | null> {
    try {
      const m = /^rchar:\s+(\d+)/m.exec(await readFile(`/proc/${this.pid}/io`, 'utf8'));
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  }

  /** SIGTERM, then SIGKILL after `ms`. */
  async stop(ms = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }
}

export function killDaemons(): void {
  for (const d of daemons) d.child.kill('SIGKILL');
  daemons.clear();
}

export class Server {
  private constructor(
    readonly daemon: Daemon,
    readonly url: string,
    readonly adminToken: string,
  ) {}

  static async start(repo: string, data: string, env: NodeJS.ProcessEnv): Promise<Server> {
    const daemon = new Daemon(
      'hoard server',
      ['server', 'start', '--storage', `fs:${repo}`, '--data', data, '--listen', '127.0.0.1:0', '--log-level', 'warn'],
      env,
    );
    const m = await daemon.waitFor(/listening on (https?:\/\/\S+)/);
    const token = (await readFile(join(data, 'admin-token'), 'utf8')).trim();
    return new Server(daemon, m[1], token);
  }

  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  /** hoard_received_bytes_total from GET /metrics. */
  async receivedBytes(): Promise<number> {
    const res = await fetch(`${this.url}/metrics`);
    const m = /^hoard_received_bytes_total\s+(\S+)$/m.exec(await res.text());
    if (!m) throw new Error('no hoard_received_bytes_total in GET /metrics');
    return Number(m[1]);
  }

  async index(): Promise<{ entries: number; memoryBytes: number }> {
    const { stores } = await this.api<{ stores: Array<{ entries: number; memoryBytes: number }> }>('GET', '/v1/stores');
    return { entries: stores.reduce((n, s) => n + s.entries, 0), memoryBytes: stores.reduce((n, s) => n + s.memoryBytes, 0) };
  }
}
