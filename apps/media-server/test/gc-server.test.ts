/**
 * Garbage collection inside the media server while backups run (invariant 7):
 * - a session that deduplicated against a pack a GC then condemned has the pack revived by
 *   its commit check (window open), or is refused with nothing committed (window closed);
 * - after a GC the server's store index stops offering condemned packs, so the next
 *   session uploads that data again;
 * - a race of concurrent backups, forgets and GC runs never loses a chunk of a committed,
 *   unforgotten snapshot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GcReport } from '@hoard/repository';
import {
  agentWithJob,
  backup,
  beginSession,
  call,
  chunkFor,
  commit,
  commitRequest,
  queryMissing,
  randomData,
  restoreBytes,
  sendBatches,
  startServer,
  type TestServer,
} from './helpers.js';

const DAY = 86400_000;
let t: TestServer | undefined;
/** GC's clock: days ahead of the real one, so what was just written counts as old. */
let now = Date.now() + 3 * DAY;
const clock = { now: () => now };

afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function gc(server: TestServer, body: Record<string, unknown>): Promise<GcReport> {
  const r = await call(server.url, 'POST', '/v1/gc', { token: server.admin, json: body });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json as unknown as GcReport;
}

async function forget(server: TestServer, job: string, id: string): Promise<void> {
  const snapshot = await server.repo.findSnapshot(job, { id });
  await server.repo.forgetSnapshots([snapshot.key]);
}

describe('GC in the media server', () => {
  it('a session that deduplicated against a pack GC condemned: revived at commit while the window is open, refused once it is closed while a GC runs', async () => {
    t = await startServer({ server: { scheduler: false, clock, sealIdleMs: 50 } });
    const a = await agentWithJob(t);
    const b = await agentWithJob(t);
    const data = randomData(300 * 1024, 1);
    const first = await backup(t, a, data);
    await forget(t, a.job, first.snapshot.id);

    // Open window: B sends references to A's chunks (all present), then GC condemns A's pack.
    const session = await beginSession(t, b.token, b.job);
    const chunks = await chunkFor(session, data);
    expect((await queryMissing(t, b.token, session.session, chunks)).every((m) => !m)).toBe(true);
    const { batches, blobsStored } = await sendBatches(t, b.token, session, chunks);
    expect(blobsStored).toBe(0);
    const report = await gc(t, {}); // default grace 24 h; GC's clock is 3 days ahead
    expect(report.packs.condemned).toBeGreaterThan(0);
    // The commit check revives the condemned pack: the snapshot commits and restores.
    const committed = await commit(t, b.token, session, commitRequest(session, data, chunks, batches));
    expect(committed.status, JSON.stringify(committed.json)).toBe(200);
    const id = (committed.json.snapshot as { id: string }).id;
    now += 2 * DAY;
    const later = await gc(t, {});
    // The revival made the pack live again: the later GC deletes nothing and B restores.
    expect(later.packs.deleted).toBe(0);
    expect(later.packs.condemned).toBe(0);
    const r = await restoreBytes(t, b.token, b.job, id);
    expect(r.status).toBe(200);
    expect(r.bytes.equals(data)).toBe(true);

    // Closed window (grace 0) while a GC runs (gc/lock exists): the same situation refuses
    // the commit, nothing is committed. (With no GC running it would commit: docs/gc.md.)
    const second = await backup(t, a, randomData(200 * 1024, 2));
    await forget(t, a.job, second.snapshot.id);
    const late = await beginSession(t, b.token, b.job, 'late');
    const lateData = randomData(200 * 1024, 2);
    const lateChunks = await chunkFor(late, lateData);
    const sent = await sendBatches(t, b.token, late, lateChunks);
    expect(sent.blobsStored).toBe(0);
    await gc(t, { graceMs: 0 });
    await t.repo.objects.putIfAbsent('gc/lock', Buffer.from(JSON.stringify({ version: 1, startedAt: new Date(now).toISOString(), host: 'other', pid: 1 })));
    const refused = await commit(t, b.token, late, commitRequest(late, lateData, lateChunks, sent.batches));
    expect(refused.status).toBe(409);
    expect(refused.json.error).toMatch(/garbage collection .*gc\/lock exists.* run the backup again/);
    expect((await t.repo.snapshots(b.job)).map((s) => s.id)).toEqual([id]);
    await t.repo.objects.deleteMany(['gc/lock']);

    // The server followed the GC: its index no longer offers the condemned pack.
    const probe = await beginSession(t, b.token, b.job, 'probe');
    expect((await queryMissing(t, b.token, probe.session, await chunkFor(probe, lateData))).every((m) => m)).toBe(true);
    // The next GC deletes it (its grace is over). Its condemnation stays listed until the
    // GC after that finds it gone; a retry whose new pack has the very same bytes (same
    // blobs, same order: content names) commits all the same when no GC runs (docs/gc.md).
    expect((await gc(t, { graceMs: 0 })).packs.deleted).toBeGreaterThan(0);
    await gc(t, { graceMs: 0 });
    const retry = await backup(t, b, lateData, 'late');
    expect(retry.totals.chunksNew).toBe(lateChunks.filter((c) => !c.zero).length);
    const back = await restoreBytes(t, b.token, b.job, retry.snapshot.id);
    expect(back.bytes.equals(lateData)).toBe(true);
  });

  it('a race of concurrent backups, forgets and GC runs never loses a chunk of a committed, unforgotten snapshot', async () => {
    t = await startServer({ server: { scheduler: false, clock, sealIdleMs: 20 } });
    const agents = await Promise.all([agentWithJob(t), agentWithJob(t), agentWithJob(t)]);
    const live: { job: string; token: string; id: string; data: Buffer }[] = [];
    let refusedCommits = 0;
    let gcs = 0;
    // Data that shares most chunks with earlier rounds: new backups deduplicate against
    // packs that GC is condemning at the same moment.
    const base = Array.from({ length: 6 }, (_, i) => randomData(64 * 1024, 100 + i));
    const dataFor = (round: number, k: number): Buffer =>
      Buffer.concat([base[(round + k) % 6]!, randomData(16 * 1024, round * 10 + k), base[(round + 2 * k + 1) % 6]!]);
    for (let round = 0; round < 10; round++) {
      now += DAY / 2;
      const backups = agents.map(async (who, k) => {
        const data = dataFor(round, k);
        const session = await beginSession(t!, who.token, who.job);
        const chunks = await chunkFor(session, data);
        const { batches } = await sendBatches(t!, who.token, session, chunks, { perBatch: 2 });
        const r = await commit(t!, who.token, session, commitRequest(session, data, chunks, batches));
        if (r.status === 409) {
          refusedCommits++;
          return;
        }
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        live.push({ job: who.job, token: who.token, id: (r.json.snapshot as { id: string }).id, data });
      });
      const collector = (async () => {
        // Forget about half of what is live, then collect with a short grace, twice.
        for (const victim of live.splice(0, Math.floor(live.length / 2))) await forget(t!, victim.job, victim.id);
        await gc(t!, { graceMs: round % 3 === 0 ? 0 : 3600_000 });
        gcs++;
      })();
      // A backup's 422 (its missing-query answer went stale when GC dropped a pack) is a
      // refused batch, not lost data: the agent would begin again. Treat it as refused.
      // A refused batch may also reach the client as a closed connection (the server
      // answers early and closes while the body is still being sent).
      const results = await Promise.allSettled([...backups, collector]);
      for (const result of results) {
        if (result.status !== 'rejected') continue;
        if (!/422|409|fetch failed|other side closed/.test(String(result.reason) + String((result.reason as Error)?.cause ?? ''))) throw result.reason;
        refusedCommits++;
      }
    }
    now += 2 * DAY;
    await gc(t, {});
    now += 2 * DAY;
    const last = await gc(t, {});
    expect(gcs).toBe(10);
    expect(last.missingChunks).toBe(0);
    expect(live.length).toBeGreaterThanOrEqual(3);
    for (const s of live) {
      const r = await restoreBytes(t, s.token, s.job, s.id);
      expect(r.status, `snapshot ${s.id} of ${s.job}: ${r.bytes.toString('utf8', 0, 200)}`).toBe(200);
      expect(r.bytes.equals(s.data), `snapshot ${s.id} of ${s.job} restores byte-identical`).toBe(true);
    }
    const verify = await call(t.url, 'POST', '/v1/verify', { token: t.admin, json: { readData: true } });
    expect(verify.status).toBe(200);
    expect(verify.json.findings).toEqual([]);
    process.stderr.write(`GC race: ${live.length} snapshots alive, ${refusedCommits} backups refused (commit check or stale batch)\n`);
  });
});
