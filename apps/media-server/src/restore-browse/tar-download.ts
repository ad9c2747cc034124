/**
 * A subtree (or all) of a directory snapshot as a tar stream, in one pass over the
 * archive: the files' contents lie in the archive in table order, so one ranged restore
 * from the first selected file's content to the last one's end yields them in order; the
 * sink writes each entry's header before its content and skips the bytes of files outside
 * the subtree. For the whole tree the range is the whole archive, so the restore also
 * checks the whole-stream hash.
 *
 * The archive's size is computed before the first byte (Content-Length), so a download
 * cut short by a failed check is visibly incomplete to the browser.
 */
import type { DirEntry, RestoreSink } from '@hoard/repository';
import { padding, TAR_END, tarEntryBytes, tarHeader, type TarEntry } from './tar-format.js';

export interface TarPlan {
  items: { tar: TarEntry; entry: DirEntry }[];
  /** The archive's length in bytes. */
  bytes: number;
  /** The archive range to restore (undefined: no file content to read). */
  range?: { offset: number; length: number };
}

/**
 * Plans the tar of `entries` (a subtree in table order, its top first): names are the
 * recorded paths with the top's parent taken off and `topName` put in the top's place.
 */
export function planTar(entries: readonly DirEntry[], topName: Buffer): TarPlan {
  const top = entries[0]!.path;
  const isRoot = top.equals(Buffer.from('.'));
  const items: TarPlan['items'] = [];
  let bytes = TAR_END.length;
  let first: number | undefined;
  let end = 0;
  for (const entry of entries) {
    const rest = entry.path.equals(top) ? Buffer.alloc(0) : entry.path.subarray(isRoot ? 0 : top.length + 1);
    const name = rest.length === 0 ? topName : Buffer.concat([topName, Buffer.from('/'), rest]);
    const tar: TarEntry = {
      name,
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: entry.type === 'file' ? entry.size : 0,
      mtimeNs: entry.mtimeNs,
      ...(entry.target ? { target: entry.target } : {}),
    };
    items.push({ tar, entry });
    bytes += tarEntryBytes(tar);
    if (entry.type === 'file' && entry.size > 0) {
      first ??= entry.offset;
      end = entry.offset + entry.size;
    }
  }
  return { items, bytes, ...(first !== undefined ? { range: { offset: first, length: end - first } } : {}) };
}

/**
 * Turns archive bytes from offset `startAt` on (the plan's range, or 0 for the whole
 * archive, whose table and trailer after the last file are skipped) into the tar stream
 * on `out`.
 */
export class TarSink implements RestoreSink {
  private next = 0;
  /** Archive offset of the next byte to arrive. */
  private position: number;

  constructor(
    private readonly plan: TarPlan,
    private readonly out: RestoreSink,
    startAt: number,
  ) {
    this.position = startAt;
  }

  drained(): Promise<void> {
    return this.out.drained?.() ?? Promise.resolve();
  }

  async write(data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const item = await this.headersUpToContent();
      if (!item) {
        // After the last selected file: other files' content, or the table and trailer.
        this.position += data.length - at;
        return;
      }
      const { offset, size } = item.entry;
      if (this.position < offset) {
        const skip = Math.min(offset - this.position, data.length - at);
        at += skip;
        this.position += skip;
        continue;
      }
      const take = Math.min(offset + size - this.position, data.length - at);
      await this.out.write(data.subarray(at, at + take));
      at += take;
      this.position += take;
      if (this.position === offset + size) {
        const pad = padding(size);
        if (pad > 0) await this.out.write(Buffer.alloc(pad));
        this.next++;
      }
    }
  }

  async zeros(length: number): Promise<void> {
    const block = Buffer.alloc(Math.min(length, 1 << 20));
    for (let left = length; left > 0; left -= block.length) await this.write(left >= block.length ? block : block.subarray(0, left));
  }

  /** The rest of the headers (entries after the last file's content), the end blocks. */
  async finish(): Promise<void> {
    for (; this.next < this.plan.items.length; this.next++) {
      const { tar, entry } = this.plan.items[this.next]!;
      if (entry.type === 'file' && entry.size > 0)
        throw new Error(`the archive range ended before the content of ${entry.path.toString('utf8')} (a bug: the tar plan and the range disagree)`);
      await this.out.write(tarHeader(tar));
    }
    await this.out.write(TAR_END);
    await this.out.finish();
  }

  async abort(): Promise<void> {
    await this.out.abort();
  }

  /**
   * Writes the headers of entries without content up to the next file with content, and
   * that file's header the first time; returns that file's item (or undefined after the last).
   */
  private headerWritten = -1;
  private async headersUpToContent(): Promise<TarPlan['items'][number] | undefined> {
    for (; this.next < this.plan.items.length; this.next++) {
      const item = this.plan.items[this.next]!;
      const hasContent = item.entry.type === 'file' && item.entry.size > 0;
      if (this.headerWritten !== this.next) {
        await this.out.write(tarHeader(item.tar));
        this.headerWritten = this.next;
      }
      if (hasContent) return item;
    }
    return undefined;
  }
}
