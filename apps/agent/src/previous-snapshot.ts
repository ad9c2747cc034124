/**
 * The previous snapshot of a job's source, read through the media server, for an
 * incremental run that refers to unchanged parts again instead of reading them.
 *
 * Chunk references are fetched in windows of up to MAX_CHUNK_REFS and served from the
 * window while requests move forward through the stream (an incremental walk visits
 * unchanged files in the previous archive's order), so a run of many small unchanged
 * files costs one request per window, not one per file.
 */
import type { HoardClient, SourceStat, WireRef } from '@hoard/protocol/agent';
import type { ErrorCode } from '@hoard/errors';
import type { PreviousSnapshot, SourceChunkRef } from './sources/source.js';

/** The previous stream no longer matches what its chunk list says (a damaged snapshot). */
export class PreviousSnapshotError extends Error {
  override readonly name = 'PreviousSnapshotError';
  readonly code: ErrorCode = 'data_damaged';
}

interface Window {
  /** Stream offset of refs[0]. */
  first: number;
  refs: WireRef[];
  /** starts[i]: stream offset of refs[i]. */
  starts: number[];
}

export class RemotePreviousSnapshot implements PreviousSnapshot {
  private window: Window | undefined;

  constructor(
    private readonly client: HoardClient,
    private readonly job: string,
    readonly id: string,
    readonly kind: string,
    readonly logicalBytes: number,
    private readonly signal?: AbortSignal,
    readonly sourceStat?: SourceStat,
  ) {}

  read(offset: number, length: number): AsyncIterable<Uint8Array> {
    return this.client.restoreRange(this.job, this.id, offset, length, this.signal);
  }

  async chunks(offset: number, length: number): Promise<AsyncIterable<SourceChunkRef> | undefined> {
    if (length === 0) return (async function* () {})();
    let index = await this.locate(offset);
    if (index === undefined) return undefined;
    const end = offset + length;
    const self = this;
    return (async function* () {
      let at = offset;
      while (at < end) {
        const w = self.window!;
        if (index! >= w.refs.length) {
          index = await self.locate(at);
          if (index === undefined) throw new PreviousSnapshotError(`snapshot ${self.id} has no chunk starting at ${at}; run this backup with --full`);
          continue;
        }
        const ref = self.window!.refs[index!]!;
        at += ref.length;
        index!++;
        if (at > end)
          throw new PreviousSnapshotError(
            `snapshot ${self.id}: a chunk runs past ${end}, where a file ends; the previous archive is not cut at file boundaries; run this backup with --full`,
          );
        yield ref;
      }
    })();
  }

  /** Index in the (possibly refetched) window of the chunk starting exactly at `offset`. */
  private async locate(offset: number): Promise<number | undefined> {
    const inWindow = (): number | undefined => {
      const w = this.window;
      if (!w || offset < w.first || w.refs.length === 0) return undefined;
      const last = w.starts.length - 1;
      if (offset >= w.starts[last]! + w.refs[last]!.length) return undefined;
      let lo = 0;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (w.starts[mid]! <= offset) lo = mid;
        else hi = mid - 1;
      }
      return w.starts[lo] === offset ? lo : -1;
    };
    let i = inWindow();
    if (i === undefined) {
      const page = await this.client.snapshotChunks(this.job, this.id, offset, this.logicalBytes - offset, this.signal);
      const starts: number[] = new Array(page.refs.length);
      let at = page.first;
      for (let k = 0; k < page.refs.length; k++) {
        starts[k] = at;
        at += page.refs[k]!.length;
      }
      this.window = { first: page.first, refs: page.refs, starts };
      i = inWindow();
    }
    return i === undefined || i < 0 ? undefined : i;
  }
}
