/**
 * Unchanged images are not read again on incremental runs (file: and vm: image files,
 * raw or qcow2; never block devices, whose mtime says nothing about their content).
 *
 * Every image snapshot records the image file's stat (`sourceStat`: size, mtime in ns,
 * inode, device; for qcow2 the qcow2 file itself, whose mtime changes whenever the guest
 * writes). On an incremental run, when the previous snapshot of the same job and source
 * recorded the same size, mtime and inode, the image is not opened at all (no qemu-nbd
 * either): the new snapshot refers to the previous snapshot's chunks, fetched from the
 * server in windows (RemotePreviousSnapshot), and its stream hash covers the chunk list
 * (`streamHashOver: "chunks"`), as for directories. The server checks at the batch that
 * every chunk is still in the store. A full run, or a previous snapshot without a
 * matching stat, reads the image.
 *
 * A stat is recorded only when it can be trusted for the next run: the stat taken before
 * reading must equal the one after (the image did not change while it was read), and
 * the mtime must be older than RACY_MTIME_NS at the first stat. A write in the same
 * timestamp tick as the stat would leave the mtime unchanged (the "racy clean" problem
 * git has with its index); such an image is simply read again next time.
 */
import { stat } from 'node:fs/promises';
import type { SourceStat } from '@hoard/protocol/agent';
import { SourceClosedError } from './errors.js';
import { statError } from './file.js';
import { abortError, deferred } from './process.js';
import type { OpenContext, OpenedSource, SourcePart, SourceTarget } from './source.js';

/** An image modified less than this long before its stat is not trusted to be unchanged next time. */
export const RACY_MTIME_NS = 2_000_000_000n;

export async function statImage(path: string): Promise<SourceStat> {
  const s = await stat(path, { bigint: true });
  return { size: Number(s.size), mtimeNs: String(s.mtimeNs), ino: String(s.ino), dev: String(s.dev) };
}

/** Same size, modification time and inode. The device is recorded but not compared: its number may change across reboots (LVM, NFS). */
export function sameImage(a: SourceStat, b: SourceStat): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

/** Wraps an image target so that an incremental run skips the image when it is unchanged. Block devices are returned as they are. */
export function skipWhenUnchanged(target: SourceTarget, path: string): SourceTarget {
  if (target.kind !== 'file') return target;
  return { ...target, open: (signal, context) => openUnlessUnchanged(target, path, signal, context) };
}

async function openUnlessUnchanged(
  target: SourceTarget,
  path: string,
  signal: AbortSignal | undefined,
  context: OpenContext | undefined,
): Promise<OpenedSource> {
  const name = target.name;
  if (signal?.aborted) throw abortError(name, signal);
  // Without a previous-snapshot lookup (a caller other than the uploader) there is nothing to compare with.
  if (!context?.previous) return target.open(signal, context);
  let before: SourceStat;
  try {
    before = await statImage(path);
  } catch (err) {
    throw statError(name, path, err);
  }
  const racy = BigInt(before.mtimeNs) > BigInt(Date.now()) * 1_000_000n - RACY_MTIME_NS;
  const done = deferred();
  let inner: OpenedSource | undefined;
  let closed = false;
  const opened: OpenedSource = {
    done: done.promise,
    image: { unchanged: false, bytesUnchanged: 0 },
    async prepare() {
      if (closed) throw new SourceClosedError(name, `${name}: closed before it was read`);
      const previous = await context?.previous?.();
      if (previous?.sourceStat && previous.kind === target.kind && sameImage(previous.sourceStat, before)) {
        const refs = await previous.chunks(0, previous.logicalBytes);
        if (refs) {
          opened.parts = (async function* (): AsyncGenerator<SourcePart> {
            yield { kind: 'chunks', refs };
          })();
          opened.image = { unchanged: true, bytesUnchanged: previous.logicalBytes, previous: previous.id };
          opened.sourceStat = before;
          done.resolve();
          return;
        }
      }
      inner = await target.open(signal, context);
      opened.stream = inner.stream;
      opened.expectedBytes = inner.expectedBytes;
      inner.done.then(
        async () => {
          const after = await statImage(path).catch(() => undefined);
          if (!racy && after && sameImage(after, before)) opened.sourceStat = before;
          done.resolve();
        },
        (err: unknown) => done.reject(err),
      );
    },
    async close() {
      closed = true;
      if (inner) await inner.close();
      if (!done.settled())
        done.reject(signal?.aborted ? abortError(name, signal) : new SourceClosedError(name, `${name}: closed before it was read to the end`));
    },
  };
  return opened;
}
