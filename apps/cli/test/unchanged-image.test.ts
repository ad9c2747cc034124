/**
 * Incremental runs do not re-read unchanged images (file: and vm:, raw and qcow2), end to
 * end with server and agent processes: the second run of an unchanged image reads 0
 * bytes and refers to the previous snapshot's chunks, and that snapshot restores
 * byte-identical on its own; a touched or modified image is read again; --full always
 * reads; an image modified just before the run (racy mtime) is read again next time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2, qemuCompare, runTool } from '../../../test-support/qemu.js';
import { STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

interface TargetJson {
  name: string;
  ok: boolean;
  error?: string;
  snapshot?: { id: string; logicalBytes: number };
  totals?: { bytesRead: number; bytesNew: number; bytesSent: number };
  image?: { unchanged: boolean; bytesUnchanged: number; previous?: string };
}

const DAY = 24 * 3600 * 1000;

describe('unchanged images on incremental runs', () => {
  let server: ServerProcess;
  let work: string;

  beforeAll(async () => {
    server = await startServerProcess();
    await server.addAgent('img1');
    work = await mkdtemp(join(tmpdir(), 'hoard-unchanged-image-'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const run = async (job: string, source: string, extra: string[] = []): Promise<TargetJson> => {
    const result = await server.cli(['run', '--agent', 'img1', '--job', job, '--source', source, '--json', ...extra]);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const target = (JSON.parse(result.stdout) as { targets: TargetJson[] }).targets[0]!;
    expect(target.ok, target.error).toBe(true);
    return target;
  };

  const restore = async (job: string, snapshot: string, to: string): Promise<void> => {
    const result = await server.cli(['restore', job, '--snapshot', snapshot, '--to', to, '--force']);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code, result.stderr).toBe(0);
  };

  const setMtime = (path: string, ms: number): Promise<void> => utimes(path, new Date(ms), new Date(ms));

  it('file: a raw image unchanged is not read; touched or modified it is; --full always reads', async () => {
    const image = join(work, 'raw.img');
    const v1 = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(2 * 1024 * 1024), randomBytes(12_345)]);
    await writeFile(image, v1);
    await setMtime(image, Date.now() - 3 * DAY);
    const source = `file:${image}`;

    const first = await run('raw', source);
    expect(first.totals!.bytesRead).toBe(v1.length);
    expect(first.image).toEqual({ unchanged: false, bytesUnchanged: 0, previous: null });

    const second = await run('raw', source);
    expect(second.totals!.bytesRead).toBe(0);
    expect(second.totals!.bytesNew).toBe(0);
    expect(second.image).toEqual({ unchanged: true, bytesUnchanged: v1.length, previous: first.snapshot!.id });
    expect(second.snapshot!.logicalBytes).toBe(v1.length);
    expect(second.snapshot!.id).not.toBe(first.snapshot!.id);
    // Only references crossed the network: 37 bytes a chunk, no data.
    expect(second.totals!.bytesSent).toBeLessThan(64 * 1024);
    // The unchanged snapshot is a snapshot of its own: it restores byte-identical.
    const restored = join(work, 'raw.restored');
    await restore('raw', second.snapshot!.id, restored);
    expect((await readFile(restored)).equals(v1)).toBe(true);
    // The human report says so.
    const human = await server.cli(['run', '--agent', 'img1', '--job', 'raw', '--source', source]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/unchanged since snapshot [0-9a-f]+ \(same size, mtime and inode\): not read/);

    // Touched (same bytes, another mtime): read again, then unchanged again.
    await setMtime(image, Date.now() - 2 * DAY);
    const touched = await run('raw', source);
    expect(touched.totals!.bytesRead).toBe(v1.length);
    expect(touched.image!.unchanged).toBe(false);
    expect((await run('raw', source)).totals!.bytesRead).toBe(0);

    // --full reads even an unchanged image.
    const full = await run('raw', source, ['--full']);
    expect(full.totals!.bytesRead).toBe(v1.length);
    expect(full.image!.unchanged).toBe(false);

    // Modified in place with the same size: read again, and the new bytes restore.
    const v2 = Buffer.from(v1);
    randomBytes(100_000).copy(v2, 1_000_000);
    await writeFile(image, v2);
    await setMtime(image, Date.now() - DAY);
    const modified = await run('raw', source);
    expect(modified.totals!.bytesRead).toBe(v2.length);
    expect(modified.totals!.bytesNew).toBeGreaterThan(0);
    const after = await run('raw', source);
    expect(after.totals!.bytesRead).toBe(0);
    await restore('raw', after.snapshot!.id, restored);
    expect((await readFile(restored)).equals(v2)).toBe(true);
    // The first snapshot still restores as it was.
    await restore('raw', first.snapshot!.id, restored);
    expect((await readFile(restored)).equals(v1)).toBe(true);
  });

  it('an image modified just before its run is read again next time (its mtime is too recent to trust)', async () => {
    const image = join(work, 'fresh.img');
    await writeFile(image, randomBytes(1024 * 1024));
    const source = `file:${image}`;
    expect((await run('fresh', source)).totals!.bytesRead).toBe(1024 * 1024);
    expect((await run('fresh', source)).totals!.bytesRead).toBe(1024 * 1024);
  });

  it('vm: a qcow2 image (its own mtime) unchanged is not read, and restores as the guest saw it', async () => {
    const image = join(work, 'guest.qcow2');
    await makeQcow2(image, 8 * 1024 * 1024, [
      { offset: 0, length: 1024 * 1024, pattern: 0x5a },
      { offset: 5 * 1024 * 1024, length: 512 * 1024, pattern: 0x33 },
    ]);
    await setMtime(image, Date.now() - 3 * DAY);
    const source = `vm:${image}`;
    const first = await run('guest', source);
    expect(first.totals!.bytesRead).toBe(8 * 1024 * 1024);
    const second = await run('guest', source);
    expect(second.totals!.bytesRead).toBe(0);
    expect(second.image).toMatchObject({ unchanged: true, previous: first.snapshot!.id });
    const restored = join(work, 'guest.raw');
    await restore('guest', second.snapshot!.id, restored);
    expect(await qemuCompare(restored, image)).toBe(true);
    expect((await stat(restored)).size).toBe(8 * 1024 * 1024);
    // The guest writes: the qcow2 file's mtime changes, and the image is read again.
    expect((await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x77 ${2 * 1024 * 1024} ${64 * 1024}`, image])).code).toBe(0);
    await setMtime(image, Date.now() - DAY);
    const third = await run('guest', source);
    expect(third.totals!.bytesRead).toBe(8 * 1024 * 1024);
    await restore('guest', third.snapshot!.id, restored);
    expect(await qemuCompare(restored, image)).toBe(true);
    expect((await stat(restored)).size).toBe(8 * 1024 * 1024);
  });
});
