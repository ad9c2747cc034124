/**
 * Restores through the built `hoard`, embedded and through a media server process
 * serving the same repository (issue 12's behaviour, never its speed):
 * - a sparse image comes back byte-identical and sparse both ways (holes travel as
 *   counts through the server, so a restore through it allocates no more than the data);
 * - byte ranges both ways equal the slice;
 * - a pack damaged in the later part of the stream: exit 3 naming the snapshot and the
 *   pack, no file and no .partial left; through the server to stdout, bytes were already
 *   out when the error came, and it still reached the client (the framed stream).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { cp, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

const MiB = 1 << 20;
let dir: string;
let repo: string;
let image: Buffer;
let server: ServerProcess;

/** Deterministic incompressible bytes (so packs fill and offsets are far apart). */
function noise(seed: number, length: number): Buffer {
  // An AES-128-CTR keystream keyed from the seed: a SHA-256 chain over 32-byte blocks took
  // 3-10 s for the 44 MiB below on a loaded 2-core machine, this 0.5-2 s.
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function packKeys(root: string): Promise<{ key: string }[]> {
  const out = [];
  for (const sub of await readdir(join(root, 'packs'))) {
    for (const name of await readdir(join(root, 'packs', sub))) {
      out.push({ key: `packs/${sub}/${name}` });
    }
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-test-restore-pipeline-'));
  repo = join(dir, 'repo');
  // 36 MiB of data, a 24 MiB hole, 8 MiB of data, a trailing 4 MiB hole.
  image = Buffer.concat([noise(1, 36 * MiB), Buffer.alloc(24 * MiB), noise(2, 8 * MiB), Buffer.alloc(4 * MiB)]);
  await writeFile(join(dir, 'vm.img'), image);
  expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
  const b = await hoardCli(['backup', '--repo', repo, '--job', 'vm', join(dir, 'vm.img')]);
  expect(b.stderr).toBe('');
  expect(b.code).toBe(0);
  server = await startServerProcess({ storage: `fs:${repo}` });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('restore pipeline, embedded and through a server', () => {
  it('a sparse image: byte-identical and sparse both ways', async () => {
    for (const how of ['repo', 'server'] as const) {
      const out = join(dir, `restored-${how}.img`);
      const r = how === 'repo' ? await hoardCli(['restore', '--repo', repo, 'vm', '--to', out]) : await server.cli(['restore', 'vm', '--to', out]);
      expect(r.stderr, how).toBe('');
      expect(r.code, how).toBe(0);
      const info = await stat(out);
      expect(info.size).toBe(image.length);
      expect(sha(await readFile(out)), how).toBe(sha(image));
      // 44 MiB of data in a 72 MiB file: the holes are not allocated (a little slack for metadata).
      expect(info.blocks * 512, how).toBeLessThan(46 * MiB);
      await expect(stat(`${out}.partial`)).rejects.toThrow();
    }
  });

  it('byte ranges both ways equal the slice', async () => {
    for (const [offset, length] of [
      [0, 1],
      [5 * MiB + 3, 40 * MiB],
      [image.length - 7 * MiB, 7 * MiB],
    ]) {
      for (const how of ['repo', 'server'] as const) {
        const args = ['restore', 'vm', '--offset', String(offset), '--length', String(length), '--to', '-'];
        const r = how === 'repo' ? await hoardCli([...args.slice(0, 1), '--repo', repo, ...args.slice(1)]) : await server.cli(args);
        expect(r.code, `${how} ${offset}+${length}: ${r.stderr}`).toBe(0);
        expect(sha(r.stdoutBytes), `${how} ${offset}+${length}`).toBe(sha(image.subarray(offset, offset + length)));
      }
    }
  });

  it('a damaged pack late in the stream: exit 3 naming the snapshot and the pack, nothing left at the target', async () => {
    const damaged = join(dir, 'damaged');
    await cp(repo, damaged, { recursive: true });
    // The copy is a second repository: not the first server's (its state object would make
    // the new server ask for --adopt-state).
    await rm(join(damaged, 'server'), { recursive: true, force: true });
    // Incompressible, unencrypted data is stored as is: find the pack bytes of the image at
    // 61 MiB (past what the server reads ahead) and flip one of them.
    const needle = image.subarray(61 * MiB, 61 * MiB + 64);
    let victim: { key: string; at: number } | undefined;
    for (const { key } of await packKeys(damaged)) {
      const at = (await readFile(join(damaged, key))).indexOf(needle);
      if (at >= 0) victim = { key, at: at + 10 };
    }
    expect(victim).toBeDefined();
    const file = await open(join(damaged, victim!.key), 'r+');
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, victim!.at);
    byte[0] ^= 0x40;
    await file.write(byte, 0, 1, victim!.at);
    await file.close();
    const packHash = victim!.key.split('/').at(-1)!;
    const damagedServer = await startServerProcess({ storage: `fs:${damaged}` });
    try {
      for (const how of ['repo', 'server'] as const) {
        const out = join(dir, `damaged-${how}.img`);
        const r = how === 'repo' ? await hoardCli(['restore', '--repo', damaged, 'vm', '--to', out]) : await damagedServer.cli(['restore', 'vm', '--to', out]);
        expect(r.code, `${how}: ${r.stderr}`).toBe(3);
        expect(r.stderr, how).toContain(packHash);
        expect(r.stderr, how).toMatch(/snapshot .*vm/);
        expect(r.stderr, how).toMatch(/offset \d+/);
        expect(r.stderr, how).not.toMatch(STACK_TRACE);
        await expect(stat(out), how).rejects.toThrow();
        await expect(stat(`${out}.partial`), how).rejects.toThrow();
      }
      // To stdout through the server: the stream had begun when the damage was found, and
      // the verdict still reached the client.
      const r = await damagedServer.cli(['restore', 'vm', '--to', '-']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stdoutBytes.length).toBeGreaterThan(0);
      expect(r.stdoutBytes.length).toBeLessThanOrEqual(61 * MiB);
      expect(r.stdoutBytes.equals(image.subarray(0, r.stdoutBytes.length))).toBe(true);
      expect(r.stderr).toContain(packHash);
    } finally {
      await damagedServer.stop();
    }
  });
});
