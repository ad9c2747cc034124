/**
 * A child process whose standard output is a source stream (pg_dump, mysqldump, a shell
 * command), with the failure semantics every source shares:
 *
 * - stdout is read with backpressure (the child blocks on a full pipe while the chunker
 *   is busy); nothing is buffered beyond the pipe and the stream's 64 KiB buffer;
 * - `done` resolves on exit status 0 once stdout was read to its end, and rejects with
 *   SourceFailedError (status or signal + the last 2 KiB of stderr) otherwise, or with
 *   SourceClosedError when closed first;
 * - the child runs in its own process group, and close() (or the abort signal) sends
 *   SIGTERM to the whole group, then SIGKILL after a grace period, and waits until the
 *   leader is reaped: a shell's children die with it and no zombie is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { SourceClosedError, SourceError, SourceFailedError, SourceToolMissingError } from './errors.js';
import type { OpenedSource } from './source.js';

/** How much of stderr a failure keeps. */
export const STDERR_TAIL_BYTES = 2048;
/** SIGTERM, then SIGKILL after this long. */
const KILL_GRACE_MS = 3000;
/** After the leader exits, how long to wait for stderr to close (a background grandchild may hold it). */
const STDERR_GRACE_MS = 250;

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = STDERR_TAIL_BYTES) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0].length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  /** The tail as text: at most `limit` bytes, cut at a line start when one is near, trimmed. */
  text(): string {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.limit) {
      buf = buf.subarray(buf.length - this.limit);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0 && nl < 200) buf = buf.subarray(nl + 1);
    }
    return buf
      .toString('utf8')
      .replace(/^\uFFFD+/, '')
      .trim();
  }
}

export interface SpawnSourceOptions {
  /** Target name, for errors. */
  target: string;
  /** What to call the program in errors, e.g. `pg_dump`. */
  program: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Debian package that provides `command`, for the "not installed" error. */
  packageHint: string;
  signal?: AbortSignal;
  /** Words for a failure, given the exit status/signal and the stderr tail; default: "<program> exited with status N". */
  describeFailure?: (how: string, stderrTail: string) => string;
}

/** A settled-once promise with its resolve/reject, which never reports an unhandled rejection. */
export function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void; settled: () => boolean } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  let isSettled = false;
  const promise = new Promise<void>((res, rej) => {
    resolve = () => {
      isSettled = true;
      res();
    };
    reject = (err) => {
      isSettled = true;
      rej(err);
    };
  });
  promise.catch(() => {});
  return { promise, resolve, reject, settled: () => isSettled };
}

export function abortError(target: string, signal: AbortSignal): SourceClosedError {
  return new SourceClosedError(target, `${target}: aborted before it was read to the end`, { cause: signal.reason });
}

/** A started child process in its own process group, with its stderr tail. */
export interface Launched {
  child: ChildProcess;
  stderr: TailBuffer;
  /** Settles when the process has exited and been reaped (its stderr closed or given up on). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the group, SIGKILL after a grace period, then SIGKILL to what is left of the group; resolves once the leader is reaped. */
  stop(): Promise<void>;
}

/** Spawns `command` detached (own process group), stdin closed, stderr kept as a tail; resolves once it runs. */
export async function launch(options: {
  target: string;
  program: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  packageHint: string;
  stdout: 'pipe' | 'ignore';
}): Promise<Launched> {
  const { target, program } = options;
  const child = spawn(options.command, options.args, { stdio: ['ignore', options.stdout, 'pipe'], env: options.env, detached: true });
  const stderr = new TailBuffer();
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stderr!.on('error', () => {});
  child.stdout?.on('error', () => {});
  // Node resumes (and so discards) a child's stdout that nobody listens to when the child
  // exits: a fast command (`cat small-file`) that ends before the uploader starts reading
  // would back up as an empty stream. A 'readable' listener marks the output as wanted;
  // it reads nothing itself, so backpressure is unchanged.
  child.stdout?.on('readable', keepOutput);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new SourceToolMissingError(target, options.command, options.packageHint));
      else reject(new SourceFailedError(target, `${target}: could not start ${program}: ${err.message}`, { program, cause: err }));
    });
  });
  const exited = waitForExit(child).then(async (status) => {
    await stderrClosed(child);
    return status;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
        await waitForExit(child);
        clearTimeout(timer);
      }
      // Whatever the leader left behind in its group (a pipeline's other members).
      killGroup(child, 'SIGKILL');
      child.stdout?.destroy();
      child.stderr!.destroy();
      await exited;
    })();
    return stopping;
  };
  return { child, stderr, exited, stop };
}

/** Words for a process that did not exit 0. */
export function exitWords(status: { code: number | null; signal: NodeJS.Signals | null }): string {
  return status.code !== null ? `exited with status ${status.code}` : `was killed by ${status.signal}`;
}

/** `target: words; its last output on stderr:\n...` as a SourceFailedError. */
export function processFailure(
  target: string,
  program: string,
  words: string,
  status: { code: number | null; signal: NodeJS.Signals | null },
  stderrTail: string,
): SourceFailedError {
  return new SourceFailedError(target, `${target}: ${words}${stderrTail ? `; its last output on stderr:\n${stderrTail}` : ' (it wrote nothing on stderr)'}`, {
    program,
    exitCode: status.code,
    signal: status.signal,
    stderrTail,
  });
}

function keepOutput(): void {}

/** Starts the child and returns once it is running (a missing program fails here). */
export async function spawnSource(options: SpawnSourceOptions): Promise<OpenedSource> {
  const { target, program, signal } = options;
  if (signal?.aborted) throw abortError(target, signal);
  const { child, stderr, exited, stop } = await launch({ ...options, stdout: 'pipe' });

  // done: resolved once the child exited 0 *and* the stream was read to its end;
  // rejected when the child failed, or when the source was closed before both happened.
  const done = deferred();
  let closing = false;
  let eof = false;
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let closePromise: Promise<void> | undefined;
  const closedError = (): SourceError =>
    signal?.aborted
      ? abortError(target, signal)
      : new SourceClosedError(target, `${target}: closed before ${program} finished and its output was read to the end`);
  const settle = (): void => {
    if (done.settled()) return;
    if (status && status.code !== 0 && !closing) {
      const tail = stderr.text();
      done.reject(processFailure(target, program, options.describeFailure?.(exitWords(status), tail) ?? `${program} ${exitWords(status)}`, status, tail));
    } else if (status && status.code === 0 && eof) {
      done.resolve();
    } else if (closing) {
      done.reject(closedError());
    }
  };
  void exited.then((result) => {
    status = result;
    settle();
  });

  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      closing = true;
      settle();
      child.stdout!.destroy();
      await stop();
    })();
    return closePromise;
  };

  const onAbort = (): void => void close();
  signal?.addEventListener('abort', onAbort, { once: true });
  done.promise.finally(() => signal?.removeEventListener('abort', onAbort)).catch(() => {});

  let iterated = false;
  const stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      if (iterated) throw new SourceError(target, `${target}: the stream can be read only once`);
      iterated = true;
      return readAll();
    },
  };
  async function* readAll(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of child.stdout!) {
        if (closing) break;
        yield chunk as Buffer;
      }
      if (!closing) {
        eof = true;
        settle();
      }
    } catch (err) {
      if (!closing) {
        const error = new SourceFailedError(target, `${target}: reading the output of ${program} failed: ${(err as Error).message}`, { program, cause: err });
        done.reject(error);
        throw error;
      }
    } finally {
      // The reader stopped early (break, throw): stop the producer too.
      if (!eof) await close();
    }
    if (!eof) throw closedError();
  }

  return { stream, done: done.promise, close };
}

function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

function stderrClosed(child: ChildProcess): Promise<void> {
  const err = child.stderr!;
  if (err.closed || err.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, STDERR_GRACE_MS);
    err.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Signals the child's whole process group (it is its leader: spawned with detached). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}
