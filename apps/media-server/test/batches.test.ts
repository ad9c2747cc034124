/**
 * The data path under bad input: malformed batches, blobs that lie about their content,
 * references to chunks nobody uploaded, batches out of order or replayed, commits with
 * wrong totals or replayed, expired, abandoned and unknown sessions. Every refusal names
 * the problem; a refused batch applies nothing (the same session then commits the good
 * batch with exactly its totals); the server keeps serving.
 */
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BATCH_HEADER_BYTES,
  BLOB_FRAMING_BYTES,
  BLOB_HEADER_BYTES,
  MAX_BATCH_CHUNKS,
  MAX_STORED_BLOB_BYTES,
  REF_BYTES,
  encodeBatchHeader,
  encodeBlobHeader,
  encodeRefs,
  type WireRef,
} from '@hoard/protocol';
import { BlobCodec, CODEC_ENCRYPTED, PAYLOAD_LZ4, PAYLOAD_RAW } from '@hoard/repository';
import {
  agentWithJob,
  backup,
  batchBody,
  beginSession,
  call,
  chunkFor,
  codecFor,
  commit,
  commitRequest,
  encodeBlobs,
  eventually,
  expectError,
  expectStillServes,
  fingerprintQuery,
  putBatch,
  queryMissing,
  randomData,
  rawRequest,
  refsOf,
  restoreBytes,
  startServer,
  uniqueName,
  type Reply,
  type TestServer,
  type WireBlob,
} from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
let seed = 100;

/**
 * A session with fresh data, its chunks encoded, and the good single batch carrying all
 * of them; `finish` sends that good batch as batch 0 and commits with its exact totals,
 * proving that whatever was refused before applied nothing.
 */
async function fixture(t: TestServer, who: { token: string; job: string }, size = 150_000) {
  const data = randomData(size, seed++);
  const session = await beginSession(t, who.token, who.job, uniqueName('src'));
  const chunks = await chunkFor(session, data);
  expect(chunks.length).toBeGreaterThanOrEqual(3);
  const codec = await codecFor(session);
  const blobs = await encodeBlobs(codec, chunks);
  const good = batchBody(refsOf(chunks), blobs);
  const put = (seq: number, body: Uint8Array): Promise<Reply> => putBatch(t, who.token, session.session, seq, body);
  return {
    data,
    session,
    chunks,
    codec,
    blobs,
    good,
    put,
    async finish(options: { seq?: number; alreadySent?: boolean } = {}): Promise<string> {
      const seq = options.seq ?? 0;
      if (!options.alreadySent) {
        const r = await put(seq, good);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        expect(r.json).toMatchObject({ seq, duplicate: false });
      }
      const done = await commit(t, who.token, session, commitRequest(session, data, chunks, seq + 1));
      expect(done.status, JSON.stringify(done.json)).toBe(200);
      expect(done.json.totals).toMatchObject({ chunks: chunks.length, bytesRead: data.length });
      const id = (done.json.snapshot as { id: string }).id;
      t.committed.push({ job: who.job, token: who.token, snapshot: id, data });
      return id;
    },
  };
}

function blobPart(
  b: WireBlob,
  override: { fingerprint?: Uint8Array; codec?: number; rawLength?: number; storedLength?: number; stored?: Uint8Array } = {},
): Buffer {
  const stored = override.stored ?? b.blob.stored;
  return Buffer.concat([
    encodeBlobHeader({
      fingerprint: override.fingerprint ?? b.fingerprint,
      codec: override.codec ?? b.blob.codec,
      rawLength: override.rawLength ?? b.blob.rawLength,
      storedLength: override.storedLength ?? stored.length,
    }),
    stored,
  ]);
}

function rawBatch(refs: readonly WireRef[], blobParts: readonly Buffer[], header = { refCount: refs.length, blobCount: blobParts.length }): Buffer {
  return Buffer.concat([encodeBatchHeader(header), encodeRefs(refs), ...blobParts]);
}

describe('batches on an unencrypted store', () => {
  let t: TestServer;
  let a: Awaited<ReturnType<typeof agentWithJob>>;
  let probe: Awaited<ReturnType<typeof agentWithJob>>;

  beforeAll(async () => {
    t = await startServer();
    a = await agentWithJob(t);
    probe = await agentWithJob(t);
    await backup(t, a, randomData(200_000, 1));
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await expectStillServes(t, probe);
  });

  it('malformed batch headers: 400 naming the problem; nothing applied', async () => {
    const f = await fixture(t, a);
    const refs = refsOf(f.chunks);
    const cases: [string, Buffer, RegExp][] = [];
    const badMagic = Buffer.from(f.good);
    badMagic.write('XBAT', 0, 'latin1');
    cases.push(['bad magic', badMagic, /a batch starts with the 16-byte HBAT header/]);
    cases.push(['too short for a header', f.good.subarray(0, 10), /upload truncated: the body ended inside the batch header \(10 of 16 bytes\)/]);
    cases.push(['empty body', Buffer.alloc(0), /upload truncated: the body ended inside the batch header \(0 of 16 bytes\)/]);
    const version = Buffer.from(f.good);
    version.writeUInt32LE(2, 4);
    cases.push(['wrong version', version, /batch version 2 is not supported \(this server speaks 1\)/]);
    cases.push([
      'refCount over the limit',
      rawBatch([], [], { refCount: MAX_BATCH_CHUNKS + 1, blobCount: 0 }),
      new RegExp(`at most ${MAX_BATCH_CHUNKS} references; the header says ${MAX_BATCH_CHUNKS + 1}`),
    ]);
    cases.push(['refCount 2^32-1', rawBatch([], [], { refCount: 0xffffffff, blobCount: 0 }), /at most 65536 references; the header says 4294967295/]);
    cases.push([
      'blobCount > refCount',
      rawBatch(refs.slice(0, 1), [], { refCount: 1, blobCount: 2 }),
      /at most one blob per reference; the header says 2 blobs for 1 references/,
    ]);
    for (const [what, body, message] of cases) expectError(await f.put(0, body), 400, message, what);
    await f.finish();
  });

  it('bad references: length 0, over the chunker maximum, unknown flags: 400', async () => {
    const f = await fixture(t, a);
    const refs = refsOf(f.chunks);
    const max = f.session.maxChunk;
    const withRef = (i: number, ref: Partial<WireRef>): WireRef[] => refs.map((r, j) => (j === i ? { ...r, ...ref } : r));
    expectError(await f.put(0, rawBatch(withRef(1, { length: 0 }), [])), 400, new RegExp(`reference 1: chunk length 0 is outside 1\\.\\.${max}`));
    expectError(
      await f.put(0, rawBatch(withRef(2, { length: max + 1 }), [])),
      400,
      new RegExp(`reference 2: chunk length ${max + 1} is outside 1\\.\\.${max}`),
    );
    expectError(await f.put(0, rawBatch(withRef(0, { length: 0xffffffff }), [])), 400, /reference 0: chunk length 4294967295 is outside/);
    const flags = rawBatch(refs, []);
    flags[BATCH_HEADER_BYTES + REF_BYTES + 4] = 0x06;
    expectError(await f.put(0, flags), 400, /reference 1: unknown flags 0x6/);
    // References cut short by the end of the body.
    const short = rawBatch(refs, []).subarray(0, BATCH_HEADER_BYTES + REF_BYTES + 5);
    expectError(await f.put(0, short), 400, /upload truncated: the body ended inside the references/);
    await f.finish();
  });

  it('blob headers with lengths out of range: 400', async () => {
    const f = await fixture(t, a);
    const refs = refsOf(f.chunks);
    const b0 = f.blobs[0]!;
    const max = f.session.maxChunk;
    const one = (part: Buffer): Buffer => rawBatch(refs, [part]);
    expectError(await f.put(0, one(blobPart(b0, { rawLength: 0 }))), 400, new RegExp(`blob 0: raw length 0 is outside 1\\.\\.${max}`));
    expectError(await f.put(0, one(blobPart(b0, { rawLength: max + 1 }))), 400, new RegExp(`blob 0: raw length ${max + 1} is outside 1\\.\\.${max}`));
    const maxStored = max + BLOB_FRAMING_BYTES;
    expectError(
      await f.put(0, one(blobPart(b0, { storedLength: 0, stored: Buffer.alloc(0) }))),
      400,
      new RegExp(`blob 0: stored length 0 is outside 1\\.\\.${maxStored}`),
    );
    expectError(await f.put(0, one(blobPart(b0, { storedLength: 0xffffffff }))), 400, /blob 0: stored length 4294967295 is outside/);
    expectError(
      await f.put(0, one(blobPart(b0, { storedLength: MAX_STORED_BLOB_BYTES + 1 }))),
      400,
      new RegExp(`stored length ${MAX_STORED_BLOB_BYTES + 1} is outside 1\\.\\.${maxStored}`),
    );
    // Longer than any encoding of a chunk of at most maxChunk bytes can be: refused from
    // the header, before the server buffers it.
    const tooLong = Buffer.concat([b0.blob.stored, Buffer.alloc(maxStored + 1 - b0.blob.stored.length)]);
    expectError(
      await f.put(0, one(blobPart(b0, { stored: tooLong }))),
      400,
      new RegExp(`blob 0: stored length ${maxStored + 1} is outside 1\\.\\.${maxStored}`),
    );
    // The second blob's header is bad: the first was already stored (blobs are kept as
    // they arrive, to be found by the retry), but no reference was applied.
    expectError(await f.put(0, rawBatch(refs, [blobPart(b0), blobPart(f.blobs[1]!, { rawLength: 0 })])), 400, /blob 1: raw length 0/);
    expect(await queryMissing(t, a.token, f.session.session, f.chunks.slice(0, 2))).toEqual([false, true]);
    await f.finish();
  });

  it('truncated uploads and trailing bytes: 400 naming where the body ended', async () => {
    const f = await fixture(t, a);
    const last = f.blobs.length - 1;
    expectError(
      await f.put(0, f.good.subarray(0, f.good.length - 100)),
      400,
      new RegExp(`upload truncated: the body ended inside blob ${last} \\(${hex(f.blobs[last]!.fingerprint)}\\)`),
    );
    const inHeader = f.good.length - f.blobs[last]!.blob.stored.length - BLOB_HEADER_BYTES + 7;
    expectError(
      await f.put(0, f.good.subarray(0, inHeader)),
      400,
      new RegExp(`upload truncated: the body ended inside the header of blob ${last} \\(7 of ${BLOB_HEADER_BYTES} bytes\\)`),
    );
    // A blob header that promises more stored bytes than follow.
    expectError(
      await f.put(0, rawBatch(refsOf(f.chunks), [blobPart(f.blobs[0]!, { storedLength: f.blobs[0]!.blob.stored.length + 1000 })])),
      400,
      /upload truncated: the body ended inside blob 0/,
    );
    expectError(await f.put(0, Buffer.concat([f.good, Buffer.from([0])])), 400, /the body has bytes after the last blob its header declares/);
    expectError(await f.put(0, Buffer.concat([f.good, Buffer.alloc(100_000, 1)])), 400, /bytes after the last blob/);
    await f.finish();
  });

  it('a client that goes away mid-upload does not wedge its session: the batch is resent and commits', async () => {
    const f = await fixture(t, a);
    const half = f.good.subarray(0, f.good.length >> 1);
    // Declares the whole body, sends half, then closes its side of the connection.
    const r = await rawRequest(t.url, {
      method: 'PUT',
      path: `/v1/sessions/${f.session.session}/batches/0`,
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/octet-stream', 'content-length': f.good.length },
      body: half,
      endEarly: true,
    });
    if ('status' in r) expect(r.status).toBeGreaterThanOrEqual(400);
    // The session must not stay "busy" with the dead request.
    await eventually(async () => (await f.put(0, f.good)).status === 200, 5_000, 'the resent batch to be accepted');
    await f.finish({ alreadySent: true });
  });

  it('a large garbage body gets its 400 answer, not a reset connection', async () => {
    const f = await fixture(t, a);
    expectError(await f.put(0, Buffer.alloc(8 << 20, 0x41)), 400, /HBAT header/);
    async function* streamed(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(128 * 1024, 0x41);
    }
    const r = await call(t.url, 'PUT', `/v1/sessions/${f.session.session}/batches/0`, {
      token: a.token,
      body: streamed(),
      contentType: 'application/octet-stream',
    });
    expectError(r, 400, /HBAT header/);
    await f.finish();
  });

  it('a blob whose bytes do not decode to its fingerprint: 422, and it is not stored', async () => {
    const f = await fixture(t, a);
    const [b0, b1] = [f.blobs[0]!, f.blobs[1]!];
    const refs = refsOf(f.chunks);
    // Chunk 1's bytes under chunk 0's fingerprint.
    expectError(
      await f.put(0, rawBatch(refs, [blobPart(b1, { fingerprint: b0.fingerprint })])),
      422,
      new RegExp(`blob 0 does not match its fingerprint ${hex(b0.fingerprint)}`),
    );
    // One flipped byte.
    const flipped = Buffer.from(b0.blob.stored);
    flipped[100] ^= 0xff;
    expectError(await f.put(0, rawBatch(refs, [blobPart(b0, { stored: flipped })])), 422, /does not match its fingerprint.*content hashes to/);
    // Garbage claimed to be lz4; an unknown codec; a raw length that does not match.
    // (The garbage's lz4 size prefix is set to the raw length: lz4-napi allocates whatever
    // size the prefix claims before it fails, see the report.)
    const garbage = Buffer.from(b0.blob.stored);
    garbage.writeUInt32LE(b0.blob.rawLength, 0);
    expectError(await f.put(0, rawBatch(refs, [blobPart(b0, { codec: PAYLOAD_LZ4, stored: garbage })])), 422, /does not match its fingerprint/);
    expectError(await f.put(0, rawBatch(refs, [blobPart(b0, { codec: 5 })])), 422, /unknown payload codec 5/);
    expectError(await f.put(0, rawBatch(refs, [blobPart(b0, { rawLength: b0.blob.rawLength - 1 })])), 422, /decoded \d+ bytes/);
    // An "encrypted" blob into an unencrypted store.
    expectError(
      await f.put(0, rawBatch(refs, [blobPart(b0, { codec: CODEC_ENCRYPTED | PAYLOAD_RAW })])),
      422,
      /blob 0 \([0-9a-f]{64}\) is encrypted, but store global is not encrypted/,
    );
    // None of them reached the store: chunk 0 is still missing.
    expect(await queryMissing(t, a.token, f.session.session, f.chunks.slice(0, 1))).toEqual([true]);
    await f.finish();
  });

  it('a batch referencing a chunk never uploaded and unknown to the store: 422, nothing of it applied', async () => {
    const f = await fixture(t, a);
    const refs = refsOf(f.chunks);
    // Every blob but the last one's.
    const body = batchBody(refs, f.blobs.slice(0, -1));
    const lastIndex = f.chunks.length - 1;
    expectError(
      await f.put(0, body),
      422,
      new RegExp(
        `reference ${lastIndex} of batch 0 names chunk ${hex(f.chunks[lastIndex]!.fingerprint)}, which the store does not have and the batch did not carry; nothing of this batch was applied`,
      ),
    );
    // A chunk of a fingerprint nobody ever stored, with no blob at all.
    const ghost: WireRef = { length: 1000, zero: false, fingerprint: Buffer.alloc(32, 0xab) };
    expectError(await f.put(0, rawBatch([ghost], [])), 422, /reference 0 of batch 0 names chunk (ab){32}, which the store does not have/);
    // The refused batch did not advance the session (batch 0 is still expected, not a
    // duplicate) nor add references (the commit's chunk count is the good batch's alone).
    await f.finish();
  });

  it('zero-chunk references need no blob', async () => {
    const data = Buffer.concat([randomData(60_000, seed++), Buffer.alloc(200_000), randomData(60_000, seed++)]);
    const session = await beginSession(t, a.token, a.job, uniqueName('sparse'));
    const chunks = await chunkFor(session, data);
    expect(chunks.some((c) => c.zero)).toBe(true);
    const body = batchBody(
      refsOf(chunks),
      await encodeBlobs(
        await codecFor(session),
        chunks.filter((c) => !c.zero),
      ),
    );
    expect((await putBatch(t, a.token, session.session, 0, body)).status).toBe(200);
    const done = await commit(t, a.token, session, commitRequest(session, data, chunks, 1));
    expect(done.status).toBe(200);
    t.committed.push({ job: a.job, token: a.token, snapshot: (done.json.snapshot as { id: string }).id, data });
  });

  it('an out-of-order batch number: 409 naming the batch expected next', async () => {
    const f = await fixture(t, a);
    expectError(await f.put(1, f.good), 409, new RegExp(`batch 1 is out of order: session ${f.session.session} expects batch 0 next`));
    expectError(await f.put(7, f.good), 409, /batch 7 is out of order: .* expects batch 0 next/);
    expect((await f.put(0, f.good)).status).toBe(200);
    expectError(await f.put(2, f.good), 409, /batch 2 is out of order: .* expects batch 1 next/);
    await f.finish({ alreadySent: true });
  });

  it('a replayed batch: 200 with duplicate: true, applied once', async () => {
    const f = await fixture(t, a);
    const first = await f.put(0, f.good);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ seq: 0, duplicate: false, blobsStored: f.blobs.length, blobsDuplicate: 0 });
    for (let i = 0; i < 3; i++) {
      const again = await f.put(0, f.good);
      expect(again.status).toBe(200);
      expect(again.json).toEqual({ seq: 0, duplicate: true, blobsStored: 0, blobsDuplicate: 0 });
    }
    // Commit's totals are one batch's: a second application would have doubled the chunks.
    expectError(
      await commit(t, a.token, f.session, commitRequest(f.session, Buffer.concat([f.data, f.data]), [...f.chunks, ...f.chunks], 1)),
      409,
      new RegExp(`commit says ${2 * f.chunks.length} chunks / ${2 * f.data.length} bytes, but the batches held ${f.chunks.length} / ${f.data.length}`),
    );
    await f.finish({ alreadySent: true });
  });

  it('blobs the store already has, sent anyway, are acknowledged as duplicates and not stored again', async () => {
    const f = await fixture(t, a);
    await f.finish();
    const session = await beginSession(t, a.token, a.job, uniqueName('again'));
    const r = await putBatch(t, a.token, session.session, 0, f.good);
    expect(r.json).toEqual({ seq: 0, duplicate: false, blobsStored: 0, blobsDuplicate: f.blobs.length });
    const done = await commit(t, a.token, session, commitRequest(session, f.data, f.chunks, 1));
    expect(done.status).toBe(200);
    expect(done.json.totals).toMatchObject({ chunks: f.chunks.length, chunksNew: 0, bytesNew: 0, bytesStored: 0 });
    t.committed.push({ job: a.job, token: a.token, snapshot: (done.json.snapshot as { id: string }).id, data: f.data });
  });

  it('commit with wrong totals: 409 naming both counts; the right totals then commit', async () => {
    const f = await fixture(t, a);
    expect((await f.put(0, f.good)).status).toBe(200);
    const right = commitRequest(f.session, f.data, f.chunks, 1);
    expectError(
      await commit(t, a.token, f.session, { ...right, batches: 2 }),
      409,
      /commit says 2 batches, but the server applied 1; send the missing batches first/,
    );
    expectError(await commit(t, a.token, f.session, { ...right, batches: 0 }), 409, /commit says 0 batches, but the server applied 1/);
    expectError(
      await commit(t, a.token, f.session, { ...right, chunks: f.chunks.length - 1 }),
      409,
      new RegExp(`commit says ${f.chunks.length - 1} chunks / ${f.data.length} bytes, but the batches held ${f.chunks.length} / ${f.data.length}`),
    );
    expectError(
      await commit(t, a.token, f.session, { ...right, logicalBytes: f.data.length + 1 }),
      409,
      new RegExp(`${f.data.length + 1} bytes, but the batches held`),
    );
    await f.finish({ alreadySent: true });
  });

  it('calls on a committed session: 409 naming the snapshot (commit replayed, batch, query, abort)', async () => {
    const f = await fixture(t, a);
    const id = await f.finish();
    const committed = new RegExp(`session ${f.session.session} is already committed as snapshot ${id}`);
    const replay = await commit(t, a.token, f.session, commitRequest(f.session, f.data, f.chunks, 1));
    expectError(replay, 409, committed);
    expect(replay.json.snapshot).toBe(id);
    expectError(await f.put(1, f.good), 409, committed);
    expectError(await f.put(0, f.good), 409, committed);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${f.session.session}/missing`, {
        token: a.token,
        body: fingerprintQuery(f.chunks),
        contentType: 'application/octet-stream',
      }),
      409,
      committed,
    );
    expectError(await call(t.url, 'DELETE', `/v1/sessions/${f.session.session}`, { token: a.token }), 409, committed);
    const r = await restoreBytes(t, a.token, a.job, id);
    expect(r.bytes.equals(f.data)).toBe(true);
  });

  it('an abandoned session (DELETE): later calls are 409 naming why it failed', async () => {
    const f = await fixture(t, a);
    expect((await f.put(0, f.good)).status).toBe(200);
    const del = await call(t.url, 'DELETE', `/v1/sessions/${f.session.session}`, { token: a.token });
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ session: f.session.session, state: 'failed' });
    const failed = new RegExp(`session ${f.session.session} failed \\(abandoned by the agent\\); start a new session`);
    expectError(await f.put(1, f.good), 409, failed);
    expectError(await commit(t, a.token, f.session, commitRequest(f.session, f.data, f.chunks, 1)), 409, failed);
    // What it uploaded stays deduplicable: a new session finds every chunk present.
    const again = await beginSession(t, a.token, a.job, uniqueName('retry'));
    expect(await queryMissing(t, a.token, again.session, f.chunks)).toEqual(f.chunks.map(() => false));
  });

  it('an unknown session id: 404 on every session call', async () => {
    const f = await fixture(t, a);
    const unknown = '0123456789abcdef0123456789abcdef';
    const noSession = new RegExp(`no session ${unknown} \\(sessions live until they commit or expire; start a new one\\)`);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${unknown}/missing`, {
        token: a.token,
        body: fingerprintQuery(f.chunks),
        contentType: 'application/octet-stream',
      }),
      404,
      noSession,
    );
    expectError(await putBatch(t, a.token, unknown, 0, f.good), 404, noSession);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${unknown}/commit`, { token: a.token, json: commitRequest(f.session, f.data, f.chunks, 1) }),
      404,
      noSession,
    );
    expectError(await call(t.url, 'DELETE', `/v1/sessions/${unknown}`, { token: a.token }), 404, noSession);
    expectError(await putBatch(t, t.admin, 'x', 0, f.good), 404, /no session x /);
    await f.finish();
  });
});

describe('batches on an encrypted store', () => {
  let t: TestServer;
  let a: Awaited<ReturnType<typeof agentWithJob>>;

  beforeAll(async () => {
    t = await startServer({ passphrase: 'batch test passphrase' });
    a = await agentWithJob(t);
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await expectStillServes(t, a);
  });

  it('hands the agent the store keys, and an encrypted session commits and restores', async () => {
    const f = await fixture(t, a);
    expect(f.session.store.encrypted).toBe(true);
    expect(f.session.store.secrets).toEqual({ dataKey: expect.any(String), fingerprintKey: expect.any(String) });
    expect(f.blobs.every((b) => (b.blob.codec & CODEC_ENCRYPTED) !== 0)).toBe(true);
    await f.finish();
  });

  it('an unencrypted blob: 422 naming the store; it is not stored', async () => {
    const f = await fixture(t, a);
    const plain = await BlobCodec.create();
    const c0 = f.chunks[0]!;
    const unencrypted = { fingerprint: c0.fingerprint, blob: await plain.encode(c0.bytes, c0.fingerprint) };
    expectError(
      await f.put(0, rawBatch(refsOf(f.chunks), [blobPart(unencrypted)])),
      422,
      new RegExp(`blob 0 \\(${hex(c0.fingerprint)}\\) is not encrypted, but store global is encrypted`),
    );
    // Claiming to be encrypted does not help: the bytes do not authenticate.
    expectError(
      await f.put(0, rawBatch(refsOf(f.chunks), [blobPart(unencrypted, { codec: CODEC_ENCRYPTED | unencrypted.blob.codec })])),
      422,
      /blob 0 does not match its fingerprint .*AES-GCM tag does not match/,
    );
    expect(await queryMissing(t, a.token, f.session.session, [c0])).toEqual([true]);
    await f.finish();
  });

  it('a blob encrypted with another key: 422', async () => {
    const f = await fixture(t, a);
    const other = await BlobCodec.create({ dataKey: Buffer.alloc(32, 7) });
    const c0 = f.chunks[0]!;
    const foreign = { fingerprint: c0.fingerprint, blob: await other.encode(c0.bytes, c0.fingerprint) };
    expectError(await f.put(0, rawBatch(refsOf(f.chunks), [blobPart(foreign)])), 422, /does not match its fingerprint .*AES-GCM tag does not match/);
    await f.finish();
  });
});

describe('expired sessions', () => {
  let t: TestServer;
  let a: Awaited<ReturnType<typeof agentWithJob>>;
  const IDLE_MS = 1_000;

  beforeAll(async () => {
    t = await startServer({ server: { sessionIdleMs: IDLE_MS } });
    a = await agentWithJob(t);
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await expectStillServes(t, a);
  });

  async function sessionState(id: string): Promise<string | undefined> {
    const r = await call(t.url, 'GET', `/v1/sessions?job=${a.job}`, { token: t.admin });
    return (r.json.sessions as { id: string; state: string }[]).find((s) => s.id === id)?.state;
  }

  it('any call on an expired session: 410 saying it expired; its uploads stay for the retry', async () => {
    const f = await fixture(t, a);
    const refs = refsOf(f.chunks);
    const r0 = await f.put(0, batchBody(refs.slice(0, 2), f.blobs.slice(0, 2)));
    expect(r0.status).toBe(200);
    await eventually(async () => (await sessionState(f.session.session)) === 'expired', 10_000, 'the session to expire');
    const expired = new RegExp(`session ${f.session.session} expired after \\d+ s without requests; start a new session \\(what it uploaded is kept\\)`);
    expectError(
      await call(t.url, 'POST', `/v1/sessions/${f.session.session}/missing`, {
        token: a.token,
        body: fingerprintQuery(f.chunks),
        contentType: 'application/octet-stream',
      }),
      410,
      expired,
    );
    expectError(await f.put(1, f.good), 410, expired);
    expectError(await commit(t, a.token, f.session, commitRequest(f.session, f.data, f.chunks, 1)), 410, expired);
    expectError(await call(t.url, 'DELETE', `/v1/sessions/${f.session.session}`, { token: a.token }), 410, expired);
    // Another agent still gets 403, not a hint about the session's state.
    const other = await agentWithJob(t);
    expectError(await commit(t, other.token, f.session, commitRequest(f.session, f.data, f.chunks, 1)), 403, /belongs to agent/);

    // A new session, sent right away (well within the idle time), commits; chunks 0 and 1
    // were kept from the expired one.
    const retry = await beginSession(t, a.token, a.job, uniqueName('retry'));
    expect(await queryMissing(t, a.token, retry.session, f.chunks)).toEqual(f.chunks.map((_, i) => i >= 2));
    const body = batchBody(refs, f.blobs.slice(2));
    const put = await putBatch(t, a.token, retry.session, 0, body);
    expect(put.json).toMatchObject({ blobsStored: f.blobs.length - 2, blobsDuplicate: 0 });
    const done = await commit(t, a.token, retry, commitRequest(retry, f.data, f.chunks, 1));
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    const r = await restoreBytes(t, a.token, a.job, (done.json.snapshot as { id: string }).id);
    expect(r.bytes.equals(f.data)).toBe(true);
  });

  it('an upload that stalls (agent gone, connection left open) is cut after the idle time, and its session expires', async () => {
    const f = await fixture(t, a);
    const url = new URL(t.url);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(
      `PUT /v1/sessions/${f.session.session}/batches/0 HTTP/1.1\r\nHost: hoard\r\nAuthorization: Bearer ${a.token}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${f.good.length}\r\n\r\n`,
    );
    socket.write(f.good.subarray(0, f.good.length >> 1));
    try {
      await eventually(async () => (await sessionState(f.session.session)) === 'expired', 10_000, 'the stalled session to expire');
      await closed;
    } finally {
      socket.destroy();
    }
    expectError(await f.put(0, f.good), 410, /expired/);
  });

  it('a session kept busy by requests does not expire', async () => {
    const f = await fixture(t, a);
    const until = Date.now() + IDLE_MS * 3;
    while (Date.now() < until) {
      const r = await call(t.url, 'POST', `/v1/sessions/${f.session.session}/missing`, {
        token: a.token,
        body: fingerprintQuery(f.chunks),
        contentType: 'application/octet-stream',
      });
      expect(r.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS / 4));
    }
    await f.finish();
  });
});
