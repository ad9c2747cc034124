/**
 * The agent's log (pino: JSON lines with level names, ISO times, service and component),
 * the daemon's log through it, and the daemon's
 * retry of a result report that a dropped connection interrupted.
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { AgentDaemon, agentLogger } from '../dist/index.js';

/** A destination that keeps the parsed lines. */
function captured(): { lines: Record<string, unknown>[]; write(line: string): void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
}

describe('agentLogger', () => {
  it('writes JSON lines: level name, ISO time, service, the child component, fields, msg', () => {
    const out = captured();
    const log = agentLogger('info', out).child({ component: 'daemon' });
    log.info({ run: 'r1', bytes: 3 }, 'run started');
    expect(out.lines).toHaveLength(1);
    const [line] = out.lines;
    expect(line).toEqual({ level: 'info', time: line!.time, service: 'hoard-agent', component: 'daemon', run: 'r1', bytes: 3, msg: 'run started' });
    expect(new Date(line!.time as string).toISOString()).toBe(line!.time);
  });

  it('leaves out what is below its level', () => {
    const out = captured();
    const log = agentLogger('warn', out);
    log.info('not shown');
    log.warn('shown');
    log.error({ error: 'boom' }, 'also shown');
    expect(out.lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'shown'],
      ['error', 'also shown'],
    ]);
  });
});

describe('the daemon logs', () => {
  it('through its child loggers, and retries a result report the connection dropped', async () => {
    const run: RunView = {
      id: 'r1',
      agent: 'kvm-01',
      job: 'empty',
      sources: [],
      state: 'running',
      createdAt: new Date().toISOString(),
      targets: [],
      discovered: [],
    };
    let finishes = 0;
    let handed = false;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        if (req.url?.startsWith('/v1/agent/hello')) return json({ agent: 'kvm-01' });
        if (req.url?.startsWith('/v1/agent/work')) {
          if (handed) return void setTimeout(() => res.writeHead(204).end(), 200);
          handed = true;
          return json(run);
        }
        // The first report's connection drops before an answer: the agent must send it again.
        if (++finishes === 1) return void req.socket.destroy();
        json({ ...run, state: 'succeeded' });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const out = captured();
    const agent = new AgentDaemon({ server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 't', logger: agentLogger('info', out) });
    try {
      await agent.start();
      const deadline = Date.now() + 20_000;
      while (!out.lines.some((l) => l.msg === 'run finished') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await agent.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(finishes).toBe(2);
    expect(out.lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'agent connected', component: 'daemon', agent: 'kvm-01' }));
    expect(out.lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'run finished', component: 'daemon', run: 'r1', state: 'succeeded' }));
    expect(out.lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
