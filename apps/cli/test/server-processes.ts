/**
 * A media server and agents as separate `hoard` processes on loopback, the way they are
 * deployed, for the end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hoardCli } from './helpers.js';

const hoard = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface ServerProcess {
  url: string;
  adminToken: string;
  dir: string;
  child: ChildProcess;
  /** `hoard ARGS --server URL --token ADMIN`. */
  cli(args: string[], env?: Record<string, string>): ReturnType<typeof hoardCli>;
  /** Starts `hoard agent start` for a new agent; `extraEnv` on top of the server's environment. */
  addAgent(name: string, extraEnv?: Record<string, string>): Promise<AgentProcess>;
  stop(): Promise<void>;
}

export interface AgentProcess {
  name: string;
  token: string;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    let errors = '';
    const onData = (d: Buffer): void => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        child.stdout!.off('data', onData);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready: ${errors}${text}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `hoard server start` on a free port with `storage` (default: fs in a temp dir). */
export async function startServerProcess(options: { storage?: string; env?: Record<string, string>; extraArgs?: string[] } = {}): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-server-test-'));
  const storage = options.storage ?? `fs:${join(dir, 'repo')}`;
  const env = { ...process.env, HOARD_PASSPHRASE: '', ...options.env };
  const child = spawn(
    process.execPath,
    [
      hoard,
      'server',
      'start',
      '--storage',
      storage,
      '--data',
      join(dir, 'data'),
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
      ...(options.extraArgs ?? []),
    ],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const m = await waitForLine(child, /listening on (http:\/\/[^\s]+)/, 'hoard server');
  const url = m[1]!;
  const adminToken = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
  const agents: AgentProcess[] = [];
  const server: ServerProcess = {
    url,
    adminToken,
    dir,
    child,
    cli: (args, extraEnv = {}) => hoardCli([...args, '--server', url, '--token', adminToken], { env: { ...options.env, ...extraEnv } }),
    async addAgent(name, extraEnv = {}) {
      const added = await server.cli(['agent', 'add', name, '--json']);
      if (added.code !== 0) throw new Error(`agent add failed: ${added.stderr}`);
      const { token } = JSON.parse(added.stdout) as { token: string };
      const agentChild = spawn(process.execPath, [hoard, 'agent', 'start', '--server', url, '--token', token], {
        env: { ...env, ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      agentChild.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await waitForLine(agentChild, /connected to/, `hoard agent ${name}`);
      const agent: AgentProcess = { name, token, child: agentChild, stderr: () => stderr, stop: () => stopChild(agentChild) };
      agents.push(agent);
      return agent;
    },
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
