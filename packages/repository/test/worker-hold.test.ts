/**
 * The worker pools' hold on their process (WorkerHold): a pool started and left idle must
 * not keep a process alive, and a caller awaiting its workers' start with nothing else in
 * the event loop must not be dropped by Node's exit (exit code 0, the await never done).
 * Each case runs in a child process of its own: what is tested is when that process ends.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const repository = pathToFileURL(new URL('../dist/index.js', import.meta.url).pathname).href;
const chunker = pathToFileURL(new URL('../../chunker/dist/index.js', import.meta.url).pathname).href;

/**
 * Runs `body` as an ES module file in a fresh Node (a file, not --eval: worker threads
 * inherit the process's options). A timer that does not itself hold the process prints
 * HELD (and ends it) if anything else still holds it 5 s after the body ran out of work.
 */
async function runChild(body: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-worker-hold-'));
  const script = join(dir, 'child.mjs');
  await writeFile(script, `${body}\nsetTimeout(() => { console.log('HELD'); process.exit(3); }, 5000).unref();\n`);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script], { timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? -1 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('worker pools and their process', () => {
  it('an encode pool started early and never given a chunk lets the process end', async () => {
    const r = await runChild(`
      import { BlobCodec, DEFAULT_COMPRESSION } from '${repository}';
      const codec = await BlobCodec.create({ compression: DEFAULT_COMPRESSION });
      await codec.startOffThread();
      console.log('STARTED');`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('STARTED');
    expect(r.stdout).not.toContain('HELD');
  }, 30_000);

  it('awaiting the start of the chunker workers, with nothing else to wait for, gets there', async () => {
    const r = await runChild(`
      import { Chunker, chunkingFor } from '${chunker}';
      const c = new Chunker({ chunker: chunkingFor('db-dump'), workers: 1 });
      await c.start();
      console.log('STARTED');
      const data = new Uint8Array(1 << 20).fill(7);
      let n = 0;
      for await (const batch of c.chunkBatches((async function* () { yield data; })())) n += batch.length;
      console.log('CHUNKS', n > 0);
      await c.close();
      console.log('CLOSED');`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('STARTED');
    expect(r.stdout).toContain('CHUNKS true');
    expect(r.stdout).toContain('CLOSED');
    expect(r.stdout).not.toContain('HELD');
  }, 30_000);

  it('chunker and decode pools left idle without close() let the process end; their answers still arrive', async () => {
    const r = await runChild(`
      import { Chunker, chunkingFor } from '${chunker}';
      import { DecodePool } from '${repository}';
      const c = new Chunker({ chunker: chunkingFor('db-dump'), workers: 1 });
      const data = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24);
      let n = 0;
      for await (const batch of c.chunkBatches((async function* () { yield data; })())) n += batch.length;
      console.log('CHUNKS', n > 0);
      DecodePool.shared();
      console.log('DONE');`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CHUNKS true');
    expect(r.stdout).toContain('DONE');
    expect(r.stdout).not.toContain('HELD');
  }, 30_000);
});
