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
 * A bound with a margin over the target (128 MiB; 129 over the whole network benchmark,
 * 110-125 MiB measured here with the unit's environment on a quiet machine): the margin is
 * for a loaded test machine, where garbage collection lags the allocations; an agent
 * whose memory followed the source would need gigabytes.
 */
const PEAK_RSS_BOUND = 160 * MiB;

/** The `Environment=` lines of the agent's systemd unit: the agent runs as installed. */
async function unitEnvironment(): Promise<Record<string, string>> {
  const unit = await readFile(new URL('../../../deploy/systemd/hoard-agent.service', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)) env[m[1]] = m[2].trim();
  return env;
}

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
    const env = await unitEnvironment();
    // The unit's memory settings are what this test holds the agent to.
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['NODE_OPTIONS', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_']));
    agent = await server.addAgent('kvm-memory', env);
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
