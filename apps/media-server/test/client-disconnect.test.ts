/**
 * Clients that go away (issue 15, problem 7), over raw sockets: a client that closes its
 * connection mid-request is counted as a disconnect, not as an HTTP 500; a client that
 * sends its whole request and then half-closes (shuts down its write side) still gets its
 * answer; an agent's long poll whose client is gone claims no run.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBatchHeader } from '@hoard/protocol';
import { addAgent, agentWithJob, beginSession, call, defineJob, eventually, startServer, type TestServer } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ server: { scheduler: false } });
});
afterAll(async () => t?.close());

function open(): Promise<Socket> {
  const url = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends until it closes its side. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => resolve(text));
    socket.on('close', () => resolve(text));
  });
}

async function metric(name: string): Promise<string[]> {
  const text = (await call(t.url, 'GET', '/metrics')).bytes.toString('utf8');
  return text.split('\n').filter((line) => line.startsWith(name));
}

describe('clients that go away', () => {
  it('a request followed by a half-close gets its answer', async () => {
    const socket = await open();
    const answer = readAll(socket);
    // An authenticated route: the answer waits for a catalog read, after the client's FIN.
    socket.end(`GET /v1/agents HTTP/1.1\r\nHost: hoard\r\nAuthorization: Bearer ${t.admin}\r\n\r\n`);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toContain('"agents":[');
  });

  it('a client that closes mid-upload is a disconnect, not a 500', async () => {
    const a = await agentWithJob(t);
    const session = await beginSession(t, a.token, a.job);
    const before = (await metric('hoard_http_client_disconnects_total')).join();
    const cut = async (head: string, body: Buffer): Promise<void> => {
      const socket = await open();
      const closed = readAll(socket);
      socket.write(head);
      socket.write(body);
      // Let the server start reading the body, then vanish without finishing it.
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
      await closed;
    };
    await cut(
      `PUT /v1/sessions/${session.session}/batches/0 HTTP/1.1\r\nHost: hoard\r\nAuthorization: Bearer ${a.token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n`,
      Buffer.concat([encodeBatchHeader({ refCount: 1000, blobCount: 0 }), Buffer.alloc(370)]),
    );
    await cut(
      `POST /v1/runs HTTP/1.1\r\nHost: hoard\r\nAuthorization: Bearer ${t.admin}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n`,
      Buffer.from('{"agent": "'),
    );
    await eventually(
      async () => (await metric('hoard_http_client_disconnects_total')).join() === 'hoard_http_client_disconnects_total 2',
      5_000,
      `two disconnects counted (before: ${before})`,
    );
    expect(await metric('hoard_http_errors_total{status="500"}')).toEqual([]);
    // The session is not hurt: the next batch is still batch 0.
    const r = await call(t.url, 'PUT', `/v1/sessions/${session.session}/batches/1`, {
      token: a.token,
      body: Buffer.alloc(0),
      contentType: 'application/octet-stream',
    });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/expects batch 0 next/);
  });

  it("an agent's long poll whose client went away claims no run: the agent's next poll gets it", async () => {
    const { name, token } = await addAgent(t);
    for (const leave of ['killed', 'half-close'] as const) {
      const socket = await open();
      const answer = readAll(socket);
      socket.write(`GET /v1/agent/work?wait=30 HTTP/1.1\r\nHost: hoard\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      // Let the poll reach the server and wait there, then leave as a killed agent does
      // (its kernel closes the socket) or by shutting down the write side only.
      await new Promise((r) => setTimeout(r, 300));
      if (leave === 'killed') socket.destroy();
      else socket.end();
      await new Promise((r) => setTimeout(r, 300));
      if (leave === 'half-close') {
        // The half-closed poll is answered at once with "no run", not after its 30 s.
        const text = await answer;
        expect(text).toMatch(/^HTTP\/1\.1 204 /);
      }
      // A run queued now must wait for a live poll, not go to the one that is gone.
      await defineJob(t, name);
      const next = await call(t.url, 'GET', '/v1/agent/work?wait=5', { token });
      expect(next.status, `${leave}: ${JSON.stringify(next.json)}`).toBe(200);
      expect(next.json).toMatchObject({ agent: name, state: 'running' });
      const done = await call(t.url, 'POST', `/v1/runs/${next.json.id as string}/finish`, { token, json: { state: 'succeeded', targets: [] } });
      expect(done.status, JSON.stringify(done.json)).toBeLessThan(300);
    }
  });
});
