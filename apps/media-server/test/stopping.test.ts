/**
 * Stopping the server while agents wait in long polls: each poll is answered at once
 * with 503 server_stopping (the agent retries), never a 500 or a reset.
 */
import { describe, expect, it } from 'vitest';
import { addAgent, call, startServer } from './helpers.js';

describe('stopping the server', () => {
  it('answers in-flight polls with 503 server_stopping', async () => {
    const t = await startServer();
    const agents = await Promise.all([addAgent(t), addAgent(t)]);
    const started = Date.now();
    const polls = agents.map((a) => call(t.url, 'GET', '/v1/agent/work?wait=30', { token: a.token }));
    // Let both polls reach the server and wait there.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await t.close();
    for (const answer of await Promise.all(polls)) {
      expect(answer.status, JSON.stringify(answer.json)).toBe(503);
      expect(answer.json).toMatchObject({ code: 'server_stopping', message: expect.stringMatching(/stopping/) });
    }
    // Answered when the server stopped, not when the 30 s wait ran out.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
