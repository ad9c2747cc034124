/**
 * Invariant 1 at each step of the commit order (issue 15, item 8), embedded: a backup to
 * Ceph RGW through test-support/s3-fault-proxy.ts, with one fault injected at one step
 * (a pack put, the index segment put, the chunk-list page put, the manifest put, the
 * commit check around it), with a retry policy of one attempt so that the store cannot
 * mask it. The fault either fails the request before it lands (500) or lets it land and
 * loses the answer (the connection is reset after the server answered).
 *
 * Whatever the step, the backup either completes (its snapshot restores byte for byte) or
 * fails with nothing committed (no new snapshot); verify finds nothing wrong; a retry of
 * the same data succeeds and deduplicates what the failed run made durable and indexed;
 * and GC then removes every leftover, after which verify is clean with no stray pack.
 *
 * Then the same at a fixed fault rate with the normal retry policy (fast backoff): every
 * backup completes; and at a rate the retries cannot always ride out: each backup either
 * completes or commits nothing.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, collectGarbage, Repository, verify, type BackupResult } from '../dist/index.js';
import { restored } from './restored.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from '../dist/s3.js';
import { S3FaultProxy, type FaultAction, type FaultRule } from '../../../test-support/s3-fault-proxy.js';
import { s3StoreOptions, s3TestServer } from '../../../test-support/s3-test-env.js';

const MiB = 1024 * 1024;
const PACK_BYTES = 4 * MiB;
/** Three packs (4 + 4 + 1 MiB) and one index segment and one chunk-list page. */
const SOURCE_BYTES = 9 * MiB;
const BUCKET = `hoard-commit-faults-${randomUUID().slice(0, 8)}`;
/** One attempt per request: a fault injected is a fault the backup sees. */
const NO_RETRY = { maxAttempts: 1 };
/** The normal policy's attempts, with backoff short enough for a test. */
const FAST_RETRY = { maxAttempts: 10, baseDelayMs: 5, throttleBaseDelayMs: 5, maxDelayMs: 40 };

let proxy: S3FaultProxy;
const opened: S3ObjectStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  proxy = await S3FaultProxy.start(s3TestServer().endpoint);
  const store = await S3ObjectStore.open({ ...s3StoreOptions(BUCKET), create: true });
  store.close();
});
afterAll(async () => {
  for (const store of opened.splice(0)) store.close();
  await proxy?.close();
});

const CHILD = fileURLToPath(new URL('./fixtures/s3-backup-child.mjs', import.meta.url));

/** A fresh repository under its own prefix: a store through the proxy, and one direct to RGW for checking. */
async function newRepo(retry: S3ObjectStoreOptions['retry']): Promise<{ faulty: Repository; direct: Repository; prefix: string; childOptions: string }> {
  const prefix = `r${prefixes++}-${randomUUID().slice(0, 8)}`;
  const direct = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix }));
  const faulty = new S3ObjectStore(s3StoreOptions(BUCKET, { prefix, endpoint: proxy.url, retry }));
  opened.push(direct, faulty);
  await Repository.init(direct, { packBytes: PACK_BYTES });
  const childOptions = JSON.stringify(s3StoreOptions(BUCKET, { prefix, endpoint: proxy.url, retry }));
  return { faulty: await Repository.open(faulty), direct: await Repository.open(direct), prefix, childOptions };
}

async function* pieces(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += 256 * 1024) yield bytes.subarray(o, o + 256 * 1024);
}

function run(repo: Repository, bytes: Buffer): Promise<BackupResult> {
  return backup(repo, { stream: pieces(bytes), name: 'src', kind: 'stream' }, { job: 'db', chunking: 'db-dump', workers: 0 });
}

/** verify (with `readData`, every blob read and checked): no finding. */
async function expectClean(repo: Repository, readData = false): Promise<{ unreferencedPacks: string[] }> {
  const report = await verify(await Repository.open(repo.objects), { readData });
  expect(report.findings).toEqual([]);
  return report;
}

async function outcome(work: Promise<BackupResult>): Promise<BackupResult | Error> {
  return work.catch((err: unknown) => err as Error);
}

const CONDEMNED_LIST = /prefix=[^&]*gc\/condemned\//;
const fail: FaultAction = { kind: 'status', status: 500 };
const lost: FaultAction = { kind: 'reset-after' };

interface Step {
  name: string;
  rule: Omit<FaultRule, 'action'>;
  action: FaultAction;
  /** What the backup must do: 'fails' with nothing committed, or 'completes'. */
  expect: 'fails' | 'completes';
  /** The blobs were durable and indexed before the fault: a retry stores nothing new. */
  indexed: boolean;
}

// In commit order (docs/design.md, "Backup"): packs, then the segment listing them, then
// the page, then the check before the manifest, the manifest, the check after it.
const STEPS: Step[] = [
  { name: 'the first pack put fails', rule: { method: 'PUT', key: /\/packs\//, nth: 1 }, action: fail, expect: 'fails', indexed: false },
  { name: 'the first pack lands, its answer is lost', rule: { method: 'PUT', key: /\/packs\//, nth: 1 }, action: lost, expect: 'fails', indexed: false },
  { name: 'the last pack put (sealed by the flush) fails', rule: { method: 'PUT', key: /\/packs\//, nth: 3 }, action: fail, expect: 'fails', indexed: false },
  { name: 'the last pack lands, its answer is lost', rule: { method: 'PUT', key: /\/packs\//, nth: 3 }, action: lost, expect: 'fails', indexed: false },
  { name: 'the index segment put fails', rule: { method: 'PUT', key: /\/index\//, nth: 1 }, action: fail, expect: 'fails', indexed: false },
  { name: 'the index segment lands, its answer is lost', rule: { method: 'PUT', key: /\/index\//, nth: 1 }, action: lost, expect: 'fails', indexed: true },
  { name: 'the chunk-list page put fails', rule: { method: 'PUT', key: /\/chunklists\//, nth: 1 }, action: fail, expect: 'fails', indexed: true },
  {
    name: 'the chunk-list page lands, its answer is lost',
    rule: { method: 'PUT', key: /\/chunklists\//, nth: 1 },
    action: lost,
    expect: 'fails',
    indexed: true,
  },
  // The check before the manifest lists gc/condemned/ (and the one after it does again).
  { name: 'the commit check before the manifest fails', rule: { method: 'GET', query: CONDEMNED_LIST, nth: 1 }, action: fail, expect: 'fails', indexed: true },
  { name: 'the manifest put fails', rule: { method: 'PUT', key: /\/snapshots\//, nth: 1 }, action: fail, expect: 'fails', indexed: true },
  // The manifest is there: the backup must see that it is, and complete.
  { name: 'the manifest lands, its answer is lost', rule: { method: 'PUT', key: /\/snapshots\//, nth: 1 }, action: lost, expect: 'completes', indexed: true },
  // The check after the manifest lists the condemnations again and heads every referenced
  // pack; if it cannot, the snapshot was not checked against a GC and is withdrawn.
  {
    name: 'the commit check after the manifest cannot list',
    rule: { method: 'GET', query: CONDEMNED_LIST, nth: 2 },
    action: fail,
    expect: 'fails',
    indexed: true,
  },
  { name: 'the commit check after the manifest fails', rule: { method: 'HEAD', key: /\/packs\//, nth: 1 }, action: fail, expect: 'fails', indexed: true },
];

describe('a fault at each step of the commit order (embedded, S3 through the fault proxy)', () => {
  it.each(STEPS)('$name: the backup $expect, and nothing half-committed is left', async (step) => {
    const { faulty, direct } = await newRepo(NO_RETRY);
    const bytes = randomBytes(SOURCE_BYTES);
    proxy.setRules([{ ...step.rule, action: step.action }]);
    const first = await outcome(run(faulty, bytes));
    const fired = proxy.fired();
    proxy.setRules([]);
    // The fault happened where it was meant to, once.
    expect(fired, 'the fault was not injected').toEqual([1]);
    const snapshots = await direct.snapshots('db');
    if (step.expect === 'fails') {
      expect(first, 'the backup should have failed').toBeInstanceOf(Error);
      // One line that says what failed: a reset is not "cannot reach the endpoint".
      expect((first as Error).message).toMatch(step.action.kind === 'reset-after' ? /closed mid-request \(ECONNRESET\)/ : /server error 500/);
      expect((first as Error).message).not.toMatch(/\n/);
      expect(snapshots, 'a failed backup committed a snapshot').toEqual([]);
    } else {
      expect(first, (first as Error).message).not.toBeInstanceOf(Error);
      expect(snapshots.map((s) => s.key)).toEqual([(first as BackupResult).snapshot.key]);
      expect((await restored(direct.objects, (first as BackupResult).snapshot)).equals(bytes)).toBe(true);
    }
    await expectClean(direct);

    // The same data again, without faults: it succeeds and reuses what was durable and indexed.
    const retry = await run(await Repository.open(faulty.objects), bytes);
    if (step.indexed) expect(retry.bytesNew).toBe(0);
    expect((await restored(direct.objects, retry.snapshot)).equals(bytes)).toBe(true);

    // GC (grace 0: condemn, then delete) leaves nothing stray and every snapshot whole.
    await collectGarbage(direct, { graceMs: 0 });
    await collectGarbage(direct, { graceMs: 0 });
    const report = await expectClean(direct, true);
    expect(report.unreferencedPacks).toEqual([]);
    for (const snapshot of await direct.snapshots('db')) expect((await restored(direct.objects, snapshot)).equals(bytes)).toBe(true);
  });
});

describe('two faults in a row at the manifest (embedded)', () => {
  it('the manifest lands with its answer lost and asking whether it is there fails: it is withdrawn, nothing is committed', async () => {
    const { faulty, direct } = await newRepo(NO_RETRY);
    const bytes = randomBytes(SOURCE_BYTES);
    proxy.setRules([
      { method: 'PUT', key: /\/snapshots\//, nth: 1, action: lost },
      { method: 'HEAD', key: /\/snapshots\//, nth: 1, action: fail },
    ]);
    const first = await outcome(run(faulty, bytes));
    const fired = proxy.fired();
    proxy.setRules([]);
    expect(fired).toEqual([1, 1]);
    expect(first).toBeInstanceOf(Error);
    expect(await direct.snapshots('db')).toEqual([]);
    await expectClean(direct);
    expect((await run(await Repository.open(faulty.objects), bytes)).bytesNew).toBe(0);
  });

  it('the check after the manifest fails and so does its withdrawal: the error names the snapshot that stands unchecked', async () => {
    const { faulty, direct } = await newRepo(NO_RETRY);
    const bytes = randomBytes(SOURCE_BYTES);
    proxy.setRules([
      { method: 'HEAD', key: /\/packs\//, nth: 1, action: fail },
      // DeleteObjects: POST /bucket?delete
      { method: 'POST', query: /^delete/, nth: 1, action: fail },
    ]);
    const first = await outcome(run(faulty, bytes));
    const fired = proxy.fired();
    proxy.setRules([]);
    expect(fired).toEqual([1, 1]);
    const [standing] = await direct.snapshots('db');
    expect(standing).toBeDefined();
    expect((first as Error).message).toContain(`delete ${standing!.key} in `);
    expect((first as Error).message).toMatch(/could not be withdrawn, so it may stand unchecked against garbage collection: run hoard verify/);
    // Whole all the same: everything it references was durable before it was written.
    await expectClean(direct);
    expect((await restored(direct.objects, standing!)).equals(bytes)).toBe(true);
  });
});

describe('faults at a fixed rate (embedded, S3 through the fault proxy)', () => {
  it('with the normal retry policy, backups ride out 5xx, resets and slow answers and complete', async () => {
    const { faulty, direct } = await newRepo(FAST_RETRY);
    proxy.setRules([
      { method: 'PUT', every: 3, action: { kind: 'status', status: 503 } },
      { method: 'PUT', every: 4, action: { kind: 'reset-after' } },
      { method: 'GET', every: 4, action: { kind: 'reset-before' } },
      { method: 'HEAD', every: 3, action: { kind: 'status', status: 500 } },
      { every: 5, action: { kind: 'delay', ms: 100 } },
    ]);
    const day1 = randomBytes(6 * MiB);
    const day2 = Buffer.concat([day1.subarray(0, 3 * MiB), randomBytes(2 * MiB)]);
    const first = await run(faulty, day1);
    const second = await run(faulty, day2);
    const fired = proxy.fired();
    proxy.setRules([]);
    for (const [i, count] of fired.entries()) expect(count, `rule ${i} never fired`).toBeGreaterThan(0);
    expect(second.bytesNew).toBeLessThan(day2.length);
    expect((await restored(direct.objects, first.snapshot)).equals(day1)).toBe(true);
    expect((await restored(direct.objects, second.snapshot)).equals(day2)).toBe(true);
    await expectClean(direct, true);
  });

  it('at a rate retries cannot always ride out, each backup either completes or commits nothing', async () => {
    // Two attempts, and every few requests fails: a request whose retry lands on a failing
    // turn too fails its backup, wherever it is.
    const { faulty, direct } = await newRepo({ ...FAST_RETRY, maxAttempts: 2 });
    const base = randomBytes(3 * MiB);
    const sources = Array.from({ length: 6 }, (_, i) => Buffer.concat([base.subarray(0, (i % 3) * MiB), randomBytes(MiB)]));
    const outcomes: string[] = [];
    const committed = new Map<string, Buffer>();
    let fired = 0;
    for (const [i, bytes] of sources.entries()) {
      // A different rate for each backup moves the failing request to another step.
      proxy.setRules([
        { method: 'PUT', every: 3 + (i % 3), action: { kind: 'reset-after' } },
        { every: 3 + i, action: { kind: 'status', status: 500 } },
      ]);
      const result = await outcome(run(await Repository.open(faulty.objects), bytes));
      const listed = (await direct.snapshots('db')).map((s) => s.key);
      if (result instanceof Error) {
        outcomes.push(`failed (${result.message.slice(0, 60)})`);
        expect(listed.sort(), `a failed backup committed a snapshot (${result.message})`).toEqual([...committed.keys()].sort());
      } else {
        outcomes.push('completed');
        committed.set(result.snapshot.key, bytes);
        expect(listed.sort()).toEqual([...committed.keys()].sort());
      }
      fired += proxy.fired().reduce((a, b) => a + b, 0);
    }
    proxy.setRules([]);
    expect(fired).toBeGreaterThan(10);
    await expectClean(direct);
    for (const snapshot of await direct.snapshots('db'))
      expect((await restored(direct.objects, snapshot)).equals(committed.get(snapshot.key)!), outcomes.join(' ')).toBe(true);
    await collectGarbage(direct, { graceMs: 0 });
    await collectGarbage(direct, { graceMs: 0 });
    expect((await expectClean(direct, true)).unreferencedPacks).toEqual([]);
  });
});

describe('the backup process SIGKILLed while its put is held (embedded)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-commit-faults-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    { name: 'a pack put', rule: { method: 'PUT', key: /\/packs\//, nth: 2 }, after: false, committed: false },
    { name: 'the index segment put', rule: { method: 'PUT', key: /\/index\//, nth: 1 }, after: false, committed: false },
    { name: 'the manifest put, before it lands', rule: { method: 'PUT', key: /\/snapshots\//, nth: 1 }, after: false, committed: false },
    // The window the check after the manifest guards (docs/design.md, "What a crash leaves"):
    // the snapshot stands, whole, not re-checked against a GC (none runs here).
    { name: 'the manifest put, after it landed', rule: { method: 'PUT', key: /\/snapshots\//, nth: 1 }, after: true, committed: true },
  ])('$name: verify is clean, the snapshot is whole or absent, and the next backup succeeds', async ({ rule, after, committed }) => {
    const { direct, childOptions } = await newRepo(NO_RETRY);
    const bytes = randomBytes(SOURCE_BYTES);
    const path = join(dir, `${randomUUID()}.bin`);
    await writeFile(path, bytes);
    proxy.setRules([{ ...rule, action: { kind: 'hold', after } }]);
    const child = spawn(process.execPath, [CHILD, path, childOptions], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const held = await proxy.nextHold().catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}; child: ${output}`);
    });
    proxy.setRules([]);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    held.drop();

    const snapshots = await direct.snapshots('db');
    expect(snapshots).toHaveLength(committed ? 1 : 0);
    for (const snapshot of snapshots) expect((await restored(direct.objects, snapshot)).equals(bytes)).toBe(true);
    await expectClean(direct);
    const next = await run(await Repository.open(direct.objects), bytes);
    expect((await restored(direct.objects, next.snapshot)).equals(bytes)).toBe(true);
    await collectGarbage(direct, { graceMs: 0 });
    await collectGarbage(direct, { graceMs: 0 });
    expect((await expectClean(direct, true)).unreferencedPacks).toEqual([]);
  });
});
