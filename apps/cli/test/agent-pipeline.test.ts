/**
 * The agent's upload pipeline against a real media server (in this process, fs storage):
 * several batches in flight per session, and the source read cap.
 *
 * - A source whose second half repeats its first: the repeated chunks come up in later
 *   batches while the batches carrying them may still be in flight. Each new chunk must
 *   go over the wire once, the later batches must be accepted (they refer to chunks an
 *   earlier batch carries), and the snapshot must restore byte-identical.
 * - The read cap is a TokenBucket on the bytes read from the source: with a clock that
 *   only moves when the bucket sleeps, the bucket must have let through exactly the bytes
 *   read and slept at least what the rate requires (no wall-clock assertion).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveFileSource, uploadSource } from '@hoard/agent';
import { chunkingFor, findCutPoints } from '@hoard/chunker';
import { MediaServer } from '@hoard/media-server';
import { HoardClient, TokenBucket, type ThrottleClock } from '@hoard/protocol';
import { FsObjectStore, Repository } from '@hoard/repository';

const MiB = 1 << 20;

describe('agent upload pipeline', () => {
  let dir: string;
  let server: MediaServer;
  let admin: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-pipeline-'));
    const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
    const repo = await Repository.init(objects, { scryptCost: { N: 1024, r: 8, p: 1 } });
    const started = await MediaServer.start({ repo, catalogDir: join(dir, 'catalog'), port: 0, logLevel: 'silent' });
    server = started.server;
    admin = started.adminToken!;
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, token: string, json?: unknown): Promise<Response> =>
    fetch(new URL(path, server.url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(json ? { 'content-type': 'application/json' } : {}) },
      body: json ? JSON.stringify(json) : undefined,
    });

  /** An agent with a job of its own (POST /v1/runs defines the job). */
  const agentWithJob = async (name: string): Promise<{ client: HoardClient; token: string; job: string }> => {
    const added = await api('POST', '/v1/agents', admin, { name });
    expect(added.status).toBe(201);
    const { token } = (await added.json()) as { token: string };
    const job = `${name}-job`;
    expect((await api('POST', '/v1/runs', admin, { agent: name, job, sources: ['cmd:true'] })).status).toBe(201);
    return { client: new HoardClient({ url: server.url, token }), token, job };
  };

  it('sends each new chunk once while batches overlap, and the snapshot restores', async () => {
    const { client, token, job } = await agentWithJob('pipe1');
    // 12 MiB of random data twice, then 1 MiB more: batches are at most 8 MiB, so the
    // second copy's chunks are met while the batches carrying them may be in flight.
    const first = randomBytes(12 * MiB);
    const data = Buffer.concat([first, first, randomBytes(1 * MiB)]);
    const path = join(dir, 'repeats.img');
    await writeFile(path, data);
    const result = await uploadSource(client, await resolveFileSource(path), { job });
    expect(result.snapshot.logicalBytes).toBe(data.length);
    // Each distinct chunk of the stream (cut as the agent cuts a file: the VM-image
    // preset) must be new exactly once: a chunk sent twice would count twice. Where the
    // second copy's cut points fall back into step with the first's depends on the random
    // bytes, so the expectation is computed from the data rather than bounded.
    const distinct = new Map<string, number>();
    let start = 0;
    for (const end of findCutPoints(data, chunkingFor('vm-image'))) {
      distinct.set(createHash('sha256').update(data.subarray(start, end)).digest('hex'), end - start);
      start = end;
    }
    const distinctBytes = [...distinct.values()].reduce((a, b) => a + b, 0);
    expect(distinctBytes).toBeLessThan(data.length - 10 * MiB); // the second copy mostly repeats
    expect(result.totals.bytesNew).toBe(distinctBytes);
    expect(result.wireBytes).toBeLessThan(distinctBytes + 1 * MiB); // headers, references, queries
    const restored = await api('GET', `/v1/jobs/${job}/restore?id=${result.snapshot.id}`, token);
    expect(restored.status).toBe(200);
    expect(Buffer.from(await restored.arrayBuffer()).equals(data)).toBe(true);
  });

  it('reads through the read cap: every byte read is taken from the bucket, at the rate', async () => {
    const { client, job } = await agentWithJob('pipe2');
    const data = randomBytes(6 * MiB);
    const path = join(dir, 'capped.img');
    await writeFile(path, data);
    // A clock that moves only when the bucket waits: the accounting, not the machine, is tested.
    let now = 0;
    let slept = 0;
    const clock: ThrottleClock = {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
        slept += ms;
      },
    };
    const rate = 2 * MiB;
    const burst = 256 * 1024;
    const bucket = new TokenBucket(rate, { burst, clock });
    let taken = 0;
    const take = bucket.take.bind(bucket);
    bucket.take = async (bytes, signal) => {
      taken += bytes;
      return take(bytes, signal);
    };
    const result = await uploadSource(client, await resolveFileSource(path), { job, readThrottle: bucket });
    expect(result.snapshot.logicalBytes).toBe(data.length);
    expect(taken).toBe(data.length);
    // At most burst + rate x t bytes by time t: reading 6 MiB took at least (6 MiB - burst) / rate.
    expect(slept).toBeGreaterThanOrEqual(((data.length - burst) / rate) * 1000 - 1);
  });
});
