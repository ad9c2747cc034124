/**
 * A media server and its agents as `hoard` processes that a test kills with SIGKILL and
 * starts again in place: the server keeps its port, data directory and storage, so agents
 * reconnect to it. Storage and environment are the caller's (an fs directory, or a bucket
 * behind test-support/s3-fault-proxy.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { hoardCli, HOARD_MAIN } from './helpers.js';

export interface RunView {
  id: string;
  job: string;
  state: string;
  error?: string;
  targets: { ok: boolean; snapshot?: { id: string }; error?: string }[];
}

export function waitForLine(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    let errors = '';
    const other = stream === 'stdout' ? child.stderr : child.stdout;
    other?.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-4000)));
    const onData = (d: Buffer): void => {
      text += d.toString();
      if (pattern.test(text)) {
        child[stream]!.off('data', onData);
        resolve();
      }
    };
    child[stream]!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${errors}${text}`)));
  });
}

/** SIGKILL, resolved once the process is gone. */
export function killed(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as { port: number };
  await new Promise((r) => probe.close(r));
  return port;
}

export interface DeploymentOptions {
  dir: string;
  port: number;
  /** `--storage`: `fs:DIR` or `s3://bucket/prefix`. */
  storage: string;
  /** Extra environment of the server, its agents and the CLI (S3 endpoint and keys). */
  env?: Record<string, string>;
  /** The server's config file (runLeaseSeconds, sessionIdleSeconds, ...). */
  config?: Record<string, unknown>;
}

export class Deployment {
  server: ChildProcess | undefined;
  readonly agents = new Map<string, ChildProcess>();
  admin = '';
  readonly url: string;

  constructor(readonly options: DeploymentOptions) {
    this.url = `http://127.0.0.1:${options.port}`;
  }

  private get env(): NodeJS.ProcessEnv {
    return { ...process.env, HOARD_PASSPHRASE: '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...this.options.env };
  }

  async startServer(): Promise<void> {
    const { dir, port, storage } = this.options;
    const config = join(dir, 'server.json');
    await writeFile(config, JSON.stringify(this.options.config ?? {}));
    const args = [
      'server',
      'start',
      '--config',
      config,
      '--storage',
      storage,
      '--data',
      join(dir, 'data'),
      '--listen',
      `127.0.0.1:${port}`,
      '--log-level',
      'warn',
    ];
    const child = spawn(process.execPath, [HOARD_MAIN, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.resume();
    await waitForLine(child, 'stdout', /listening on/, 'hoard server');
    child.stdout!.resume();
    this.server = child;
    this.admin = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
  }

  /** `hoard ARGS --server URL --token ADMIN`. */
  cli(args: string[]): ReturnType<typeof hoardCli> {
    return hoardCli([...args, '--server', this.url, '--token', this.admin], { env: this.options.env });
  }

  /** Adds agent `name` and starts its process. */
  async addAgent(name: string): Promise<string> {
    const added = await this.cli(['agent', 'add', name, '--json']);
    if (added.code !== 0) throw new Error(`agent add ${name} failed: ${added.stderr}`);
    const { token } = JSON.parse(added.stdout) as { token: string };
    await this.startAgent(name, token);
    return token;
  }

  async startAgent(name: string, token: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, [HOARD_MAIN, 'agent', 'start', '--server', this.url, '--token', token, '--log-level', 'info'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    await waitForLine(child, 'stdout', /connected to/, `hoard agent ${name}`);
    child.stdout!.resume();
    this.agents.set(name, child);
    return child;
  }

  async api<T>(method: string, path: string): Promise<T> {
    const res = await fetch(this.url + path, { method, headers: { authorization: `Bearer ${this.admin}` } });
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Queues a run and returns without waiting for it. */
  async queue(agent: string, job: string, source: string): Promise<RunView> {
    const queued = await this.cli(['run', '--agent', agent, '--job', job, '--source', source, '--no-wait', '--json']);
    if (queued.code !== 0) throw new Error(`run ${job} was not queued: ${queued.stderr}`);
    return JSON.parse(queued.stdout) as RunView;
  }

  /** The run once it is no longer queued or running (long polls). */
  async ended(id: string): Promise<RunView> {
    for (let i = 0; i < 90; i++) {
      const run = await this.api<RunView>('GET', `/v1/runs/${id}?wait=2`);
      if (run.state !== 'queued' && run.state !== 'running') return run;
    }
    throw new Error(`run ${id} did not end`);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values(), this.server].map(killed));
  }
}
