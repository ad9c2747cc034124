/**
 * Catalog.onChange, isEmpty, exportRecords and importRecords (the media server's state
 * mirror uses them): an export imported into a new catalog gives the same records with
 * their times, revoked agents and roles, consistent indexes; the history bound; what an
 * import refuses.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, CatalogNotEmptyError, CatalogValidationError, TokenInUseError, type CatalogChangeKind, type CatalogRecords } from '../dist/index.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const STORE = '0123456789abcdef0123456789abcdef';
const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

let dir: string;
let cat: Catalog;
const others: Catalog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-catalog-export-'));
  cat = await Catalog.open(join(dir, 'a'));
});

afterEach(async () => {
  await cat.close();
  for (const c of others.splice(0)) await c.close();
  await rm(dir, { recursive: true, force: true });
});

async function fresh(name: string): Promise<Catalog> {
  const c = await Catalog.open(join(dir, name));
  others.push(c);
  return c;
}

/** Agents (one revoked), tokens of each role, a job, a policy, runs, sessions and tasks. */
async function fill(c: Catalog): Promise<void> {
  await c.addAgent('kvm-01', sha('a1'));
  await c.addAgent('kvm-02', sha('a2'));
  await c.revokeAgent('kvm-02');
  await c.touchAgent('kvm-01', { hostname: 'kvm-01.example', version: '0.1.0' });
  await c.setAdminToken(sha('admin'), { label: 'first' });
  await c.setAdminToken(sha('op'), { label: 'on-call', role: 'operator' });
  await c.setAdminToken(sha('view'), { role: 'viewer' });
  await c.putJob({ name: 'db', agent: 'kvm-01', sources: ['postgres://backup:pw@db/app'], store: 'global', createdAt: at(0), updatedAt: at(1) });
  await c.addKnownSources('db', ['app']);
  await c.putPolicy('nightly', { name: 'nightly', sources: [{ agent: 'kvm-01', specs: ['cmd:true'] }] });
  for (let i = 0; i < 5; i++) {
    await c.putRun({
      id: `run-${i}`,
      agent: 'kvm-01',
      job: 'db',
      sources: ['x'],
      state: 'succeeded',
      createdAt: at(10 + i),
      startedAt: at(10 + i),
      finishedAt: at(11 + i),
      sessions: [`s-${i}`],
      result: { targets: [] },
    });
    await c.putSession({
      id: `s-${i}`,
      agent: 'kvm-01',
      job: 'db',
      source: 'app',
      store: STORE,
      startedAt: at(10 + i),
      finishedAt: at(11 + i),
      state: 'committed',
      bytesRead: 100,
      bytesSent: 10,
      bytesNew: 10,
      bytesStored: 10,
      chunks: 2,
      chunksNew: 1,
    });
    await c.putTask({ id: `verify-${i}`, kind: 'verify', job: 'db', state: 'succeeded', startedAt: at(20 + i), finishedAt: at(21 + i), summary: 'ok' });
  }
  await c.putSession({
    id: 's-other',
    agent: 'kvm-01',
    job: 'db',
    source: 'other',
    store: STORE,
    startedAt: at(1),
    state: 'failed',
    bytesRead: 0,
    bytesSent: 0,
    bytesNew: 0,
    bytesStored: 0,
    chunks: 0,
    chunksNew: 0,
  });
  await c.putTask({ id: 'gc-1', kind: 'gc', state: 'succeeded', startedAt: at(30) });
  await c.putTask({ id: 'gc-2', kind: 'gc', state: 'failed', startedAt: at(31), error: 'locked' });
  await c.putRun({ id: 'run-q', agent: 'kvm-01', job: 'other', sources: ['x'], state: 'queued', createdAt: at(40), sessions: [] });
}

describe('onChange', () => {
  it('reports each write that changed something, with its kind, after it is written', async () => {
    const seen: CatalogChangeKind[] = [];
    const stop = cat.onChange(({ kind }) => seen.push(kind));
    cat.onChange(() => {
      throw new Error('a listener that throws changes nothing');
    });
    await cat.addAgent('kvm-01', sha('a1'));
    expect(await cat.getAgent('kvm-01')).toBeDefined();
    await cat.touchAgent('kvm-01');
    await cat.setAdminToken(sha('t'));
    await cat.putJob({ name: 'j', sources: ['x'] });
    expect(await cat.addKnownSources('j', [])).toEqual([]); // nothing new: no change
    await cat.addKnownSources('j', ['a']);
    await cat.putPolicy('p', {});
    await cat.putMeta('k', 1);
    await cat.putRun({ id: 'r', agent: 'kvm-01', job: 'j', sources: [], state: 'queued', createdAt: at(0), sessions: [] });
    await cat.claimNextRun('kvm-01');
    await cat.updateRun('r', () => undefined); // unchanged
    await cat.putTask({ id: 't', kind: 'gc', state: 'running', startedAt: at(0) });
    expect(await cat.deletePolicy('nope')).toBe(false); // nothing deleted
    await cat.revokeAgent('kvm-01');
    stop();
    await cat.deleteJob('j');
    expect(seen).toEqual(['agent', 'agent-contact', 'api-token', 'job', 'job', 'policy', 'meta', 'run', 'run', 'task', 'agent']);
  });
});

describe('export and import', () => {
  it('an export imported into an empty catalog gives the same records, times and indexes', async () => {
    await fill(cat);
    const records = await cat.exportRecords();
    expect(records.agents.map((a) => a.name)).toEqual(['kvm-01', 'kvm-02']);
    expect(records.runs).toHaveLength(6);

    const b = await fresh('b');
    expect(await b.isEmpty()).toBe(true);
    expect(await b.importRecords(records)).toEqual({ agents: 2, apiTokens: 3, jobs: 1, policies: 1, runs: 6, sessions: 6, tasks: 7, notifyTargets: 0 });
    expect(await b.isEmpty()).toBe(false);
    expect(await b.exportRecords()).toEqual(records);
    expect(await b.checkConsistency()).toEqual([]);
    // What the server asks of the catalog answers as before.
    expect((await b.agentByTokenHash(sha('a1')))?.name).toBe('kvm-01');
    expect(await b.agentByTokenHash(sha('a2'))).toBeUndefined(); // revoked
    expect((await b.getAdminToken(sha('op')))?.role).toBe('operator');
    expect(await b.getAdminToken(sha('admin'))).toEqual(await cat.getAdminToken(sha('admin')));
    expect(await b.getJob('db')).toEqual(await cat.getJob('db'));
    expect(await b.getPolicy('nightly')).toEqual(await cat.getPolicy('nightly'));
    expect(await b.listRuns({ agent: 'kvm-01', newestFirst: true })).toEqual(await cat.listRuns({ agent: 'kvm-01', newestFirst: true }));
    expect((await b.nextQueuedRun('kvm-01'))?.id).toBe('run-q');
    expect(await b.listTasks({ job: 'db', newestFirst: true })).toEqual(await cat.listTasks({ job: 'db', newestFirst: true }));
    expect(await b.listSessions({ job: 'db' })).toEqual(await cat.listSessions({ job: 'db' }));
  });

  it('historyPerJob keeps the newest runs and tasks of each job and sessions of each source', async () => {
    await fill(cat);
    const r = await cat.exportRecords({ historyPerJob: 2 });
    expect(r.runs.map((x) => x.id).sort()).toEqual(['run-3', 'run-4', 'run-q']);
    expect(r.sessions.map((x) => x.id).sort()).toEqual(['s-3', 's-4', 's-other']);
    expect(r.tasks.map((x) => x.id).sort()).toEqual(['gc-1', 'gc-2', 'verify-3', 'verify-4']);
    expect(r.agents).toHaveLength(2);
    expect((await cat.exportRecords({ historyPerJob: 0 })).runs).toEqual([]);
  });

  it('never merges: a catalog with any record refuses, and nothing is written', async () => {
    await fill(cat);
    const records = await cat.exportRecords();
    const b = await fresh('b');
    await b.putRun({ id: 'mine', agent: 'kvm-09', job: 'j', sources: [], state: 'queued', createdAt: at(0), sessions: [] });
    await expect(b.importRecords(records)).rejects.toThrow(CatalogNotEmptyError);
    await expect(b.importRecords(records)).rejects.toThrow(/holds runs already/);
    expect(await b.listAgents()).toEqual([]);
    // The snapshot cache and meta do not count.
    const c = await fresh('c');
    await c.putMeta('x', 1);
    await c.replaceSnapshots(undefined, [
      {
        job: 'db',
        id: '0123456789abcdef',
        key: 'snapshots/db/x',
        source: { name: 'app', kind: 'stream' },
        startedAt: at(0),
        finishedAt: at(1),
        logicalBytes: 1,
        store: STORE,
      },
    ]);
    expect(await c.isEmpty()).toBe(true);
    await c.importRecords(records);
  });

  it('refuses bad records and shared token hashes before writing anything', async () => {
    const b = await fresh('b');
    const empty: CatalogRecords = { agents: [], apiTokens: [], jobs: [], policies: [], runs: [], sessions: [], tasks: [] };
    await expect(b.importRecords({ ...empty, agents: [{ name: 'Bad', tokenHash: sha('x'), createdAt: at(0) }] })).rejects.toThrow(/agents\[0\]\.name/);
    await expect(b.importRecords({ ...empty, policies: [{ name: 'p', document: {}, createdAt: 'yesterday', updatedAt: at(0) }] })).rejects.toThrow(
      CatalogValidationError,
    );
    await expect(b.importRecords({ ...empty, runs: undefined } as unknown as CatalogRecords)).rejects.toThrow(/runs must be an array/);
    await expect(
      b.importRecords({ ...empty, agents: [{ name: 'a', tokenHash: sha('same'), createdAt: at(0) }], apiTokens: [{ hash: sha('same'), createdAt: at(0) }] }),
    ).rejects.toThrow(TokenInUseError);
    // A revoked agent's old token may be anybody's.
    await b.importRecords({
      ...empty,
      agents: [{ name: 'a', tokenHash: sha('same'), createdAt: at(0), revokedAt: at(1) }],
      apiTokens: [{ hash: sha('same'), createdAt: at(0) }],
    });
    expect(await b.checkConsistency()).toEqual([]);
  });
});
