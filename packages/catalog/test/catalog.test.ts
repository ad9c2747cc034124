import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AgentExistsError,
  AgentNotFoundError,
  AgentRevokedError,
  Catalog,
  CatalogClosedError,
  CatalogError,
  CatalogLockedError,
  CatalogOpenError,
  CatalogSchemaError,
  CatalogValidationError,
  InvalidNameError,
  JobNotFoundError,
  SCHEMA_VERSION,
  TokenInUseError,
  type RunRecord,
  type SessionInput,
  type SnapshotRecord,
} from '../dist/index.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const STORE = '0123456789abcdef0123456789abcdef';

let dir: string;
let cat: Catalog;
const extra: Catalog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-catalog-'));
  cat = await Catalog.open(join(dir, 'db'));
});

afterEach(async () => {
  await cat.close();
  for (const c of extra.splice(0)) await c.close();
  await rm(dir, { recursive: true, force: true });
});

async function reopen(): Promise<Catalog> {
  await cat.close();
  cat = await Catalog.open(join(dir, 'db'));
  return cat;
}

function snap(over: Partial<SnapshotRecord> & { id: string; startedAt: string }): SnapshotRecord {
  return {
    job: 'nightly',
    key: `snapshots/${over.job ?? 'nightly'}/x-${over.id}`,
    source: { name: 'vm1', kind: 'block-device' },
    finishedAt: over.startedAt,
    logicalBytes: 1000,
    store: STORE,
    ...over,
  };
}

function session(over: Partial<SessionInput> & { id: string; startedAt: string }): SessionInput {
  return {
    agent: 'host-1',
    job: 'nightly',
    source: 'vm1',
    store: STORE,
    state: 'running',
    bytesRead: 0,
    bytesSent: 0,
    bytesNew: 0,
    bytesStored: 0,
    chunks: 0,
    chunksNew: 0,
    ...over,
  };
}

function run(over: Partial<RunRecord> & { id: string; createdAt: string }): RunRecord {
  return { agent: 'host-1', job: 'nightly', sources: ['vm1'], state: 'queued', sessions: [], ...over };
}

const hex16 = (n: number) => n.toString(16).padStart(16, '0');

describe('opening', () => {
  it('creates a catalog with the current schema version and keeps data across reopen', async () => {
    const schema = await cat.schema();
    expect(schema.version).toBe(SCHEMA_VERSION);
    await cat.addAgent('host-1', sha('t1'));
    await cat.setAdminToken(sha('admin'), { label: 'ops' });
    await cat.putJob({ name: 'nightly', sources: ['vm:*'], agent: 'host-1' });
    await cat.addKnownSources('nightly', ['vm1']);
    await cat.putSnapshot(snap({ id: hex16(1), startedAt: '2024-01-01T00:00:00Z' }));
    await cat.putSession(session({ id: 's1', startedAt: '2024-01-01T00:00:00Z' }));
    await cat.putRun(run({ id: 'r1', createdAt: '2024-01-01T00:00:00Z' }));
    await cat.putMeta('scheduler.enabled', true);

    await reopen();
    expect((await cat.schema()).createdAt).toBe(schema.createdAt);
    expect((await cat.agentByTokenHash(sha('t1')))?.name).toBe('host-1');
    expect(await cat.isAdminTokenHash(sha('admin'))).toBe(true);
    expect((await cat.getJob('nightly'))?.knownSources).toEqual(['vm1']);
    expect(await cat.listSnapshots()).toHaveLength(1);
    expect((await cat.getSession('s1'))?.state).toBe('running');
    expect((await cat.nextQueuedRun('host-1'))?.id).toBe('r1');
    expect(await cat.getMeta('scheduler.enabled')).toBe(true);
    expect(await cat.checkConsistency()).toEqual([]);
  });

  it('refuses a second open of the same directory in this process, naming the directory', async () => {
    const err = await Catalog.open(join(dir, 'db')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogLockedError);
    expect(err).toBeInstanceOf(CatalogError);
    expect((err as CatalogLockedError).dir).toBe(join(dir, 'db'));
    expect((err as Error).message).toBe(`catalog ${join(dir, 'db')} is in use by another process (is a media server already running?)`);
    // The first one is unaffected.
    await cat.putMeta('k', 1);
    expect(await cat.getMeta('k')).toBe(1);
  });

  it('refuses a directory that another process has open, and opens once it lets go', async () => {
    const other = join(dir, 'other');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { Catalog } = await import(${JSON.stringify(distIndex)});
         const c = await Catalog.open(${JSON.stringify(other)});
         process.stdout.write('open\\n');
         process.stdin.resume();
         process.stdin.on('end', async () => { await c.close(); process.exit(0); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        child.on('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      const err = await Catalog.open(other).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CatalogLockedError);
      expect((err as Error).message).toMatch(/catalog .*other is in use by another process \(is a media server already running\?\)/);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    }
    const again = await Catalog.open(other);
    extra.push(again);
    expect((await again.schema()).version).toBe(SCHEMA_VERSION);
  });

  it('refuses a catalog written by a newer schema version', async () => {
    await cat.close();
    const raw = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
    await raw.open();
    await raw.put('schema', { version: SCHEMA_VERSION + 1, createdAt: '2030-01-01T00:00:00.000Z' });
    await raw.close();
    const err = await Catalog.open(join(dir, 'db')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogSchemaError);
    expect(err).toMatchObject({ found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION, code: 'catalog_unavailable' });
    expect((err as Error).message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
    expect((err as Error).message).toContain('upgrade hoard');
    // It closed the database on the way out: a raw open works.
    const check = new Level(join(dir, 'db'));
    await check.open();
    await check.close();
    cat = await Catalog.open(join(dir, 'fresh'));
  });

  it('refuses LevelDB data without a schema record, a damaged schema record and a plain file', async () => {
    const foreign = join(dir, 'foreign');
    const raw = new Level<string, unknown>(foreign, { valueEncoding: 'json' });
    await raw.put('something', 1);
    await raw.close();
    await expect(Catalog.open(foreign)).rejects.toThrow(/no catalog schema record: it is not a hoard catalog/);

    const damaged = join(dir, 'damaged');
    const raw2 = new Level<string, unknown>(damaged, { valueEncoding: 'json' });
    await raw2.put('schema', { version: 'one' });
    await raw2.close();
    await expect(Catalog.open(damaged)).rejects.toBeInstanceOf(CatalogOpenError);

    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const err = await Catalog.open(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CatalogOpenError);
    expect((err as Error).message).toContain(`cannot open catalog ${file}`);
  });

  it('fails clearly after close', async () => {
    await cat.close();
    await cat.close(); // idempotent
    await expect(cat.getAgent('host-1')).rejects.toBeInstanceOf(CatalogClosedError);
    await expect(cat.putMeta('k', 1)).rejects.toThrow(/is closed: open it again/);
    cat = await Catalog.open(join(dir, 'db'));
  });
});

describe('agents', () => {
  it('adds, looks up by token, lists, touches', async () => {
    const a = await cat.addAgent('host-1', sha('t1'));
    expect(a).toMatchObject({ name: 'host-1', tokenHash: sha('t1') });
    expect(Date.parse(a.createdAt)).not.toBeNaN();
    await cat.addAgent('host-0', sha('t0').toUpperCase()); // stored lowercase
    expect((await cat.getAgent('host-0'))?.tokenHash).toBe(sha('t0'));
    expect(await cat.getAgent('nobody')).toBeUndefined();
    expect((await cat.agentByTokenHash(sha('t1')))?.name).toBe('host-1');
    expect(await cat.agentByTokenHash(sha('wrong'))).toBeUndefined();
    expect((await cat.listAgents()).map((x) => x.name)).toEqual(['host-0', 'host-1']);

    const touched = await cat.touchAgent('host-1', { lastSeenAt: '2024-03-01T10:00:00.000Z', hostname: 'pve1', version: '0.1.0' });
    expect(touched).toMatchObject({ lastSeenAt: '2024-03-01T10:00:00.000Z', hostname: 'pve1', version: '0.1.0' });
    const again = await cat.touchAgent('host-1');
    expect(again.hostname).toBe('pve1');
    expect(Date.parse(again.lastSeenAt!)).toBeGreaterThan(Date.parse('2024-03-01T10:00:00.000Z'));
    await expect(cat.touchAgent('nobody')).rejects.toBeInstanceOf(AgentNotFoundError);
    await expect(cat.touchAgent('host-1', { lastSeenAt: 'yesterday' })).rejects.toThrow(/lastSeenAt must be an ISO-8601 UTC time/);
  });

  it('refuses a duplicate live agent and a token that is already in use', async () => {
    await cat.addAgent('host-1', sha('t1'));
    await expect(cat.addAgent('host-1', sha('t2'))).rejects.toBeInstanceOf(AgentExistsError);
    await expect(cat.addAgent('host-1', sha('t2'))).rejects.toThrow('agent host-1 already exists');
    await expect(cat.addAgent('host-2', sha('t1'))).rejects.toBeInstanceOf(TokenInUseError);
    await cat.setAdminToken(sha('admin'));
    await expect(cat.addAgent('host-2', sha('admin'))).rejects.toThrow(/already in use by an admin token/);
    await expect(cat.setAdminToken(sha('t1'))).rejects.toThrow(/already in use by agent host-1/);
  });

  it('revoke removes the token index entry; re-adding a revoked agent works', async () => {
    await cat.addAgent('host-1', sha('t1'));
    const revoked = await cat.revokeAgent('host-1');
    expect(revoked.revokedAt).toBeDefined();
    expect(await cat.agentByTokenHash(sha('t1'))).toBeUndefined();
    expect((await cat.revokeAgent('host-1')).revokedAt).toBe(revoked.revokedAt); // idempotent
    expect(await cat.listAgents({ includeRevoked: false })).toEqual([]);
    expect(await cat.listAgents()).toHaveLength(1);
    await expect(cat.rotateAgentToken('host-1', sha('t2'))).rejects.toBeInstanceOf(AgentRevokedError);
    await expect(cat.revokeAgent('nobody')).rejects.toBeInstanceOf(AgentNotFoundError);
    expect(await cat.checkConsistency()).toEqual([]);

    // The old token is free again, and the name can be reused.
    const back = await cat.addAgent('host-1', sha('t1'));
    expect(back.revokedAt).toBeUndefined();
    expect((await cat.agentByTokenHash(sha('t1')))?.name).toBe('host-1');
    expect(await cat.checkConsistency()).toEqual([]);
  });

  it('rotate swaps the token index entry', async () => {
    await cat.addAgent('host-1', sha('t1'));
    await cat.addAgent('host-2', sha('t2'));
    const rotated = await cat.rotateAgentToken('host-1', sha('t1b'));
    expect(rotated.tokenHash).toBe(sha('t1b'));
    expect(await cat.agentByTokenHash(sha('t1'))).toBeUndefined();
    expect((await cat.agentByTokenHash(sha('t1b')))?.name).toBe('host-1');
    await expect(cat.rotateAgentToken('host-1', sha('t2'))).rejects.toBeInstanceOf(TokenInUseError);
    expect((await cat.rotateAgentToken('host-1', sha('t1b'))).tokenHash).toBe(sha('t1b')); // same: no-op
    await expect(cat.rotateAgentToken('nobody', sha('x'))).rejects.toBeInstanceOf(AgentNotFoundError);
    expect(await cat.checkConsistency()).toEqual([]);
  });

  it('token index stays consistent under random add / revoke / rotate sequences', async () => {
    const names = ['a', 'b', 'c'];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), name: fc.constantFrom(...names), token: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ kind: fc.constant('revoke' as const), name: fc.constantFrom(...names) }),
      fc.record({ kind: fc.constant('rotate' as const), name: fc.constantFrom(...names), token: fc.integer({ min: 0, max: 6 }) }),
    );
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        // A fresh catalog per run, so that a counterexample shrinks to the ops that matter.
        const c = await Catalog.open(join(dir, `prop-${++round}`));
        try {
          const tok = (t: number) => sha(`token-${t}`);
          const model = new Map<string, { token: number; live: boolean }>();
          const tokenOwner = (t: number) => [...model].find(([, m]) => m.live && m.token === t)?.[0];
          for (const o of ops) {
            const m = model.get(o.name);
            if (o.kind === 'add') {
              const expectErr = m?.live ? AgentExistsError : tokenOwner(o.token) !== undefined ? TokenInUseError : undefined;
              const result = c.addAgent(o.name, tok(o.token));
              if (expectErr) await expect(result).rejects.toBeInstanceOf(expectErr);
              else {
                await result;
                model.set(o.name, { token: o.token, live: true });
              }
            } else if (o.kind === 'revoke') {
              const result = c.revokeAgent(o.name);
              if (!m) await expect(result).rejects.toBeInstanceOf(AgentNotFoundError);
              else {
                await result;
                m.live = false;
              }
            } else {
              const result = c.rotateAgentToken(o.name, tok(o.token));
              const owner = tokenOwner(o.token);
              if (!m) await expect(result).rejects.toBeInstanceOf(AgentNotFoundError);
              else if (!m.live) await expect(result).rejects.toBeInstanceOf(AgentRevokedError);
              else if (owner !== undefined && owner !== o.name) await expect(result).rejects.toBeInstanceOf(TokenInUseError);
              else {
                await result;
                m.token = o.token;
              }
            }
          }
          for (let t = 0; t <= 6; t++) {
            expect((await c.agentByTokenHash(tok(t)))?.name).toBe(tokenOwner(t));
          }
          expect(await c.checkConsistency()).toEqual([]);
        } finally {
          await c.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('validates agent names with a clear message', async () => {
    for (const bad of ['', 'Host', '-x', '.x', 'a/b', 'a b', 'x'.repeat(64), 'ü']) {
      const err = await cat.addAgent(bad, sha('t')).catch((e: unknown) => e);
      expect(err, bad).toBeInstanceOf(InvalidNameError);
      expect((err as Error).message).toBe(
        `invalid agent name ${JSON.stringify(bad)}: use 1-63 characters of lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`,
      );
    }
    for (const good of ['a', '0', 'pve-01.dc1_x', 'x'.repeat(63)]) await cat.addAgent(good, sha(good));
    await expect(cat.addAgent('ok', 'abc')).rejects.toThrow('token hash must be a hex SHA-256 digest (64 hex digits), got "abc"');
  });
});

describe('admin tokens', () => {
  it('adds several, checks, lists and revokes', async () => {
    const a = await cat.setAdminToken(sha('a'), { label: 'alice' });
    await cat.setAdminToken(sha('b'));
    expect(await cat.setAdminToken(sha('a'))).toEqual(a); // idempotent
    expect(await cat.isAdminTokenHash(sha('a'))).toBe(true);
    expect(await cat.isAdminTokenHash(sha('c'))).toBe(false);
    expect((await cat.listAdminTokens()).map((t) => t.hash).sort()).toEqual([sha('a'), sha('b')].sort());
    expect((await cat.listAdminTokens()).find((t) => t.hash === sha('a'))?.label).toBe('alice');
    expect(await cat.revokeAdminToken(sha('a'))).toBe(true);
    expect(await cat.revokeAdminToken(sha('a'))).toBe(false);
    expect(await cat.isAdminTokenHash(sha('a'))).toBe(false);
    expect(await cat.listAdminTokens()).toHaveLength(1);
  });
});

describe('jobs', () => {
  it('puts, updates, lists, deletes', async () => {
    const j = await cat.putJob({ name: 'nightly', store: 'global', agent: 'host-1', sources: ['vm:*'] });
    expect(j).toMatchObject({ name: 'nightly', store: 'global', agent: 'host-1', sources: ['vm:*'], knownSources: [] });
    expect(j.createdAt).toBe(j.updatedAt);
    await cat.addKnownSources('nightly', ['vm1']);
    await new Promise((r) => setTimeout(r, 5));
    const j2 = await cat.putJob({ name: 'nightly', sources: ['vm:*', 'pg:main'] });
    expect(j2.createdAt).toBe(j.createdAt);
    expect(j2.updatedAt > j.updatedAt).toBe(true);
    expect(j2.knownSources).toEqual(['vm1']);
    expect(j2.store).toBeUndefined();
    await cat.putJob({ name: 'Archive.2024', sources: [] });
    await cat.putJob({ name: 'a', sources: [] });
    expect((await cat.listJobs()).map((x) => x.name)).toEqual(['Archive.2024', 'a', 'nightly']);
    expect(await cat.deleteJob('a')).toBe(true);
    expect(await cat.deleteJob('a')).toBe(false);
    expect(await cat.getJob('a')).toBeUndefined();
  });

  it('addKnownSources returns only the new names, and does not lose concurrent additions', async () => {
    await cat.putJob({ name: 'nightly', sources: ['vm:*'] });
    expect(await cat.addKnownSources('nightly', ['vm1', 'vm2', 'vm1'])).toEqual(['vm1', 'vm2']);
    expect(await cat.addKnownSources('nightly', ['vm2', 'vm3'])).toEqual(['vm3']);
    expect(await cat.addKnownSources('nightly', [])).toEqual([]);
    const added = await Promise.all(Array.from({ length: 20 }, (_, i) => cat.addKnownSources('nightly', [`x${i}`, 'vm1'])));
    expect(added.flat().sort()).toEqual(Array.from({ length: 20 }, (_, i) => `x${i}`).sort());
    expect((await cat.getJob('nightly'))?.knownSources).toHaveLength(23);
    await expect(cat.addKnownSources('nope', ['a'])).rejects.toBeInstanceOf(JobNotFoundError);
  });

  it('validates job definitions', async () => {
    await expect(cat.putJob({ name: 'a/b', sources: [] })).rejects.toThrow(
      `invalid job name "a/b": use 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
    await expect(cat.putJob({ name: 'x'.repeat(129), sources: [] })).rejects.toBeInstanceOf(InvalidNameError);
    await expect(cat.putJob({ name: 'ok', sources: 'vm1' as unknown as string[] })).rejects.toThrow(/job.sources must be an array/);
    await expect(cat.putJob({ name: 'ok', sources: [], agent: 'Bad' })).rejects.toThrow(/invalid job.agent "Bad"/);
  });
});

describe('snapshots', () => {
  it('puts, gets, deletes; an update that moves startedAt moves the index entries', async () => {
    const s = snap({ id: hex16(1), startedAt: '2024-01-02T00:00:00.000Z', sessionId: 'sess-1' });
    expect(await cat.putSnapshot(s)).toEqual(s);
    expect(await cat.getSnapshot('nightly', hex16(1))).toEqual(s);
    expect(await cat.getSnapshot('nightly', hex16(2))).toBeUndefined();
    await cat.putSnapshot(snap({ id: hex16(2), startedAt: '2024-01-03T00:00:00.000Z' }));
    await cat.putSnapshot({ ...s, startedAt: '2024-01-04T00:00:00.000Z' });
    expect((await cat.listSnapshots()).map((x) => x.id)).toEqual([hex16(2), hex16(1)]);
    expect((await cat.listSnapshots({ job: 'nightly' })).map((x) => x.id)).toEqual([hex16(2), hex16(1)]);
    expect(await cat.checkConsistency()).toEqual([]);
    expect(await cat.deleteSnapshot('nightly', hex16(1))).toBe(true);
    expect(await cat.deleteSnapshot('nightly', hex16(1))).toBe(false);
    expect((await cat.listSnapshots()).map((x) => x.id)).toEqual([hex16(2)]);
    expect(await cat.checkConsistency()).toEqual([]);
  });

  it('validates snapshot records', async () => {
    await expect(cat.putSnapshot(snap({ id: 'XYZ', startedAt: '2024-01-01T00:00:00Z' }))).rejects.toThrow(
      'invalid snapshot.id "XYZ": use 16 lowercase hex digits',
    );
    await expect(cat.putSnapshot(snap({ id: hex16(1), startedAt: '2024-02-30T00:00:00Z' }))).rejects.toThrow(
      'snapshot.startedAt must be an ISO-8601 UTC time like 2024-05-01T02:00:00.000Z, got "2024-02-30T00:00:00Z"',
    );
    await expect(cat.putSnapshot(snap({ id: hex16(1), startedAt: '2024-01-01T00:00:00+01:00' }))).rejects.toBeInstanceOf(CatalogValidationError);
    await expect(cat.putSnapshot(snap({ id: hex16(1), startedAt: '2024-01-01T00:00:00Z', logicalBytes: -1 }))).rejects.toThrow(
      'snapshot.logicalBytes must be a non-negative integer, got -1',
    );
    await expect(cat.putSnapshot(snap({ id: hex16(1), startedAt: '2024-01-01T00:00:00Z', store: 'XY' }))).rejects.toThrow(
      /snapshot.store must be lowercase hex/,
    );
    await expect(cat.listSnapshots({ since: 'now' })).rejects.toThrow(/since must be an ISO-8601 UTC time/);
  });

  it('replaceSnapshots replaces one job (others untouched) or everything, in one batch', async () => {
    await cat.putSnapshot(snap({ job: 'a', id: hex16(1), startedAt: '2024-01-01T00:00:00Z' }));
    await cat.putSnapshot(snap({ job: 'a', id: hex16(2), startedAt: '2024-01-02T00:00:00Z' }));
    await cat.putSnapshot(snap({ job: 'a.b', id: hex16(3), startedAt: '2024-01-03T00:00:00Z' }));
    await cat.putSnapshot(snap({ job: 'b', id: hex16(4), startedAt: '2024-01-04T00:00:00Z' }));

    const fromBucket = [
      snap({ job: 'a', id: hex16(5), startedAt: '2024-01-05T00:00:00Z' }),
      snap({ job: 'a', id: hex16(2), startedAt: '2024-01-02T00:00:00Z', logicalBytes: 7 }),
    ];
    expect(await cat.replaceSnapshots('a', fromBucket)).toEqual({ removed: 2, written: 2 });
    expect((await cat.listSnapshots()).map((s) => `${s.job}:${s.id}`)).toEqual([`a:${hex16(2)}`, `a.b:${hex16(3)}`, `b:${hex16(4)}`, `a:${hex16(5)}`]);
    expect((await cat.getSnapshot('a', hex16(2)))?.logicalBytes).toBe(7);
    expect(await cat.checkConsistency()).toEqual([]);

    await expect(cat.replaceSnapshots('a', [snap({ job: 'b', id: hex16(9), startedAt: '2024-01-01T00:00:00Z' })])).rejects.toThrow(
      "records[0] is a snapshot of job b, but replaceSnapshots was asked to replace job a's snapshots",
    );

    const all = [
      snap({ job: 'z', id: hex16(7), startedAt: '2024-02-01T00:00:00Z' }),
      snap({ job: 'z', id: hex16(7), startedAt: '2024-02-02T00:00:00Z' }), // same record twice: last wins
    ];
    expect(await cat.replaceSnapshots(undefined, all)).toEqual({ removed: 4, written: 1 });
    expect(await cat.listSnapshots()).toEqual([all[1]]);
    expect(await cat.checkConsistency()).toEqual([]);
    expect(await cat.replaceSnapshots(undefined, [])).toEqual({ removed: 1, written: 0 });
    expect(await cat.listSnapshots()).toEqual([]);
  });

  it('lists in time order across jobs, filtered by job, source, since and until (property)', async () => {
    const t0 = Date.parse('2024-01-01T00:00:00Z');
    const jobs = ['a', 'a.b', 'B', 'nightly'];
    const sources = ['vm1', 'vm2', 'db'];
    const timeArb = fc.integer({ min: 0, max: 40 }).map((k) => t0 + k * 500); // many ties, some on whole seconds
    const iso = (ms: number, short: boolean) => {
      const s = new Date(ms).toISOString();
      return short && ms % 1000 === 0 ? s.replace('.000Z', 'Z') : s;
    };
    const recordsArb = fc.uniqueArray(fc.integer({ min: 0, max: 0xffffff }), { maxLength: 40 }).chain((ids) =>
      fc.tuple(
        ...ids.map((id) =>
          fc.record({ job: fc.constantFrom(...jobs), source: fc.constantFrom(...sources), t: timeArb, short: fc.boolean() }).map(
            (r): SnapshotRecord =>
              snap({
                job: r.job,
                id: hex16(id),
                startedAt: iso(r.t, r.short),
                source: { name: r.source, kind: 'stream' },
              }),
          ),
        ),
      ),
    );
    const queryArb = fc.record(
      {
        job: fc.constantFrom(...jobs),
        source: fc.constantFrom(...sources),
        since: timeArb,
        until: timeArb,
        limit: fc.integer({ min: 0, max: 10 }),
        newestFirst: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const sortKey = (s: SnapshotRecord) => `${new Date(Date.parse(s.startedAt)).toISOString()}/${s.job}/${s.id}`;

    await fc.assert(
      fc.asyncProperty(
        recordsArb.chain((records) => fc.tuple(fc.constant(records), fc.shuffledSubarray(records, { minLength: records.length }))),
        fc.array(queryArb, { minLength: 1, maxLength: 5 }),
        async ([records, order], queries) => {
          await cat.replaceSnapshots(undefined, []);
          for (const r of order) await cat.putSnapshot(r);
          const sorted = [...records].sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : sortKey(x) > sortKey(y) ? 1 : 0));
          expect(await cat.listSnapshots()).toEqual(sorted);
          for (const q of queries) {
            let expected = sorted.filter(
              (s) =>
                (q.job === undefined || s.job === q.job) &&
                (q.source === undefined || s.source.name === q.source) &&
                (q.since === undefined || Date.parse(s.startedAt) >= q.since) &&
                (q.until === undefined || Date.parse(s.startedAt) < q.until),
            );
            if (q.newestFirst) expected.reverse();
            if (q.limit !== undefined) expected = expected.slice(0, q.limit);
            const got = await cat.listSnapshots({
              ...q,
              since: q.since === undefined ? undefined : new Date(q.since).toISOString(),
              until: q.until === undefined ? undefined : new Date(q.until).toISOString(),
            });
            expect(got).toEqual(expected);
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(await cat.checkConsistency()).toEqual([]);
  });
});

describe('sessions', () => {
  it('upserts with computed dedupRatio and durationMs, keeping the indexes in step', async () => {
    const s = await cat.putSession(session({ id: 's1', startedAt: '2024-01-01T00:00:00.000Z', bytesRead: 1000 }));
    expect(s.dedupRatio).toBe(1000);
    expect(s.durationMs).toBeUndefined();
    const done = await cat.putSession(
      session({
        id: 's1',
        startedAt: '2024-01-01T00:00:00.000Z',
        finishedAt: '2024-01-01T00:01:30.500Z',
        state: 'committed',
        bytesRead: 1000,
        bytesSent: 300,
        bytesNew: 400,
        bytesStored: 250,
        chunks: 10,
        chunksNew: 4,
        snapshot: hex16(9),
        dedupRatio: 123, // ignored: always computed
      }),
    );
    expect(done).toMatchObject({ dedupRatio: 2.5, durationMs: 90_500, state: 'committed', snapshot: hex16(9) });
    expect(await cat.getSession('s1')).toEqual(done);
    expect(await cat.getSession('nope')).toBeUndefined();

    // Moving a session to another job/agent/time moves its index entries.
    await cat.putSession(session({ id: 's1', job: 'other', agent: 'host-2', startedAt: '2024-01-05T00:00:00.000Z' }));
    expect(await cat.listSessions({ job: 'nightly' })).toEqual([]);
    expect(await cat.listSessions({ agent: 'host-1' })).toEqual([]);
    expect((await cat.listSessions({ job: 'other', agent: 'host-2' })).map((x) => x.id)).toEqual(['s1']);
    expect(await cat.checkConsistency()).toEqual([]);
    await expect(cat.putSession(session({ id: 's2', startedAt: '2024-01-01T00:00:00Z', state: 'done' as 'running' }))).rejects.toThrow(
      'session.state must be one of running, committed, failed, expired, got "done"',
    );
    await expect(cat.putSession(session({ id: 'bad/id', startedAt: '2024-01-01T00:00:00Z' }))).rejects.toBeInstanceOf(InvalidNameError);
  });

  it('lists by job, agent, both; oldest or newest first; with a limit', async () => {
    const agents = ['host-1', 'host-2'];
    const jobs = ['j1', 'j2'];
    for (let i = 0; i < 12; i++) {
      // Inserted out of order.
      const k = (i * 7) % 12;
      await cat.putSession(
        session({ id: `s${k}`, agent: agents[k % 2], job: jobs[Math.floor(k / 6)], startedAt: `2024-01-01T00:00:${String(k).padStart(2, '0')}Z` }),
      );
    }
    const ids = async (q: Parameters<Catalog['listSessions']>[0]) => (await cat.listSessions(q)).map((s) => s.id);
    expect(await ids({})).toEqual(Array.from({ length: 12 }, (_, k) => `s${k}`));
    expect(await ids({ job: 'j1' })).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect(await ids({ agent: 'host-2' })).toEqual(['s1', 's3', 's5', 's7', 's9', 's11']);
    expect(await ids({ job: 'j2', agent: 'host-1' })).toEqual(['s6', 's8', 's10']);
    expect(await ids({ agent: 'host-1', newestFirst: true, limit: 2 })).toEqual(['s10', 's8']);
    expect(await ids({ limit: 0 })).toEqual([]);
  });
});

describe('runs', () => {
  it('puts, gets, lists by agent and state, and finds the next queued run', async () => {
    await cat.putRun(run({ id: 'r3', createdAt: '2024-01-01T00:00:03Z' }));
    await cat.putRun(run({ id: 'r1', createdAt: '2024-01-01T00:00:01Z' }));
    await cat.putRun(run({ id: 'r2', createdAt: '2024-01-01T00:00:02Z', agent: 'host-2' }));
    await cat.putRun(run({ id: 'r0', createdAt: '2024-01-01T00:00:00Z', state: 'succeeded', result: { snapshots: 2 } }));
    expect((await cat.getRun('r0'))?.result).toEqual({ snapshots: 2 });
    expect(await cat.getRun('nope')).toBeUndefined();
    expect((await cat.nextQueuedRun('host-1'))?.id).toBe('r1');
    expect((await cat.nextQueuedRun('host-2'))?.id).toBe('r2');
    expect(await cat.nextQueuedRun('host-3')).toBeUndefined();

    const ids = async (q: Parameters<Catalog['listRuns']>[0]) => (await cat.listRuns(q)).map((r) => r.id);
    expect(await ids({})).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(await ids({ agent: 'host-1' })).toEqual(['r0', 'r1', 'r3']);
    expect(await ids({ state: 'queued' })).toEqual(['r1', 'r2', 'r3']);
    expect(await ids({ agent: 'host-1', state: 'queued' })).toEqual(['r1', 'r3']);
    expect(await ids({ newestFirst: true, limit: 2 })).toEqual(['r3', 'r2']);

    // A state change moves it between the state indexes.
    await cat.putRun(run({ id: 'r1', createdAt: '2024-01-01T00:00:01Z', state: 'running', startedAt: '2024-01-01T00:01:00Z', sessions: ['s1'] }));
    expect((await cat.nextQueuedRun('host-1'))?.id).toBe('r3');
    expect(await ids({ state: 'running' })).toEqual(['r1']);
    expect(await cat.checkConsistency()).toEqual([]);
    await expect(cat.listRuns({ state: 'done' as 'queued' })).rejects.toThrow(/state must be one of queued, running/);
    await expect(cat.putRun(run({ id: 'r9', createdAt: '2024-01-01T00:00:00Z', result: 1n }))).rejects.toThrow(/run.result must be JSON-serializable/);
  });

  it('claimNextRun hands each queued run to exactly one caller', async () => {
    for (let i = 0; i < 5; i++) await cat.putRun(run({ id: `r${i}`, createdAt: `2024-01-01T00:00:0${i}Z` }));
    const claimed = await Promise.all(Array.from({ length: 7 }, () => cat.claimNextRun('host-1', '2024-01-02T00:00:00Z')));
    expect(claimed.map((r) => r?.id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', undefined, undefined]);
    expect(claimed[0]).toMatchObject({ state: 'running', startedAt: '2024-01-02T00:00:00Z' });
    expect(await cat.listRuns({ state: 'queued' })).toEqual([]);
    expect(await cat.checkConsistency()).toEqual([]);
  });
});

describe('meta', () => {
  it('stores any JSON value per key', async () => {
    expect(await cat.getMeta('x')).toBeUndefined();
    await cat.putMeta('retention.default', { keep: 7 });
    await cat.putMeta('flag', false);
    expect(await cat.getMeta<{ keep: number }>('retention.default')).toEqual({ keep: 7 });
    expect(await cat.getMeta('flag')).toBe(false);
    expect(await cat.deleteMeta('flag')).toBe(true);
    expect(await cat.deleteMeta('flag')).toBe(false);
    await expect(cat.putMeta('has space', 1)).rejects.toThrow(/meta key must be 1-200 printable ASCII/);
    await expect(cat.putMeta('k', undefined)).rejects.toThrow(/must be a JSON value/);
  });
});

describe('tasks', () => {
  it('lists by job and kind in time order, keeps the indexes consistent across updates, refuses bad records', async () => {
    const t = (id: string, kind: 'verify' | 'prune' | 'gc', minute: number, job?: string) => ({
      id,
      kind,
      ...(job ? { job } : {}),
      state: 'running' as const,
      startedAt: new Date(Date.UTC(2026, 10, 20, 3, minute)).toISOString(),
    });
    await cat.putTask(t('v1', 'verify', 1, 'shop-db'));
    await cat.putTask(t('p1', 'prune', 2, 'shop-db'));
    await cat.putTask(t('g1', 'gc', 3));
    await cat.putTask(t('v2', 'verify', 4, 'web-vm'));
    await cat.putTask({
      ...t('v1', 'verify', 1, 'shop-db'),
      state: 'failed',
      finishedAt: new Date(Date.UTC(2026, 10, 20, 3, 5)).toISOString(),
      error: 'pack x is damaged',
      summary: '1 problem',
    });
    expect((await cat.listTasks()).map((x) => x.id)).toEqual(['v1', 'p1', 'g1', 'v2']);
    expect((await cat.listTasks({ job: 'shop-db', newestFirst: true })).map((x) => x.id)).toEqual(['p1', 'v1']);
    expect((await cat.listTasks({ kind: 'verify' })).map((x) => x.id)).toEqual(['v1', 'v2']);
    expect(await cat.getTask('v1')).toMatchObject({ state: 'failed', error: 'pack x is damaged', summary: '1 problem' });
    expect(await cat.checkConsistency()).toEqual([]);
    await expect(cat.putTask({ ...t('x', 'verify', 1), kind: 'backup' as never })).rejects.toThrow(/task.kind/);
    await expect(cat.listTasks({ kind: 'nope' as never })).rejects.toThrow(CatalogValidationError);
  });
});
