/**
 * A policy's `store.compression` applies to its jobs' new blobs: the session tells the
 * agent the policy's codec (each blob records its own, so one store holds blobs of several
 * codecs), and a job without a policy keeps the store record's (zstd:3 for a new
 * repository). Checked on what reaches the packs (stored vs new bytes of compressible
 * data) and on restores of both.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { addAgent, backup, call, defineJob, restoreBytes, startServer, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Compressible text that another job's data shares no chunk with. */
const text = (tag: string): Buffer => Buffer.from(Array.from({ length: 12_000 }, (_, i) => `${tag} row ${i} of a table that compresses well; `).join(''));

const policy = (name: string, agent: string, compression: string) =>
  JSON.stringify({ name, sources: [{ agent, specs: ['cmd:true'] }], schedule: { timezone: 'UTC', full: '0 1 * * 0' }, store: { compression } });

describe('policy store.compression', () => {
  it("a policy's compression is what its job's new blobs are written with; other jobs keep the store's", async () => {
    t = await startServer();
    const plainAgent = await addAgent(t);
    const lz4Agent = await addAgent(t);
    const freeAgent = await addAgent(t);
    const plain = await defineJob(t, plainAgent.name, 'plain-job');
    const lz4 = await defineJob(t, lz4Agent.name, 'lz4-job');
    const free = await defineJob(t, freeAgent.name);
    for (const [name, agent, compression] of [
      [plain, plainAgent.name, 'none'],
      [lz4, lz4Agent.name, 'lz4'],
    ] as const) {
      const r = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: policy(name, agent, compression) } });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }

    const stored = await backup(t, { token: plainAgent.token, job: plain }, text('plain'));
    expect(stored.session.store.compression).toBe('none');
    // Nothing compressed: every new byte is stored (plus blob framing).
    expect(stored.totals.bytesStored).toBeGreaterThanOrEqual(stored.totals.bytesNew);

    const fast = await backup(t, { token: lz4Agent.token, job: lz4 }, text('lz4'));
    expect(fast.session.store.compression).toBe('lz4');
    expect(fast.totals.bytesStored).toBeLessThan(fast.totals.bytesNew / 2);

    const other = await backup(t, { token: freeAgent.token, job: free }, text('free'));
    expect(other.session.store.compression).toBe('zstd:3');
    expect(other.totals.bytesStored).toBeLessThan(fast.totals.bytesStored);

    // One store, blobs of three codecs: each restores.
    for (const [job, token, tag] of [
      [plain, plainAgent.token, 'plain'],
      [lz4, lz4Agent.token, 'lz4'],
      [free, freeAgent.token, 'free'],
    ] as const) {
      const r = await restoreBytes(t, token, job);
      expect(r.status).toBe(200);
      expect(r.bytes.equals(text(tag)), job).toBe(true);
    }
  });
});
