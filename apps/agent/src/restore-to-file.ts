/**
 * A snapshot's stream from the media server into a file or a block device, for
 * `hoard restore --server --to PATH` and for restore runs on an agent. The framed
 * restore route (restore-frames.ts) says where the holes are, so a new file is written
 * sparse, as an embedded restore writes it; and it ends with the server's verdict, so
 * damage found after the last byte still fails the restore.
 *
 * A file is written as PATH.partial, synced, and renamed into place only when the server
 * said the restore is complete; on any failure the partial file is removed. A device is
 * written in place (zeros included, since its old blocks are not zero); on failure the
 * error says which bytes are not restored.
 */
import { rename, rm } from 'node:fs/promises';
import type { HoardClient, RestoreEnd } from '@hoard/protocol/agent';
import { FileSink } from '@hoard/repository';
import type { ErrorCode } from '@hoard/errors';

export interface FileRestoreTarget {
  path: string;
  /** A block device (or a file to overwrite in place): no .partial, zeros written. */
  device: boolean;
}

export interface FileRestoreOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number) => void;
}

/** The restore did not complete; `cause` is the server's verdict or the local failure. */
export class RestoreIncompleteError extends Error {
  override readonly name = 'RestoreIncompleteError';
  readonly code: ErrorCode = 'work_failed';
  constructor(
    message: string,
    /** Bytes written before it stopped. */
    readonly written: number,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

export async function restoreFramesToFile(
  client: HoardClient,
  stream: { job: string; snapshot: string; offset: number; length: number },
  target: FileRestoreTarget,
  options: FileRestoreOptions = {},
): Promise<RestoreEnd & { sparse: boolean }> {
  const partial = target.device ? undefined : `${target.path}.partial`;
  const sink = partial ? await FileSink.create(partial, { exclusive: false }) : await FileSink.overwrite(target.path);
  let written = 0;
  let end: RestoreEnd;
  try {
    if (stream.length === 0) {
      end = { bytes: 0, streamHashChecked: false };
    } else {
      const frames = client.restoreFrames(stream.job, stream.snapshot, stream.offset, stream.length, options.signal);
      for (;;) {
        const next = await frames.next();
        if (next.done) {
          end = next.value;
          break;
        }
        const frame = next.value;
        if ('data' in frame) {
          await sink.write(frame.data);
          written += frame.data.length;
        } else {
          await sink.zeros(frame.zeros);
          written += frame.zeros;
        }
        options.onProgress?.(written);
      }
    }
    await sink.finish();
  } catch (err) {
    await sink.abort();
    if (partial) await rm(partial, { force: true });
    const message = err instanceof Error ? err.message : String(err);
    const kept = partial
      ? 'nothing was kept'
      : `${target.path} holds bytes 0..${written} of the restore; bytes ${written}..${stream.length} of it are not restored (they hold what was there before, or part of the restore)`;
    throw new RestoreIncompleteError(`broke off after ${written} of ${stream.length} bytes: ${message}; ${kept}`, written, { cause: err });
  }
  if (partial) await rename(partial, target.path);
  return { ...end, sparse: partial !== undefined };
}
