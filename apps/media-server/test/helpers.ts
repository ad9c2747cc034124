/**
 * Test harness for the media server's HTTP API: a server on a temp repository, agents and
 * jobs created through the admin API, and backup sessions run by hand (begin, missing,
 * PUT batches/N, commit) with real blobs, so tests can send good requests and precisely
 * broken ones. Nothing here reaches into the server: every step is an HTTP request.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Chunker, createFingerprinter, type ChunkerSpec, type FingerprintSpec } from '@hoard/chunker';
import {
  HoardClient,
  encodeBatchHeader,
  encodeBlobHeader,
  encodeRefs,
  isMissing,
  type BatchResponse,
  type BeginSessionResponse,
  type ChunkingKind,
  type CommitRequest,
  type CommitResponse,
  type WireRef,
} from '@hoard/protocol';
import { BlobCodec, compressionFrom, FsObjectStore, Repository, type EncodedBlob, type ObjectStore } from '@hoard/repository';
import { MediaServer, type MediaServerOptions } from '../dist/index.js';

export const SCRYPT = { N: 1024, r: 8, p: 1 };

// --- data -------------------------------------------------------------------------------

/** Incompressible bytes from a seed (same seed, same bytes). */
export function randomData(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe((length + 3) & ~3);
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out.subarray(0, length);
}

export interface TestChunk {
  length: number;
  zero: boolean;
  fingerprint: Uint8Array;
  bytes: Buffer;
}

/** The chunker spec from a session answer (an encrypted store's seed travels as base64). */
export function chunkerFromJson(json: Record<string, unknown>): ChunkerSpec {
  const spec = { ...json } as Record<string, unknown>;
  const seed = spec.seed as { base64?: string; bigint?: string } | undefined;
  if (seed && typeof seed === 'object') spec.seed = seed.base64 !== undefined ? Uint8Array.from(Buffer.from(seed.base64, 'base64')) : BigInt(seed.bigint!);
  return spec as unknown as ChunkerSpec;
}

function fingerprintSpec(session: BeginSessionResponse): FingerprintSpec {
  const key = session.store.secrets?.fingerprintKey;
  return key ? { algorithm: 'blake3', key: Uint8Array.from(Buffer.from(key, 'base64')) } : { algorithm: 'blake3' };
}

/** Chunks `data` as an agent would for this session (its store's chunker and keys). */
export async function chunkFor(session: BeginSessionResponse, data: Uint8Array): Promise<TestChunk[]> {
  const chunker = new Chunker({ chunker: chunkerFromJson(session.chunker), fingerprint: fingerprintSpec(session), workers: 0 });
  const out: TestChunk[] = [];
  try {
    async function* source(): AsyncGenerator<Uint8Array> {
      yield data;
    }
    for await (const c of chunker.chunk(source())) {
      out.push({ length: c.length, zero: c.zero, fingerprint: c.zero ? new Uint8Array(32) : Uint8Array.from(c.fingerprint), bytes: Buffer.from(c.bytes) });
    }
  } finally {
    await chunker.close();
  }
  return out;
}

/** The stream hash the commit carries (keyed BLAKE3 in encrypted stores). */
export function streamHash(session: BeginSessionResponse, data: Uint8Array): string {
  return Buffer.from(createFingerprinter(fingerprintSpec(session)).digest(data)).toString('hex');
}

/** Encodes as the agent does: with the store's key and the store's compression. */
export async function codecFor(session: BeginSessionResponse): Promise<BlobCodec> {
  const key = session.store.secrets?.dataKey;
  return BlobCodec.create({
    dataKey: key ? Buffer.from(key, 'base64') : undefined,
    compression: compressionFrom(session.store.compression ?? 'lz4', 'session answer'),
  });
}

export interface WireBlob {
  fingerprint: Uint8Array;
  blob: EncodedBlob;
}

export async function encodeBlobs(codec: BlobCodec, chunks: readonly TestChunk[]): Promise<WireBlob[]> {
  return Promise.all(chunks.map(async (c) => ({ fingerprint: c.fingerprint, blob: await codec.encode(c.bytes, c.fingerprint) })));
}

/** A batch body: header, references, then each blob's header and stored bytes. */
export function batchBody(refs: readonly WireRef[], blobs: readonly WireBlob[]): Buffer {
  const parts: Uint8Array[] = [encodeBatchHeader({ refCount: refs.length, blobCount: blobs.length }), encodeRefs(refs)];
  for (const b of blobs) {
    parts.push(encodeBlobHeader({ fingerprint: b.fingerprint, codec: b.blob.codec, rawLength: b.blob.rawLength, storedLength: b.blob.stored.length }));
    parts.push(b.blob.stored);
  }
  return Buffer.concat(parts);
}

export const refsOf = (chunks: readonly TestChunk[]): WireRef[] => chunks.map((c) => ({ length: c.length, zero: c.zero, fingerprint: c.fingerprint }));

export function fingerprintQuery(chunks: readonly TestChunk[]): Buffer {
  return Buffer.concat(chunks.filter((c) => !c.zero).map((c) => c.fingerprint));
}

export function commitRequest(session: BeginSessionResponse, data: Uint8Array, chunks: readonly TestChunk[], batches: number): CommitRequest {
  return {
    batches,
    chunks: chunks.length,
    logicalBytes: data.length,
    bytesRead: data.length,
    streamHash: streamHash(session, data),
    startedAt: new Date().toISOString(),
  };
}

// --- HTTP -------------------------------------------------------------------------------

export interface Reply {
  status: number;
  headers: Headers;
  /** Parsed JSON body, or {} when the body is not JSON. */
  json: Record<string, unknown>;
  bytes: Buffer;
}

/** One request with fetch; never throws for an HTTP error status. */
export async function call(
  base: string,
  method: string,
  path: string,
  init: { token?: string; json?: unknown; body?: Uint8Array | string | AsyncIterable<Uint8Array>; contentType?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  let body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  } else if (init.body !== undefined) {
    body = init.body;
  }
  if (init.contentType !== undefined) headers['content-type'] = init.contentType;
  const streamed = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
  const res = await fetch(base + path, { method, headers, body, ...(streamed ? { duplex: 'half' } : {}) } as RequestInit);
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> = {};
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  return { status: res.status, headers: res.headers, json, bytes };
}

/**
 * A request over a raw socket, for what fetch will not send: unnormalised paths (`..`),
 * a Content-Length that does not match the body, a body cut off mid-way.
 */
export function rawRequest(
  base: string,
  options: { method: string; path: string; headers?: Record<string, string | number>; body?: Uint8Array; endEarly?: boolean },
): Promise<{ status: number; json: Record<string, unknown> } | { error: string }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: options.method, path: options.path, headers: options.headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (err) => resolve({ error: err.message }));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', (err) => resolve({ error: err.message }));
    if (options.body) req.write(options.body);
    if (options.endEarly) {
      // Send the bytes, then close the socket without completing the declared body.
      setTimeout(() => req.socket?.end(), 50);
    } else req.end();
  });
}

/** Asserts an error answer: its status and a message (the JSON `error`) matching `message`. */
export function expectError(
  reply: Reply | { status: number; json: Record<string, unknown> } | { error: string },
  status: number,
  message: RegExp,
  label?: string,
): void {
  if ('error' in reply && !('status' in reply)) throw new Error(`${label ?? ''} expected HTTP ${status}, got a transport error: ${reply.error}`);
  const r = reply as { status: number; json: Record<string, unknown> };
  expect({ status: r.status, error: r.json.error }, label).toMatchObject({ status, error: expect.stringMatching(message) });
  expect(r.json.status).toBe(status);
}

// --- the server -------------------------------------------------------------------------

export interface Committed {
  job: string;
  token: string;
  snapshot: string;
  data: Buffer;
}

export interface TestServer {
  server: MediaServer;
  url: string;
  admin: string;
  repo: Repository;
  /** Parent of the repository and the catalog: nothing may appear here but those two. */
  dir: string;
  repoDir: string;
  /** Snapshots committed so far: each must keep restoring byte-identical. */
  committed: Committed[];
  close(): Promise<void>;
  /** Closes the server and starts a new one on the same bucket (reopened) and catalog. */
  restart(): Promise<void>;
}

export interface StartOptions {
  passphrase?: string;
  /** The new repository's compression (default zstd:3), e.g. `none` to look for bytes in objects. */
  compression?: string;
  objects?: ObjectStore;
  server?: Partial<Omit<MediaServerOptions, 'repo' | 'catalogDir'>>;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-ms-'));
  const repoDir = join(dir, 'repo');
  const catalogDir = join(dir, 'catalog');
  const objects = options.objects ?? (await FsObjectStore.open(repoDir, { create: true }));
  const repo = await Repository.init(objects, {
    passphrase: options.passphrase,
    scryptCost: SCRYPT,
    ...(options.compression !== undefined ? { compression: compressionFrom(options.compression, 'startServer') } : {}),
  });
  const start = (on: Repository) => MediaServer.start({ repo: on, catalogDir, port: 0, logLevel: 'silent', ...options.server });
  const { server, adminToken } = await start(repo);
  if (!adminToken) throw new Error('a fresh catalog must hand out an admin token');
  const t: TestServer = {
    server,
    url: server.url,
    admin: adminToken,
    repo,
    dir,
    repoDir,
    committed: [],
    async close() {
      await t.server.close();
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await t.server.close();
      // A new Repository: nothing cached in memory (store indexes) survives the restart.
      t.repo = await Repository.open(objects, { passphrase: options.passphrase, scryptCost: SCRYPT });
      const again = await start(t.repo);
      t.server = again.server;
      t.url = again.server.url;
    },
  };
  return t;
}

let names = 0;
/** A fresh lower-case name (agents and jobs). */
export const uniqueName = (prefix: string): string => `${prefix}-${process.pid}-${++names}`;

export async function addAgent(t: TestServer, name = uniqueName('agent')): Promise<{ name: string; token: string }> {
  const r = await call(t.url, 'POST', '/v1/agents', { token: t.admin, json: { name } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return { name, token: r.json.token as string };
}

/** Defines a job bound to `agent` (POST /v1/runs creates the job record and queues a run). */
export async function defineJob(t: TestServer, agent: string, job = uniqueName('job'), store?: string): Promise<string> {
  const r = await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent, job, sources: ['cmd:true'], ...(store ? { store } : {}) } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return job;
}

/** An agent with a job of its own. */
export async function agentWithJob(t: TestServer, store?: string): Promise<{ agent: string; token: string; job: string; client: HoardClient }> {
  const { name, token } = await addAgent(t);
  const job = await defineJob(t, name, undefined, store);
  return { agent: name, token, job, client: new HoardClient({ url: t.url, token }) };
}

export async function beginSession(
  t: TestServer,
  token: string,
  job: string,
  source = 'dump',
  chunking: ChunkingKind = 'db-dump',
): Promise<BeginSessionResponse> {
  const r = await call(t.url, 'POST', '/v1/sessions', { token, json: { job, source: { name: source, kind: 'stream' }, chunking } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json as unknown as BeginSessionResponse;
}

export async function queryMissing(t: TestServer, token: string, session: string, chunks: readonly TestChunk[]): Promise<boolean[]> {
  const withData = chunks.filter((c) => !c.zero);
  const r = await call(t.url, 'POST', `/v1/sessions/${session}/missing`, { token, body: fingerprintQuery(withData), contentType: 'application/octet-stream' });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  expect(r.bytes.length).toBe((withData.length + 7) >> 3);
  return withData.map((_, i) => isMissing(r.bytes, i));
}

export async function putBatch(t: TestServer, token: string, session: string, seq: number, body: Uint8Array): Promise<Reply> {
  return call(t.url, 'PUT', `/v1/sessions/${session}/batches/${seq}`, { token, body, contentType: 'application/octet-stream' });
}

/**
 * Sends `chunks` as batches of `perBatch` references, each carrying the blobs the server
 * says are missing (once per fingerprint). Returns the number of batches sent.
 */
export async function sendBatches(
  t: TestServer,
  token: string,
  session: BeginSessionResponse,
  chunks: readonly TestChunk[],
  options: { perBatch?: number; firstSeq?: number } = {},
): Promise<{ batches: number; blobsStored: number }> {
  const codec = await codecFor(session);
  const perBatch = options.perBatch ?? 16;
  let seq = options.firstSeq ?? 0;
  let blobsStored = 0;
  for (let at = 0; at < chunks.length; at += perBatch) {
    const slice = chunks.slice(at, at + perBatch);
    const unique = new Map<string, TestChunk>();
    for (const c of slice) if (!c.zero) unique.set(Buffer.from(c.fingerprint).toString('hex'), c);
    const candidates = [...unique.values()];
    const missing = candidates.length ? await queryMissing(t, token, session.session, candidates) : [];
    const blobs = await encodeBlobs(
      codec,
      candidates.filter((_, i) => missing[i]),
    );
    const r = await putBatch(t, token, session.session, seq, batchBody(refsOf(slice), blobs));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const answer = r.json as unknown as BatchResponse;
    expect(answer).toMatchObject({ seq, duplicate: false });
    blobsStored += answer.blobsStored;
    seq++;
  }
  return { batches: seq, blobsStored };
}

export async function commit(t: TestServer, token: string, session: BeginSessionResponse, request: CommitRequest): Promise<Reply> {
  return call(t.url, 'POST', `/v1/sessions/${session.session}/commit`, { token, json: request });
}

/** A whole session: begin, missing, batches, commit. Records the snapshot in `t.committed`. */
export async function backup(
  t: TestServer,
  who: { token: string; job: string },
  data: Buffer,
  source = 'dump',
): Promise<CommitResponse & { session: BeginSessionResponse }> {
  const session = await beginSession(t, who.token, who.job, source);
  const chunks = await chunkFor(session, data);
  const { batches } = await sendBatches(t, who.token, session, chunks);
  const r = await commit(t, who.token, session, commitRequest(session, data, chunks, batches));
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const answer = r.json as unknown as CommitResponse;
  expect(answer.totals.chunks).toBe(chunks.length);
  expect(answer.snapshot.logicalBytes).toBe(data.length);
  t.committed.push({ job: who.job, token: who.token, snapshot: answer.snapshot.id, data });
  return { ...answer, session };
}

export async function restoreBytes(t: TestServer, token: string, job: string, snapshot?: string): Promise<Reply> {
  return call(t.url, 'GET', `/v1/jobs/${encodeURIComponent(job)}/restore${snapshot ? `?id=${snapshot}` : ''}`, { token });
}

/**
 * The server still serves: a new session by a known agent commits, and every snapshot
 * committed before restores byte-identical.
 */
export async function expectStillServes(t: TestServer, probe: { token: string; job: string }): Promise<void> {
  await backup(t, probe, randomData(48 * 1024 + (randomBytes(2).readUInt16LE(0) % 1024), randomBytes(4).readUInt32LE(0)));
  for (const c of t.committed) {
    const r = await restoreBytes(t, c.token, c.job, c.snapshot);
    expect(r.status, `restore of ${c.job}/${c.snapshot}: ${r.bytes.toString('utf8', 0, 200)}`).toBe(200);
    expect(r.bytes.length).toBe(c.data.length);
    expect(r.bytes.equals(c.data), `snapshot ${c.snapshot} of ${c.job} restores byte-identical`).toBe(true);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
