import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listAll, ObjectNotFoundError, ObjectStoreError, parseS3Url, RangeOutOfBoundsError } from '../dist/index.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from '../dist/s3.js';
import { s3StoreOptions, s3TestServer } from '../../../test-support/s3-test-env.js';
import { objectStoreContract, rejection } from './store-contract.js';

// Against a real Ceph RGW (test-support/global-setup.ts starts one per run). Each test
// gets a fresh prefix of one bucket per file: creating a bucket costs more than a prefix.
const BUCKET = `hoard-s3-test-${randomUUID().slice(0, 8)}`;
let prefixes = 0;
const freshPrefix = (): string => `t${prefixes++}-${randomUUID().slice(0, 8)}`;

/** Options for a store of the test bucket. */
function options(overrides: Partial<S3ObjectStoreOptions> = {}): S3ObjectStoreOptions {
  return s3StoreOptions(BUCKET, overrides);
}

let bucketReady: Promise<void> | undefined;
function ensureBucket(): Promise<void> {
  bucketReady ??= S3ObjectStore.open({ ...options(), create: true }).then((store) => store.close());
  return bucketReady;
}

const opened: S3ObjectStore[] = [];
async function freshStore(overrides: Partial<S3ObjectStoreOptions> = {}): Promise<S3ObjectStore> {
  await ensureBucket();
  const store = new S3ObjectStore(options({ prefix: freshPrefix(), ...overrides }));
  opened.push(store);
  return store;
}

async function deleteEverything(store: S3ObjectStore): Promise<void> {
  const keys: string[] = [];
  for await (const object of listAll(store, '')) keys.push(object.key);
  await store.deleteMany(keys);
}

afterAll(() => {
  for (const store of opened.splice(0)) store.close();
});

objectStoreContract('S3ObjectStore (Ceph RGW)', async () => {
  const store = await freshStore();
  return {
    store,
    cleanup: async () => {
      await deleteEverything(store);
      store.close();
    },
  };
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

describe('S3ObjectStore against Ceph RGW', () => {
  it('putIfAbsent never overwrites: the second put answers false and the first bytes stay', async () => {
    const store = await freshStore();
    expect(await store.putIfAbsent('packs/ab/abcd', bytes('A'))).toBe(true);
    expect(await store.putIfAbsent('packs/ab/abcd', bytes('B'))).toBe(false);
    expect(text(await store.get('packs/ab/abcd'))).toBe('A');
    // Another client on the same prefix (a second backup process) gets the same answer.
    const other = new S3ObjectStore(options({ prefix: store.prefix }));
    opened.push(other);
    expect(await other.putIfAbsent('packs/ab/abcd', bytes('C'))).toBe(false);
    expect(text(await store.get('packs/ab/abcd'))).toBe('A');
  });

  it('reads exact ranges and rejects ranges outside the object', async () => {
    const store = await freshStore();
    const data = randomBytes(100_000);
    await store.putIfAbsent('obj', data);
    for (const [offset, length] of [
      [0, 1],
      [99_999, 1],
      [12_345, 54_321],
      [0, 100_000],
      [100_000, 0],
    ]) {
      expect(Buffer.from(await store.get('obj', { offset, length })).equals(data.subarray(offset, offset + length))).toBe(true);
    }
    // S3 answers a range running past the end with the bytes that exist; the store must not.
    const err = await rejection(store.get('obj', { offset: 99_990, length: 20 }));
    expect(err).toBeInstanceOf(RangeOutOfBoundsError);
    expect((err as Error).message).toContain('100000 bytes');
    await expect(store.get('obj', { offset: 100_001, length: 1 })).rejects.toBeInstanceOf(RangeOutOfBoundsError);
    // The store still works after abandoning those responses.
    expect((await store.get('obj')).length).toBe(100_000);
  });

  it('stores object k as prefix/k, and a prefix isolates two stores in one bucket', async () => {
    const base = freshPrefix();
    const one = await freshStore({ prefix: `${base}/one` });
    const onePlus = await freshStore({ prefix: `${base}/one1` });
    const whole = await freshStore({ prefix: '' });
    expect(one.location).toBe(`s3://${BUCKET}/${base}/one`);
    expect(whole.location).toBe(`s3://${BUCKET}`);

    await one.putIfAbsent('k', bytes('one'));
    expect(await onePlus.putIfAbsent('k', bytes('one1'))).toBe(true);
    expect(text(await one.get('k'))).toBe('one');
    expect(text(await onePlus.get('k'))).toBe('one1');
    // `one` is not a string prefix of `one1/...` once the '/' is added.
    expect(await one.list('')).toEqual({ objects: [{ key: 'k', size: 3 }] });
    expect(await whole.list(`${base}/`)).toEqual({
      objects: [
        { key: `${base}/one/k`, size: 3 },
        { key: `${base}/one1/k`, size: 4 },
      ],
    });
    await one.deleteMany(['k']);
    expect(await one.head('k')).toBeUndefined();
    expect(text(await onePlus.get('k'))).toBe('one1');
  });

  it('lists a page at a time with a small limit, next being the last key of each page', async () => {
    const store = await freshStore();
    const keys = Array.from({ length: 23 }, (_, i) => `k/${String(i).padStart(2, '0')}`);
    await Promise.all(keys.map((key) => store.putIfAbsent(key, new Uint8Array(1))));
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await store.list('k/', { after, limit: 5 });
      expect(page.objects.length).toBeLessThanOrEqual(5);
      seen.push(...page.objects.map((o) => o.key));
      if (page.next !== undefined) expect(page.next).toBe(page.objects[page.objects.length - 1].key);
      after = page.next;
    } while (after !== undefined);
    expect(seen).toEqual(keys);
  });

  it('deleteMany splits more than 1000 keys into DeleteObjects batches', async () => {
    const store = await freshStore();
    // Absent keys cost the server little; the present ones sit in the first and second batch.
    const keys = Array.from({ length: 1500 }, (_, i) => `d/${String(i).padStart(4, '0')}`);
    const present = [keys[0], keys[999], keys[1000], keys[1499]];
    for (const key of present) await store.putIfAbsent(key, new Uint8Array(1));
    await store.putIfAbsent('keep', new Uint8Array(1));
    await store.deleteMany(keys);
    expect(await store.list('')).toEqual({ objects: [{ key: 'keep', size: 1 }] });
  });

  it('open() fails on a missing bucket with an ObjectStoreError naming it; create: true creates it', async () => {
    const bucket = `hoard-missing-${randomUUID().slice(0, 8)}`;
    const err = await rejection(S3ObjectStore.open(options({ bucket })));
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect((err as ObjectStoreError).reason).toContain(`bucket ${bucket} does not exist`);
    expect((err as Error).message).toContain(`s3://${bucket}`);

    // Opened without the check, operations fail with the same reason, never as "no such object".
    const unchecked = new S3ObjectStore(options({ bucket }));
    opened.push(unchecked);
    const get = await rejection(unchecked.get('k'));
    expect(get).toBeInstanceOf(ObjectStoreError);
    expect(get).not.toBeInstanceOf(ObjectNotFoundError);
    expect((get as ObjectStoreError).reason).toContain(`bucket ${bucket} does not exist`);
    await expect(unchecked.putIfAbsent('k', bytes('x'))).rejects.toThrow(`bucket ${bucket} does not exist`);
    await expect(unchecked.list('')).rejects.toThrow(`bucket ${bucket} does not exist`);

    const created = await S3ObjectStore.open(options({ bucket, prefix: 'p', create: true }));
    opened.push(created);
    expect(await created.putIfAbsent('k', bytes('x'))).toBe(true);
    // Opening with create: true again is fine: the bucket is already ours.
    (await S3ObjectStore.open(options({ bucket, create: true }))).close();
  });

  it('wrong credentials give a clear error, from open() and from every operation', async () => {
    await ensureBucket();
    const { accessKeyId } = s3TestServer();
    const wrongSecret = options({ credentials: { accessKeyId, secretAccessKey: 'not-the-secret' } });
    const unknownKey = options({ credentials: { accessKeyId: 'NOSUCHACCESSKEY', secretAccessKey: 'x' } });

    const secretErr = await rejection(S3ObjectStore.open(wrongSecret));
    expect(secretErr).toBeInstanceOf(ObjectStoreError);
    expect((secretErr as ObjectStoreError).reason).toMatch(/^credentials rejected: .*AWS_SECRET_ACCESS_KEY/);
    const keyErr = await rejection(S3ObjectStore.open(unknownKey));
    expect((keyErr as ObjectStoreError).reason).toMatch(/^credentials rejected: .*AWS_ACCESS_KEY_ID/);

    const store = new S3ObjectStore(wrongSecret);
    opened.push(store);
    // A rejected HEAD must not read as "absent": the caller would then upload everything.
    await expect(store.head('k')).rejects.toThrow('credentials rejected');
    await expect(store.get('k')).rejects.toThrow('credentials rejected');
    await expect(store.putIfAbsent('k', bytes('x'))).rejects.toThrow('credentials rejected');
    await expect(store.list('')).rejects.toThrow('credentials rejected');
    await expect(store.deleteMany(['k'])).rejects.toThrow('credentials rejected');
  });

  it('takes the endpoint and credentials from the environment', async () => {
    await ensureBucket();
    const server = s3TestServer();
    const env = {
      HOARD_S3_ENDPOINT: server.endpoint,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    };
    const store = await S3ObjectStore.open({ url: `s3://${BUCKET}/${freshPrefix()}/`, env });
    opened.push(store);
    expect(store.endpoint).toBe(server.endpoint);
    expect(store.region).toBe('us-east-1');
    expect(await store.putIfAbsent('k', bytes('env'))).toBe(true);
    expect(text(await store.get('k'))).toBe('env');
  });

  it('an unreachable endpoint fails open() quickly, naming it', async () => {
    const err = await rejection(S3ObjectStore.open(options({ endpoint: 'http://127.0.0.1:1' })));
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect((err as ObjectStoreError).reason).toContain('cannot reach http://127.0.0.1:1: ECONNREFUSED');
  });
});

describe('parseS3Url', () => {
  it('splits s3://bucket/prefix', () => {
    expect(parseS3Url('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Url('s3://bucket/')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Url('s3://my.bucket-1/a/b')).toEqual({ bucket: 'my.bucket-1', prefix: 'a/b' });
    expect(parseS3Url('s3://bucket/a/b/')).toEqual({ bucket: 'bucket', prefix: 'a/b' });
  });

  it.each([
    'bucket',
    'http://bucket/x',
    's3://',
    's3://b',
    's3://-bucket',
    's3://bu cket/x',
    's3://bucket//x',
    's3://bucket/a//b',
    's3://bucket/../x',
    's3://bucket/a b',
    's3://bucket/x//',
  ])('rejects %s with a message naming it', (url) => {
    expect(() => parseS3Url(url)).toThrow(`invalid S3 URL ${JSON.stringify(url)}`);
  });
});

/**
 * A real HTTP server in front of the RGW that misbehaves on cue: each request takes the
 * next entry of `plan` (then 'proxy'). Retries are checked against what actually went
 * over the wire, not against a mocked SDK.
 */
type Behaviour = 'proxy' | 'slowdown' | 'internal-error' | 'conflict' | 'reset' | 'stall' | 'forbidden' | 'truncate-body';

class FlakyProxy {
  readonly requests: string[] = [];
  plan: Behaviour[] = [];
  #server: Server | undefined;
  #upstream: URL;

  constructor(upstream: string) {
    this.#upstream = new URL(upstream);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const behaviour = this.plan.shift() ?? 'proxy';
      this.requests.push(`${req.method} ${behaviour}`);
      const s3Error = (status: number, code: string): void => {
        req.resume();
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
      };
      switch (behaviour) {
        case 'slowdown':
          return s3Error(503, 'SlowDown');
        case 'internal-error':
          return s3Error(500, 'InternalError');
        case 'forbidden':
          return s3Error(403, 'AccessDenied');
        case 'conflict':
          return s3Error(409, 'ConditionalRequestConflict');
        case 'reset':
          req.socket.destroy();
          return;
        case 'stall':
          // Never answers: the client's idle timeout must fire.
          req.resume();
          return;
        default:
          this.#forward(req.method!, req.url!, req.headers, req, (status, headers, body) => {
            res.writeHead(status, headers);
            if (behaviour === 'truncate-body' && body.length > 1) {
              // Headers promise the whole body; the connection dies halfway through it.
              res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
            } else {
              res.end(body);
            }
          });
      }
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
  }

  #forward(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body: NodeJS.ReadableStream,
    respond: (status: number, headers: IncomingHttpHeaders, body: Buffer) => void,
  ): void {
    // Headers go through untouched (Host included): the client signed them.
    const upstream = request({ host: this.#upstream.hostname, port: this.#upstream.port, method, path, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => respond(response.statusCode ?? 502, response.headers, Buffer.concat(chunks)));
    });
    body.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}

describe('S3ObjectStore retries (a misbehaving HTTP server in front of the RGW)', () => {
  let proxy: FlakyProxy;
  let store: S3ObjectStore;
  const fastRetries = { baseDelayMs: 1, throttleBaseDelayMs: 5, maxDelayMs: 50 };

  beforeAll(async () => {
    await ensureBucket();
    proxy = new FlakyProxy(s3TestServer().endpoint);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  afterEach(() => {
    proxy.requests.length = 0;
    proxy.plan = [];
  });
  const proxiedStore = async (overrides: Partial<S3ObjectStoreOptions> = {}): Promise<S3ObjectStore> => {
    store = await freshStore({ endpoint: proxy.endpoint, retry: fastRetries, ...overrides });
    return store;
  };

  it('retries 503 SlowDown with backoff and then succeeds', async () => {
    await proxiedStore();
    proxy.plan = ['slowdown', 'slowdown'];
    expect(await store.putIfAbsent('k', bytes('after two 503s'))).toBe(true);
    expect(proxy.requests).toEqual(['PUT slowdown', 'PUT slowdown', 'PUT proxy']);
    expect(text(await store.get('k'))).toBe('after two 503s');
  });

  it('asks again after a 409 ConditionalRequestConflict instead of answering "already there"', async () => {
    // AWS's answer while another conditional put of the key is in flight: that put may
    // still fail, so only a 412 or a 200 settles it.
    await proxiedStore();
    proxy.plan = ['conflict'];
    expect(await store.putIfAbsent('k', bytes('x'))).toBe(true);
    expect(proxy.requests).toEqual(['PUT conflict', 'PUT proxy']);
  });

  it('retries connection resets, 500s and stalled connections', async () => {
    await proxiedStore({ idleTimeoutMs: 1000 });
    await store.putIfAbsent('k', bytes('payload'));
    proxy.requests.length = 0;
    proxy.plan = ['reset', 'internal-error', 'stall'];
    expect(text(await store.get('k'))).toBe('payload');
    // A busy machine may make a forwarded request time out too: more tries are fine.
    expect(proxy.requests.slice(0, 4)).toEqual(['GET reset', 'GET internal-error', 'GET stall', 'GET proxy']);
    expect(new Set(proxy.requests.slice(3))).toEqual(new Set(['GET proxy']));
  });

  it('re-reads an object whose body was cut off mid-transfer', async () => {
    await proxiedStore();
    const data = randomBytes(256 * 1024);
    await store.putIfAbsent('big', data);
    proxy.requests.length = 0;
    proxy.plan = ['truncate-body'];
    expect(Buffer.from(await store.get('big')).equals(data)).toBe(true);
    proxy.plan = ['truncate-body'];
    expect(Buffer.from(await store.get('big', { offset: 1000, length: 100_000 })).equals(data.subarray(1000, 101_000))).toBe(true);
    expect(proxy.requests).toEqual(['GET truncate-body', 'GET proxy', 'GET truncate-body', 'GET proxy']);
  });

  it('does not retry a permanent 403', async () => {
    await proxiedStore();
    proxy.plan = Array<Behaviour>(20).fill('forbidden');
    const err = await rejection(store.putIfAbsent('k', bytes('x')));
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect((err as ObjectStoreError).reason).toMatch(/^credentials rejected: access denied/);
    expect(proxy.requests).toEqual(['PUT forbidden']);
  });

  it('gives up after maxAttempts, saying how often it tried', async () => {
    await proxiedStore({ retry: { ...fastRetries, maxAttempts: 4 } });
    proxy.plan = Array<Behaviour>(20).fill('internal-error');
    const err = await rejection(store.head('k'));
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect((err as ObjectStoreError).reason).toContain('after 4 attempts');
    expect(proxy.requests).toHaveLength(4);
  });
});
