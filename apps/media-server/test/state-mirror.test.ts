/**
 * The server's own state survives the server (docs/repair.md, "Losing the server's data
 * directory"): a server with agents (one revoked), an operator token, a policy with a
 * database password and a finished run is stopped, its data directory deleted, and a new
 * server on the same bucket
 *
 * - refuses to start without adoptState, naming the state it found (exit 2 in the CLI:
 *   code `conflict`);
 * - with adoptState, takes it over: agents authenticate with their old tokens and back
 *   up, the revoked one stays revoked, the old admin and operator tokens work with their
 *   roles, the policy is there with its password, job history shows the old run.
 *
 * On fs storage, unencrypted and encrypted; in the encrypted repository no object of the
 * bucket holds the password or a token hash in plaintext. Also: a catalog that is not
 * empty never imports (a state it did not write is kept as a copy), and an unchanged
 * catalog or an agent's poll writes no new state.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommitResponse, RunView } from '@hoard/protocol';
import { FsObjectStore, Repository } from '@hoard/repository';
import { MediaServer } from '../dist/index.js';
import {
  addAgent,
  backup,
  call,
  chunkFor,
  commit,
  commitRequest,
  defineJob,
  randomData,
  restoreBytes,
  SCRYPT,
  sendBatches,
  startServer,
  uniqueName,
  type TestServer,
} from './helpers.js';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const FAST = { definitionsDelayMs: 10, historyDelayMs: 10, retryMs: 100 };

/** Every object file under the repository directory (relative key, bytes). */
async function bucketFiles(root: string): Promise<{ key: string; bytes: Buffer }[]> {
  const out: { key: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ key: relative(root, path), bytes: await readFile(path) });
  }
  return out;
}

const stateKeys = async (t: TestServer): Promise<string[]> =>
  (await bucketFiles(t.repoDir))
    .map((f) => f.key)
    .filter((k) => k.startsWith('server/'))
    .sort();

/** A run of `job` by its agent, from claim to finish, with one committed snapshot. */
async function runJob(t: TestServer, agent: { token: string }, job: string): Promise<{ run: string; snapshot: string; data: Buffer }> {
  const claim = await call(t.url, 'GET', '/v1/agent/work?wait=5', { token: agent.token });
  expect(claim.status, JSON.stringify(claim.json)).toBe(200);
  const run = claim.json as unknown as RunView;
  expect(run.job).toBe(job);
  const begun = await call(t.url, 'POST', '/v1/sessions', {
    token: agent.token,
    json: { job, source: { name: 'dump', kind: 'stream' }, chunking: 'db-dump', run: run.id },
  });
  expect(begun.status, JSON.stringify(begun.json)).toBe(201);
  const session = begun.json as never;
  const data = randomData(96 * 1024, 11);
  const chunks = await chunkFor(session, data);
  const { batches } = await sendBatches(t, agent.token, session, chunks);
  const committed = await commit(t, agent.token, session, commitRequest(session, data, chunks, batches));
  expect(committed.status, JSON.stringify(committed.json)).toBe(200);
  const c = committed.json as unknown as CommitResponse;
  const finished = await call(t.url, 'POST', `/v1/runs/${run.id}/finish`, {
    token: agent.token,
    json: { state: 'succeeded', targets: [{ name: 'dump', ok: true, snapshot: c.snapshot, totals: c.totals, dedupRatio: c.dedupRatio, durationMs: 12 }] },
  });
  expect(finished.status, JSON.stringify(finished.json)).toBe(200);
  return { run: run.id, snapshot: c.snapshot.id, data };
}

/** The catalog directory deleted; a new server on the same bucket, as `hoard server start` would. */
async function startOnEmptyDataDir(t: TestServer, passphrase: string | undefined, adoptState: boolean) {
  const objects = await FsObjectStore.open(t.repoDir);
  const repo = await Repository.open(objects, { passphrase, scryptCost: SCRYPT });
  return MediaServer.start({ repo, catalogDir: join(t.dir, 'catalog'), port: 0, logLevel: 'silent', scheduler: false, adoptState, stateMirror: FAST });
}

describe.each([
  { name: 'unencrypted', passphrase: undefined },
  { name: 'encrypted', passphrase: 'state mirror passphrase' },
])('a lost data directory, $name repository', ({ passphrase }) => {
  it('is refused without adoptState, and adopted with it: tokens, roles, policy and history come back', async () => {
    // Uncompressed, so that a secret stored in the clear would show in the bucket's bytes.
    const t = await startServer({ passphrase, compression: 'none', server: { scheduler: false, stateMirror: FAST } });
    try {
      const builder = await addAgent(t);
      const dbHost = await addAgent(t);
      const gone = await addAgent(t);
      expect((await call(t.url, 'DELETE', `/v1/agents/${gone.name}`, { token: t.admin })).status).toBe(200);
      const made = await call(t.url, 'POST', '/v1/tokens', { token: t.admin, json: { role: 'operator', label: 'on-call restores' } });
      expect(made.status, JSON.stringify(made.json)).toBe(201);
      const operator = made.json.token as string;

      const password = `pw-${randomBytes(8).toString('hex')}`;
      const policy = uniqueName('shop');
      const yaml = [
        `name: ${policy}`,
        'sources:',
        `  - agent: ${dbHost.name}`,
        `    specs: ["postgres://backup:${password}@db.example:5432/shop"]`,
        'schedule: {timezone: UTC, full: "0 1 * * 0", incremental: daily}',
        'retention: {keep-last: 3}',
        '',
      ].join('\n');
      const applied = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document: yaml } });
      expect(applied.status, JSON.stringify(applied.json)).toBe(200);

      const job = await defineJob(t, builder.name);
      const first = await runJob(t, builder, job);
      await t.server.close(); // writes what is pending

      const states = await stateKeys(t);
      expect(states, 'one state object: older ones are deleted once the new one is durable').toEqual([
        expect.stringMatching(/^server\/state-\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{16}$/),
      ]);
      const files = await bucketFiles(t.repoDir);
      if (passphrase !== undefined) {
        for (const f of files) {
          for (const secret of [password, sha256(operator), sha256(builder.token), 'on-call restores']) {
            expect(f.bytes.includes(secret), `${f.key} holds ${secret} in plaintext`).toBe(false);
          }
        }
      } else {
        // What docs/repair.md warns of, and what makes the check above mean something.
        expect(files.filter((f) => f.bytes.includes(password)).map((f) => f.key)).toEqual(states);
      }

      await rm(join(t.dir, 'catalog'), { recursive: true, force: true });
      const refused = (await startOnEmptyDataDir(t, passphrase, false).then(
        () => undefined,
        (err: unknown) => err,
      )) as { code?: string; message: string } | undefined;
      expect(refused, 'a start on an empty data directory must be refused').toBeDefined();
      expect(refused!.code).toBe('conflict');
      expect(refused!.message).toContain(`holds the state of a media server (${states[0]}, written `);
      expect(refused!.message).toMatch(/: 2 agents, 2 API tokens, 1 job, 1 policy, 1 run, 0 tasks\)/);
      expect(refused!.message).toContain('start with --adopt-state');
      expect(await stateKeys(t), 'a refused start changes nothing in the bucket').toEqual(states);

      const { server, adminToken } = await startOnEmptyDataDir(t, passphrase, true);
      t.server = server;
      t.url = server.url;
      // A new admin token too: the old one may have been only in the lost <data>/admin-token.
      expect(adminToken).toEqual(expect.stringMatching(/^hoard_admin_/));
      const as = (token: string, method: string, path: string, json?: unknown) => call(t.url, method, path, { token, json });

      // Agents keep their tokens: they authenticate and back up; the revoked one stays out.
      expect((await as(builder.token, 'GET', '/v1/whoami')).json).toEqual({ role: 'agent', agent: builder.name });
      expect((await as(dbHost.token, 'GET', '/v1/whoami')).json).toEqual({ role: 'agent', agent: dbHost.name });
      expect((await as(gone.token, 'GET', '/v1/whoami')).status).toBe(401);
      t.committed = [];
      await backup(t, { token: builder.token, job }, randomData(64 * 1024, 12));
      const restored = await restoreBytes(t, builder.token, job, first.snapshot);
      expect(restored.status).toBe(200);
      expect(restored.bytes.equals(first.data)).toBe(true);

      // API tokens keep their roles.
      expect((await as(t.admin, 'GET', '/v1/whoami')).json).toEqual({ role: 'admin' });
      expect((await as(adminToken!, 'GET', '/v1/whoami')).json).toEqual({ role: 'admin' });
      expect((await as(operator, 'GET', '/v1/whoami')).json).toEqual({ role: 'operator' });
      expect((await as(operator, 'GET', '/v1/jobs')).status).toBe(200);
      expect((await as(operator, 'POST', '/v1/policies', { document: yaml })).status).toBe(403);
      const tokens = (await as(t.admin, 'GET', '/v1/tokens')).json.tokens as { role: string; label: string }[];
      expect(tokens.map((x) => `${x.role}: ${x.label}`).sort()).toEqual([
        'admin: created at first start',
        'admin: created when the server state was adopted',
        'operator: on-call restores',
      ]);

      // The policy, with its password (shown to people redacted), and the job's history.
      const shown = await as(operator, 'GET', `/v1/policies/${policy}`);
      expect(shown.status).toBe(200);
      expect((await server.catalog.getPolicy(policy))?.document).toEqual(
        expect.objectContaining({ sources: [expect.objectContaining({ specs: [`postgres://backup:${password}@db.example:5432/shop`] })] }),
      );
      const history = await as(operator, 'GET', `/v1/jobs/${job}/history`);
      expect(history.status).toBe(200);
      expect(history.json.entries).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'run', id: first.run, state: 'succeeded', snapshots: [first.snapshot] })]),
      );
      expect(await server.catalog.checkConsistency()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe('the mirror', () => {
  it('writes no new state when nothing changed, and none for an agent polling', async () => {
    const t = await startServer({ server: { scheduler: false, stateMirror: FAST } });
    try {
      const agent = await addAgent(t);
      await t.server.stateMirror.flush();
      const before = await stateKeys(t);
      expect(before).toHaveLength(1);
      expect((await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
      await t.server.stateMirror.flush();
      await t.restart();
      await t.server.stateMirror.flush();
      expect(await stateKeys(t)).toEqual(before);
      expect(t.server.stateMirror.counts).toMatchObject({ written: 0, unchanged: 1, failed: 0 });
      // A change: a new state replaces the old one.
      await addAgent(t);
      await t.server.stateMirror.flush();
      const after = await stateKeys(t);
      expect(after).toHaveLength(1);
      expect(after[0]! > before[0]!).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('a catalog that is not empty never imports; a state it did not write is kept as a copy', async () => {
    const t = await startServer({ server: { scheduler: false, stateMirror: FAST } });
    try {
      await addAgent(t, 'kvm-old');
      await t.server.close();
      // An old copy of the data directory ...
      await cp(join(t.dir, 'catalog'), join(t.dir, 'catalog-copy'), { recursive: true });
      await t.restart();
      await addAgent(t, 'kvm-new');
      await t.server.close();
      const newer = await stateKeys(t);
      expect(newer).toHaveLength(1);
      // ... put back: it stays what it is, adoptState or not.
      await rm(join(t.dir, 'catalog'), { recursive: true, force: true });
      await cp(join(t.dir, 'catalog-copy'), join(t.dir, 'catalog'), { recursive: true });
      await rm(join(t.dir, 'catalog-copy'), { recursive: true, force: true });
      const { server } = await startOnEmptyDataDir(t, undefined, true);
      t.server = server;
      expect((await server.catalog.listAgents()).map((a) => a.name)).toEqual(['kvm-old']);
      await server.stateMirror.flush();
      const keys = await stateKeys(t);
      expect(keys).toEqual([expect.stringMatching(/^server\/state-/), newer[0]!.replace('server/state-', 'server/superseded-')]);
      expect(keys[0]! > newer[0]!).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('a damaged state is not adopted: an older readable one is, or the start fails naming it', async () => {
    const passphrase = 'damage passphrase';
    const t = await startServer({ passphrase, server: { scheduler: false, stateMirror: FAST } });
    try {
      await addAgent(t, 'kvm-01');
      await t.server.close();
      const [good] = await stateKeys(t);
      const bytes = await readFile(join(t.repoDir, good!));
      // A later state whose ciphertext has one bit flipped (as a writer without the keys would leave it).
      const bad = `server/state-29991231T235959.999Z-${'0'.repeat(16)}`;
      const flipped = Buffer.from(bytes);
      flipped[flipped.length - 20]! ^= 1;
      const objects = await FsObjectStore.open(t.repoDir);
      await objects.putIfAbsent(bad, flipped);
      await rm(join(t.dir, 'catalog'), { recursive: true, force: true });
      const { server } = await startOnEmptyDataDir(t, passphrase, true);
      t.server = server;
      expect((await server.catalog.listAgents()).map((a) => a.name)).toEqual(['kvm-01']);
      await server.close();
      // Now the good one is gone too (deleted by the write after the adoption, or by hand).
      await rm(join(t.dir, 'catalog'), { recursive: true, force: true });
      await rm(join(t.repoDir, 'server'), { recursive: true, force: true });
      await objects.putIfAbsent(bad, flipped);
      const failed = (await startOnEmptyDataDir(t, passphrase, true).then(
        () => undefined,
        (err: unknown) => err,
      )) as { code?: string; message: string } | undefined;
      expect(failed?.code).toBe('data_damaged');
      expect(failed?.message).toContain(bad);
      expect(failed?.message).toMatch(/AES-GCM tag does not match/);
    } finally {
      await rm(t.dir, { recursive: true, force: true });
    }
  });

  it('an empty catalog with adoptState and no state in the bucket starts as usual', async () => {
    const t = await startServer({ server: { scheduler: false, stateMirror: FAST } });
    try {
      await t.server.close();
      await rm(join(t.repoDir, 'server'), { recursive: true, force: true });
      await rm(join(t.dir, 'catalog'), { recursive: true, force: true });
      const { server, adminToken } = await startOnEmptyDataDir(t, undefined, true);
      t.server = server;
      expect(adminToken).toBeDefined();
      await server.stateMirror.flush();
      expect(await stateKeys(t)).toHaveLength(1);
    } finally {
      await t.close();
    }
  });
});
