/**
 * `hoard server start` on an empty data directory whose bucket holds a server's state
 * (docs/repair.md, "Losing the server's data directory"), as processes: refused with exit
 * 2 and a message naming the state; with --adopt-state it starts, the old admin and agent
 * tokens work, and a new admin token is written to <data>/admin-token (the old one may
 * have been only in the lost directory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOARD_MAIN, hoardCli, NO_CONFIG_HOME } from './helpers.js';
import { startServerProcess } from './server-processes.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-server-state-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const whoami = async (url: string, token: string): Promise<{ status: number; body: unknown }> => {
  const res = await fetch(`${url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
};

/** `hoard server start ARGS` until it says where it listens; its stderr so far. */
function startUntilListening(args: string[]): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [HOARD_MAIN, 'server', 'start', ...args], {
    env: { ...process.env, HOARD_PASSPHRASE: '', XDG_CONFIG_HOME: NO_CONFIG_HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, stderr: () => err });
    });
    child.once('exit', (code) => reject(new Error(`hoard server start exited with ${code}: ${err}${out}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('hoard server start on a lost data directory', () => {
  it('refuses with exit 2 naming the state, and takes it over with --adopt-state', async () => {
    const storage = `fs:${join(dir, 'repo')}`;
    // The first server: an agent; stop() deletes its data directory, as a lost disk would.
    const first = await startServerProcess({ storage });
    const added = await fetch(`${first.url}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${first.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'kvm-01' }),
    });
    expect(added.status).toBe(201);
    const agentToken = ((await added.json()) as { token: string }).token;
    await first.stop();
    expect(await readdir(join(dir, 'repo', 'server'))).toEqual([expect.stringMatching(/^state-/)]);

    const data = join(dir, 'data');
    const common = ['--storage', storage, '--data', data, '--listen', '127.0.0.1:0', '--log-level', 'warn'];
    const refused = await hoardCli(['server', 'start', ...common]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(
      /^hoard: .* holds the state of a media server \(server\/state-\S+, written \S+: 1 agent, 1 API token, 0 jobs, 0 policies, 0 runs, 0 tasks\)/,
    );
    expect(refused.stderr).toContain('start with --adopt-state');

    const adopted = await startUntilListening([...common, '--adopt-state']);
    try {
      expect(await whoami(adopted.url, first.adminToken)).toEqual({ status: 200, body: { role: 'admin' } });
      const fresh = (await readFile(join(data, 'admin-token'), 'utf8')).trim();
      expect(fresh).not.toBe(first.adminToken);
      for (let i = 0; i < 50 && !adopted.stderr().includes(fresh); i++) await new Promise((r) => setTimeout(r, 100));
      expect(adopted.stderr()).toContain(fresh);
      expect(await whoami(adopted.url, fresh)).toEqual({ status: 200, body: { role: 'admin' } });
      expect(await whoami(adopted.url, agentToken)).toEqual({ status: 200, body: { role: 'agent', agent: 'kvm-01' } });
    } finally {
      await stop(adopted.child);
    }
    // The next start is an ordinary one: the catalog is not empty, the flag changes nothing.
    const again = await startUntilListening([...common, '--adopt-state']);
    try {
      expect(await whoami(again.url, agentToken)).toEqual({ status: 200, body: { role: 'agent', agent: 'kvm-01' } });
    } finally {
      await stop(again.child);
    }
  });
});
