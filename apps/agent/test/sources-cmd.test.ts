/**
 * cmd: sources: stdout streamed, exit status and stderr tail on failure, pipefail,
 * backpressure, and no process left behind by close() or an abort.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSourceSpec } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSource, SourceClosedError, SourceFailedError, SourceToolMissingError, type OpenedSource, type SourceTarget } from '../dist/sources/index.js';

async function target(spec: string, env?: NodeJS.ProcessEnv): Promise<SourceTarget> {
  const targets = await resolveSource(parseSourceSpec(spec), env ? { env } : {});
  expect(targets).toHaveLength(1);
  return targets[0];
}

async function readAll(opened: OpenedSource): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of opened.stream!) parts.push(part);
  return Buffer.concat(parts);
}

/** Processes (pid, state) whose command line contains `marker` (or is exactly it), zombies included. */
async function processesWith(marker: string, exact = false): Promise<Array<{ pid: number; state: string }>> {
  const found: Array<{ pid: number; state: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const line = cmdline.replace(/\0/g, ' ').trim();
    if (exact ? line !== marker : !line.includes(marker)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    found.push({ pid: Number(entry), state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) });
  }
  return found;
}

/** Children of this process that are zombies (exited, not reaped). */
async function zombieChildren(): Promise<number[]> {
  const zombies: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' && Number(fields[1]) === process.pid) zombies.push(Number(entry));
  }
  return zombies;
}

/** Polls until `count` processes run exactly `commandLine` (the shell may take a moment under load). */
async function waitForProcesses(commandLine: string, count: number): Promise<number> {
  let found = 0;
  for (let i = 0; i < 200; i++) {
    found = (await processesWith(commandLine, true)).length;
    if (found >= count) break;
    await sleep(25);
  }
  return found;
}

/** A unique sleep duration, so that /proc tells this test's sleeps from anything else. */
function uniqueSleep(): string {
  return `${60 + Math.floor(Math.random() * 1000)}.${process.pid}${Math.floor(Math.random() * 1000)}`;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-cmd-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cmd: sources', () => {
  it('streams stdout; done resolves on exit 0; the target is named after the command', async () => {
    const t = await target('cmd:printf "hello\\n"; head -c 3000000 /dev/zero');
    expect(t).toMatchObject({ name: 'cmd:printf "hello\\n"; head -c 3000000 /dev/zero', kind: 'stream', chunking: 'file' });
    const opened = await t.open();
    expect(opened.expectedBytes).toBeUndefined();
    const bytes = await readAll(opened);
    await opened.done;
    expect(bytes.length).toBe(6 + 3_000_000);
    expect(bytes.subarray(0, 6).toString()).toBe('hello\n');
    await opened.close();
    expect(await zombieChildren()).toEqual([]);
  });

  it('a command that exits before anyone reads keeps its whole output (Node would discard an unread stdout at exit)', async () => {
    const opened = await (await target('cmd:echo quick')).open();
    // The uploader talks to the server before it reads: the command is long gone by then.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const bytes = await readAll(opened);
    await opened.done;
    expect(bytes.toString()).toBe('quick\n');
  });

  it('a command that exits 3 after writing output: done rejects with the status and the stderr tail', async () => {
    const opened = await (await target('cmd:echo some output; echo "first line" >&2; echo "disk full: cannot write /x" >&2; exit 3')).open();
    expect((await readAll(opened)).toString()).toBe('some output\n');
    const err = await opened.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SourceFailedError);
    const failed = err as SourceFailedError;
    expect(failed.exitCode).toBe(3);
    expect(failed.message).toMatch(/exited with status 3/);
    expect(failed.message).toContain('disk full: cannot write /x');
    expect(failed.stderrTail).toBe('first line\ndisk full: cannot write /x');
  });

  it('keeps only the last ~2 KiB of stderr', async () => {
    const opened = await (await target('cmd:for i in $(seq 1 2000); do echo "noise line $i" >&2; done; echo "the real reason" >&2; exit 1')).open();
    await readAll(opened);
    const err = (await opened.done.catch((e: unknown) => e)) as SourceFailedError;
    expect(err).toBeInstanceOf(SourceFailedError);
    expect(err.stderrTail.length).toBeLessThanOrEqual(2048);
    expect(err.stderrTail.length).toBeGreaterThan(1500);
    expect(err.stderrTail.endsWith('the real reason')).toBe(true);
    expect(err.stderrTail.startsWith('noise line')).toBe(true); // cut at a line start
  });

  it('runs with pipefail: a failing first stage of a pipeline fails the source', async () => {
    const opened = await (await target('cmd:(echo partial; echo "pg_dump: connection lost" >&2; exit 2) | cat')).open();
    expect((await readAll(opened)).toString()).toBe('partial\n');
    await expect(opened.done).rejects.toThrow(/exited with status 2[\s\S]*connection lost/);
  });

  it('a command killed by a signal fails with the signal named', async () => {
    const opened = await (await target('cmd:echo x; kill -9 $$')).open();
    await readAll(opened);
    const err = (await opened.done.catch((e: unknown) => e)) as SourceFailedError;
    expect(err).toBeInstanceOf(SourceFailedError);
    expect(err.signal).toBe('SIGKILL');
    expect(err.message).toMatch(/killed by SIGKILL/);
  });

  it('close() kills a long-running command; no process and no zombie is left', async () => {
    const duration = uniqueSleep();
    const opened = await (await target(`cmd:sleep ${duration}`)).open();
    expect(await waitForProcesses(`sleep ${duration}`, 1)).toBe(1);
    await opened.close();
    await opened.close(); // idempotent
    expect(await processesWith(`sleep ${duration}`)).toEqual([]);
    await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
    expect(await zombieChildren()).toEqual([]);
  });

  it('close() kills every process of a pipeline, and a reader blocked on the stream ends with SourceClosedError', async () => {
    const a = uniqueSleep();
    const b = uniqueSleep();
    const opened = await (await target(`cmd:sleep ${a} | sleep ${b}; echo never`)).open();
    const reading = readAll(opened).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((await waitForProcesses(`sleep ${a}`, 1)) + (await waitForProcesses(`sleep ${b}`, 1))).toBe(2);
    await opened.close();
    expect(await reading).toBeInstanceOf(SourceClosedError);
    expect(await processesWith(`sleep ${a}`)).toEqual([]);
    expect(await processesWith(`sleep ${b}`)).toEqual([]);
    expect(await zombieChildren()).toEqual([]);
  });

  it('an abort signal stops the command', async () => {
    const duration = uniqueSleep();
    const controller = new AbortController();
    const opened = await (await target(`cmd:sleep ${duration}`)).open(controller.signal);
    expect(await waitForProcesses(`sleep ${duration}`, 1)).toBe(1);
    controller.abort();
    await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
    await opened.close();
    expect(await processesWith(`sleep ${duration}`)).toEqual([]);
  });

  it('stopping the iteration early (break) stops the command', async () => {
    const duration = uniqueSleep();
    const opened = await (await target(`cmd:echo start; exec sleep ${duration}`)).open();
    for await (const part of opened.stream!) {
      expect(Buffer.from(part).toString()).toBe('start\n');
      break;
    }
    await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
    expect(await processesWith(`sleep ${duration}`)).toEqual([]);
  });

  it('reads with backpressure: a producer faster than the reader is held back, not buffered', async () => {
    const counter = join(dir, 'written');
    // Writes 64 KiB blocks forever, counting them in a file.
    const opened = await (await target(`cmd:i=0; while :; do head -c 65536 /dev/zero; i=$((i+1)); echo $i > ${counter}; done`)).open();
    const iterator = opened.stream![Symbol.asyncIterator]();
    await iterator.next();
    await sleep(500);
    const written = Number((await readFile(counter, 'utf8')).trim());
    // The pipe and the stream's buffer hold a few blocks; without backpressure it would be thousands.
    expect(written).toBeLessThan(16);
    await opened.close();
    await expect(iterator.next()).rejects.toBeInstanceOf(SourceClosedError);
  });

  it('uses the given environment', async () => {
    const opened = await (await target('cmd:printf "%s" "$HOARD_TEST_VALUE"', { ...process.env, HOARD_TEST_VALUE: 'from-env' })).open();
    expect((await readAll(opened)).toString()).toBe('from-env');
    await opened.done;
  });

  it('a stream can be read once', async () => {
    const opened = await (await target('cmd:echo x')).open();
    await readAll(opened);
    await opened.done;
    expect(() => opened.stream![Symbol.asyncIterator]()).toThrow(/read only once/);
  });

  it('a missing program in a command is the command failing (status 127), with bash saying what', async () => {
    const opened = await (await target('cmd:hoard-no-such-program --dump')).open();
    await readAll(opened);
    await expect(opened.done).rejects.toThrow(/status 127[\s\S]*hoard-no-such-program: command not found/);
  });

  it('pg_dump not on PATH: SourceToolMissingError names the package', async () => {
    const [t] = await resolveSource(parseSourceSpec('postgres://u@127.0.0.1:1/db'), { env: { ...process.env, PATH: dir } });
    const err = await t.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceToolMissingError);
    expect((err as Error).message).toMatch(/needs pg_dump.*apt-get install postgresql-client/);
  });
});
