/**
 * VM disk images: raw images (and block devices) are read directly; qcow2 and other
 * formats qemu understands are read as the guest sees them (the virtual disk, raw,
 * backing chain applied) through qemu-nbd and a small NBD client (nbd.ts).
 *
 * Why qemu-nbd: `qemu-img convert -O raw IMG /dev/stdout` and `qemu-img dd` refuse a
 * pipe as output (they create/resize the target: "Could not resize file: Invalid
 * argument"), and `--target-image-opts driver=host_device` wants a character or block
 * device. qemu-nbd serves the virtual disk over a unix socket; the client reads it in
 * order with a bounded window of requests, so memory stays bounded and the bytes are
 * exactly what the guest sees. docs/sources.md has the details.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '@hoard/errors';
import { SourceClosedError, SourceError, SourceFailedError, SourceSizeMismatchError, SourceToolMissingError } from './errors.js';
import { fileTarget, openFile, readHead, statError } from './file.js';
import { NbdClient, NbdError } from './nbd.js';
import { abortError, deferred, exitWords, launch, processFailure, STDERR_TAIL_BYTES } from './process.js';
import type { OpenedSource, SourceKind, SourceTarget } from './source.js';

/** qcow2's 4-byte magic, "QFI\xfb". */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
/** How long qemu-nbd may take to open the image and listen. */
const NBD_START_TIMEOUT_MS = 30_000;

/** `raw`, `qcow2`, or another qemu block driver named by libvirt (`vmdk`, `vdi`, ...). */
export type ImageFormat = string;

/** `qcow2` when the file starts with qcow2's magic, else `raw`. Never guessed from the file name. */
export async function detectImageFormat(target: string, path: string): Promise<'raw' | 'qcow2'> {
  let head: Buffer;
  try {
    head = await readHead(path, 4);
  } catch (err) {
    throw statError(target, path, err);
  }
  return head.length === 4 && head.equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
}

/** A target that reads an image of a known format; `raw` reads the file or device itself. */
export function imageTarget(name: string, path: string, kind: SourceKind, format: ImageFormat, env: NodeJS.ProcessEnv): SourceTarget {
  if (format === 'raw') return fileTarget(name, path, kind, 'vm-image');
  return { name, kind, chunking: 'vm-image', open: (signal) => openQemuImage(name, path, format, env, signal) };
}

/** The virtual size of an image, from `qemu-img info --output=json`. */
export async function qemuVirtualSize(target: string, path: string, format: ImageFormat, env: NodeJS.ProcessEnv): Promise<number> {
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile('qemu-img', ['info', '--output=json', '-f', format, path], { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new SourceToolMissingError(target, 'qemu-img', 'qemu-utils'));
      const tail = String(stderr).slice(-STDERR_TAIL_BYTES).trim();
      const code = typeof err.code === 'number' ? err.code : null;
      reject(
        processFailure(
          target,
          'qemu-img',
          `qemu-img info cannot read ${path} as ${format}${lockHint(tail)}`,
          { code, signal: (err.signal as NodeJS.Signals) ?? null },
          tail,
        ),
      );
    });
  });
  const size = (JSON.parse(stdout) as { 'virtual-size'?: unknown })['virtual-size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new SourceFailedError(target, `${target}: qemu-img info gave no virtual size for ${path}`, { program: 'qemu-img' });
  }
  return size;
}

function lockHint(stderrTail: string): string {
  return /lock/i.test(stderrTail)
    ? " (the image is in use, probably by a running VM: shut the VM down, or back up an external snapshot's backing file, e.g. after virsh snapshot-create-as --disk-only)"
    : '';
}

/** Opens a non-raw image as its raw virtual disk through qemu-nbd. */
export async function openQemuImage(name: string, path: string, format: ImageFormat, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<OpenedSource> {
  if (signal?.aborted) throw abortError(name, signal);
  const virtualSize = await qemuVirtualSize(name, path, format, env);
  const dir = await mkdtemp(join(tmpdir(), 'hoard-nbd-'));
  const socketPath = join(dir, 'nbd.sock');
  const removeDir = (): Promise<void> => rm(dir, { recursive: true, force: true }).catch(() => {});
  let server: Awaited<ReturnType<typeof launch>>;
  try {
    server = await launch({
      target: name,
      program: 'qemu-nbd',
      command: 'qemu-nbd',
      // --shared=1: this client only; without --persistent the server exits 0 after we disconnect.
      args: ['--read-only', `--format=${format}`, `--socket=${socketPath}`, '--shared=1', path],
      env,
      packageHint: 'qemu-utils',
      stdout: 'ignore',
    });
  } catch (err) {
    await removeDir();
    throw err;
  }
  const serverFailed = (status: { code: number | null; signal: NodeJS.Signals | null }, what: string): SourceFailedError => {
    const tail = server.stderr.text();
    return processFailure(name, 'qemu-nbd', `${what}: qemu-nbd ${exitWords(status)}${lockHint(tail)}`, status, tail);
  };

  let client: NbdClient;
  try {
    client = await connectWhenListening(socketPath, server.exited, signal);
  } catch (err) {
    await server.stop();
    await removeDir();
    if (signal?.aborted) throw abortError(name, signal);
    if (err instanceof NbdExitedError) throw serverFailed(err.status, `cannot serve ${path}`);
    if (err instanceof SourceError) throw err;
    throw new SourceFailedError(name, `${name}: cannot read ${path} through qemu-nbd: ${(err as Error).message}`, { program: 'qemu-nbd', cause: err });
  }
  if (client.size !== virtualSize) {
    client.destroy();
    await server.stop();
    await removeDir();
    throw new SourceFailedError(name, `${name}: qemu-nbd serves ${client.size} bytes but qemu-img info says the virtual size is ${virtualSize}`, {
      program: 'qemu-nbd',
    });
  }

  const done = deferred();
  let closing = false;
  let exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void server.exited.then((status) => {
    exitStatus = status;
  });
  let closePromise: Promise<void> | undefined;
  const closedError = (): SourceError =>
    signal?.aborted ? abortError(name, signal) : new SourceClosedError(name, `${name}: closed before it was read to the end`);
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      closing = true;
      if (!done.settled()) done.reject(closedError());
      client.destroy();
      await server.stop();
      await removeDir();
    })();
    return closePromise;
  };
  const onAbort = (): void => void close();
  signal?.addEventListener('abort', onAbort, { once: true });
  done.promise.finally(() => signal?.removeEventListener('abort', onAbort)).catch(() => {});

  async function* readAll(): AsyncGenerator<Uint8Array> {
    let bytes = 0;
    let ok = false;
    try {
      for await (const piece of client.read(0, virtualSize)) {
        if (closing) break;
        bytes += piece.length;
        yield piece;
      }
      if (closing) throw closedError();
      if (bytes !== virtualSize) throw new SourceSizeMismatchError(name, virtualSize, bytes, true);
      await client.disconnect();
      const status = await server.exited;
      if (status.code !== 0) throw serverFailed(status, `after serving all ${bytes} bytes of ${path}`);
      ok = true;
      done.resolve();
      await removeDir();
    } catch (err) {
      let error: unknown = err;
      if (closing) error = closedError();
      else if (err instanceof NbdError) {
        // The server died under us (exitStatus set) or broke the protocol.
        await Promise.race([server.exited, sleep(500)]);
        error = exitStatus
          ? serverFailed(exitStatus, `reading ${path} failed after ${bytes} bytes`)
          : new SourceFailedError(name, `${name}: reading ${path} through qemu-nbd failed after ${bytes} bytes: ${err.message}`, {
              program: 'qemu-nbd',
              cause: err,
            });
      } else if (!(err instanceof SourceError)) {
        error = new SourceFailedError(name, `${name}: reading ${path} failed after ${bytes} bytes: ${(err as Error).message}`, {
          program: 'qemu-nbd',
          cause: err,
        });
      }
      done.reject(error);
      throw error;
    } finally {
      if (!ok) await close();
    }
  }
  let iterated = false;
  const stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      if (iterated) throw new SourceError(name, `${name}: the stream can be read only once`);
      iterated = true;
      return readAll();
    },
  };
  return { stream, expectedBytes: virtualSize, done: done.promise, close };
}

class NbdExitedError extends Error {
  readonly code: ErrorCode = 'source_failed';
  constructor(readonly status: { code: number | null; signal: NodeJS.Signals | null }) {
    super('qemu-nbd exited');
  }
}

/** Connects as soon as qemu-nbd listens; fails when it exits first, the signal aborts or it takes too long. */
async function connectWhenListening(
  socketPath: string,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  signal?: AbortSignal,
): Promise<NbdClient> {
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((s) => {
    status = s;
  });
  const deadline = Date.now() + NBD_START_TIMEOUT_MS;
  let delay = 5;
  for (;;) {
    if (status) throw new NbdExitedError(status);
    if (signal?.aborted) throw new Error('aborted');
    try {
      return await NbdClient.connect(socketPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') {
        // qemu-nbd may have accepted and then died while opening the image.
        await Promise.race([exited, sleep(200)]);
        if (status) throw new NbdExitedError(status);
        throw err;
      }
    }
    if (Date.now() > deadline) throw new Error(`qemu-nbd did not listen on ${socketPath} within ${NBD_START_TIMEOUT_MS / 1000} s`);
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** Opens an image of unknown format: qcow2 by its magic, otherwise raw. */
export async function openDetectedImage(name: string, path: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<OpenedSource> {
  const format = await detectImageFormat(name, path);
  return format === 'raw' ? openFile(name, path, signal) : openQemuImage(name, path, format, env, signal);
}
