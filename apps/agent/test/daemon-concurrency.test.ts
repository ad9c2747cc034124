/**
 * The daemon's poll loop against a scripted server: it runs as many runs at once as the
 * claim answer's maxConcurrentRuns says (1 when absent, as before), and does not ask for
 * more work while it is at that limit. Each run's pre hook waits for a gate file, so runs
 * stay "running" until the test opens it; the order of the server's events is the proof.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { AgentDaemon } from '../dist/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-agent-conc-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
}

/** A server that hands out `runs` in order and records claims and finishes. */
async function scriptedServer(runs: RunView[]) {
  const events: string[] = [];
  const parked: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.startsWith('/v1/agent/hello')) return json(200, { agent: 'kvm-01' });
      if (url.startsWith('/v1/agent/work')) {
        const run = runs.shift();
        if (!run) return void parked.push(res); // long poll: answered when the server closes
        events.push(`claim ${run.id}`);
        return json(200, run);
      }
      const finish = /^\/v1\/runs\/([^/]+)\/finish$/.exec(url);
      if (finish) {
        events.push(`finish ${finish[1]}`);
        return json(200, {});
      }
      return json(404, { error: `no route ${url}` });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    close: async () => {
      for (const res of parked) res.writeHead(204).end();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

function gatedRun(id: string, maxConcurrentRuns?: number): RunView {
  const pre = `touch ${join(dir, `started-${id}`)}; while [ ! -e ${join(dir, 'gate')} ]; do sleep 0.02; done; exit 1`;
  return {
    id,
    agent: 'kvm-01',
    job: `job-${id}`,
    sources: ['cmd:true'],
    state: 'running',
    hooks: { pre },
    createdAt: new Date().toISOString(),
    targets: [],
    discovered: [],
    ...(maxConcurrentRuns ? { maxConcurrentRuns } : {}),
  };
}

const started = (id: string) => existsSync(join(dir, `started-${id}`));

describe('agent daemon concurrency', () => {
  it('runs two at once when the server says 2, and asks for no third while both run', async () => {
    const server = await scriptedServer([gatedRun('r1', 2), gatedRun('r2', 2), gatedRun('r3', 2)]);
    const agent = new AgentDaemon({ server: server.url, token: 't' });
    try {
      await agent.start();
      await until(() => started('r1') && started('r2'));
      // Both running, neither finished, and r3 not claimed: the agent is at its limit.
      expect(server.events).toEqual(['claim r1', 'claim r2']);
      await writeFile(join(dir, 'gate'), '');
      await until(() => server.events.filter((e) => e.startsWith('finish')).length === 3);
      expect(server.events.slice(0, 2)).toEqual(['claim r1', 'claim r2']);
      expect(server.events.indexOf('claim r3')).toBeGreaterThan(server.events.findIndex((e) => e.startsWith('finish')));
    } finally {
      await agent.close();
      await server.close();
    }
  });

  it('runs one at a time when the server says nothing (the default)', async () => {
    const server = await scriptedServer([gatedRun('r1'), gatedRun('r2')]);
    const agent = new AgentDaemon({ server: server.url, token: 't' });
    try {
      await agent.start();
      await until(() => started('r1'));
      expect(server.events).toEqual(['claim r1']);
      await writeFile(join(dir, 'gate'), '');
      await until(() => server.events.length === 4);
      expect(server.events).toEqual(['claim r1', 'finish r1', 'claim r2', 'finish r2']);
    } finally {
      await agent.close();
      await server.close();
    }
  });
});
