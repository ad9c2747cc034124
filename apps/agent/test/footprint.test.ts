/**
 * Agent footprint settings (footprint.ts): each setting checked with a message naming it
 * and what would be right; nice and the I/O class applied to the agent process reach the
 * programs it starts as sources (read from /proc/PID/stat and `ionice` of the command
 * itself) and every thread of the agent, including worker threads started afterwards.
 *
 * The priority part runs in a child node process: a nice level cannot be lowered again,
 * so it must not be applied to the test runner.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FootprintSettingError, parseFootprint, parseIoClass } from '../dist/index.js';

const AGENT = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('footprint settings', () => {
  it('parses every setting', () => {
    expect(parseFootprint({})).toEqual({});
    expect(parseFootprint({ nice: '10', ioClass: 'idle', workers: '1', readLimit: '200MB/s' })).toEqual({
      nice: 10,
      io: { class: 'idle' },
      workers: 1,
      readBytesPerSecond: 200e6,
    });
    expect(parseIoClass('best-effort')).toEqual({ class: 'best-effort', level: 7 });
    expect(parseIoClass('best-effort:0')).toEqual({ class: 'best-effort', level: 0 });
  });

  it.each([
    [{ nice: '20' }, /--nice "20": expected a nice level from 0 \(normal\) to 19/],
    [{ nice: '-5' }, /--nice "-5": expected a nice level from 0/],
    [{ nice: 'low' }, /--nice "low"/],
    [{ ioClass: 'realtime' }, /--io-class "realtime": expected idle .* or best-effort:N with N from 0 \(first\) to 7/],
    [{ ioClass: 'best-effort:8' }, /--io-class "best-effort:8"/],
    [{ workers: '0' }, /--workers "0": expected a number of worker threads from 1 to 64/],
    [{ workers: '1.5' }, /--workers "1.5"/],
    [{ readLimit: '100MB' }, /--read-limit .*write the rate per second with "\/s"/],
    [{ readLimit: 'fast' }, /--read-limit "fast" is not a rate/],
  ])('refuses %j with a clear error', (text, message) => {
    let caught: unknown;
    try {
      parseFootprint(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FootprintSettingError);
    expect((caught as FootprintSettingError).code).toBe('invalid_arguments');
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toMatch(/\n/);
  });
});

/** Field 19 (nice) of a /proc/PID/stat line; the command name in parentheses may hold spaces. */
const niceOf = (stat: string): number => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);

describe('priority of the agent and its source programs', () => {
  it('a source command and every agent thread run at the nice level and I/O class set', () => {
    // In the child: apply, start a worker thread afterwards, run a cmd: source that reports
    // its own nice (stat of the shell itself) and I/O class, and print everything as JSON.
    const script = `
      import { readFileSync, readdirSync } from 'node:fs';
      import { Worker } from 'node:worker_threads';
      import { applyPriority, cmdTarget } from ${JSON.stringify(AGENT)};
      applyPriority({ nice: 7, io: { class: 'idle' } });
      const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
      await new Promise((r) => worker.once('online', r));
      const opened = await cmdTarget('cat /proc/$$/stat; ionice', process.env).open();
      let out = '';
      for await (const piece of opened.stream) out += Buffer.from(piece).toString('utf8');
      await opened.done;
      const tasks = readdirSync('/proc/self/task').map((t) => readFileSync('/proc/self/task/' + t + '/stat', 'utf8'));
      await worker.terminate();
      console.log(JSON.stringify({ source: out, tasks }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const { source, tasks } = JSON.parse(r.stdout) as { source: string; tasks: string[] };
    const [stat, ionice] = source.trim().split('\n');
    expect(niceOf(stat!)).toBe(7);
    expect(ionice).toBe('idle');
    // Main thread, libuv and V8 threads, and the worker started after applyPriority.
    expect(tasks.length).toBeGreaterThan(3);
    expect(tasks.map(niceOf)).toEqual(tasks.map(() => 7));
  });
});
