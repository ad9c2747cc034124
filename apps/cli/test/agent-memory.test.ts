/**
 * An agent's memory does not grow with the source (issue 14: <= 128 MiB on a hypervisor
 * host, whatever the source size). A 4 GiB image is read through a real agent process into
 * a real media server: a sparse file (holes read as zeros, so it costs no disk) with
 * random regions spread over it, so the agent also compresses and uploads new chunks. The
 * agent's VmHWM (peak RSS, from /proc) after the run must stay under a bound with a margin
 * over the target; an agent whose memory followed the source would need gigabytes.
 */
import { randomBytes } from 'node:crypto';
import { open, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_TRACE } from './helpers.js';
import { startServerProcess, type AgentProcess, type ServerProcess } from './server-processes.js';

const MiB = 1024 * 1024;
const SOURCE_BYTES = 4 * 1024 * MiB;
/** Random regions: 16 x 4 MiB = 64 MiB of new data, the rest holes. */
const REGIONS = 16;
const REGION_BYTES = 4 * MiB;
/**
 * A bound, not the target: the target is 128 MiB and is not met yet (141 MiB measured here
 * at load 10, 162 without the young-generation hold of main.ts; see benchmarks/README.md,
 * "Memory (issue 14, item 2)"). The margin is for a loaded test machine; an agent whose
 * memory followed the source would need gigabytes.
 */
const PEAK_RSS_BOUND = 176 * MiB;

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

describe('agent memory with a 4 GiB source', () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  let work: string;
  let image: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'hoard-agent-memory-'));
    image = join(work, 'disk.img');
    const fh = await open(image, 'w');
    try {
      await fh.truncate(SOURCE_BYTES);
      const stride = SOURCE_BYTES / REGIONS;
      for (let i = 0; i < REGIONS; i++) await fh.write(randomBytes(REGION_BYTES), 0, REGION_BYTES, i * stride + 12_345);
    } finally {
      await fh.close();
    }
    server = await startServerProcess();
    agent = await server.addAgent('kvm-memory');
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('backs up the whole image with a peak RSS under the bound', async () => {
    const result = await server.cli(['run', '--agent', 'kvm-memory', '--job', 'big-image', '--source', `file:${image}`, '--json']);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.code).toBe(0);
    const run = JSON.parse(result.stdout) as { state: string; targets: { ok: boolean; totals?: { bytesRead: number; bytesNew: number } }[] };
    expect(run.state).toBe('succeeded');
    expect(run.targets[0].ok).toBe(true);
    expect(run.targets[0].totals?.bytesRead).toBe(SOURCE_BYTES);
    // The random regions were new: the agent did compress and upload, not only skip zeros.
    expect(run.targets[0].totals?.bytesNew).toBeGreaterThanOrEqual(REGIONS * REGION_BYTES * 0.9);
    const peak = await peakRss(agent.child.pid!);
    console.log(`agent peak RSS ${(peak / MiB).toFixed(0)} MiB for a ${SOURCE_BYTES / MiB} MiB source`);
    expect(peak).toBeLessThan(PEAK_RSS_BOUND);
  }, 600_000);
});
