/**
 * After a sync: each copied snapshot, read back from the target bucket. Structure always
 * (the manifest and its pages decode, every stored chunk is in an index segment of its
 * store read afresh from the bucket, not the sync's in-memory index, and every pack
 * named exists); with `readData` the whole snapshot is also read and every chunk checked
 * against its fingerprint and the stream against its hash, as a restore would.
 */
import { contentKeyFromHash } from '../content-key.js';
import { ObjectFormatError } from '../format-error.js';
import { decodePage } from '../snapshot/chunk-list.js';
import { mapConcurrent } from '../repo/concurrency.js';
import type { Repository, SnapshotInfo } from '../repo/repository.js';
import { restore } from '../repo/restore.js';
import type { RestoreSink } from '../repo/restore-sink.js';
import { StoreIndex } from '../repo/store-index.js';
import { ObjectNotFoundError } from '../store/errors.js';

export interface CopyCheck {
  key: string;
  /** What is wrong; empty when the copy is sound. */
  problems: string[];
}

export interface CopyVerification {
  snapshots: number;
  pages: number;
  chunks: number;
  packs: number;
  /** Bytes read and checked with `readData`. */
  bytesChecked: number;
  dataChecked: boolean;
  checks: CopyCheck[];
  ok: boolean;
}

/** A restore target that keeps nothing: the pipeline only reads and checks. */
const checkOnly = (): RestoreSink => ({
  discards: true,
  write: async () => undefined,
  zeros: async () => undefined,
  finish: async () => undefined,
  abort: async () => undefined,
});

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export async function verifyCopies(
  target: Repository,
  copies: readonly SnapshotInfo[],
  options: { readData?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<CopyVerification> {
  const result: CopyVerification = {
    snapshots: 0,
    pages: 0,
    chunks: 0,
    packs: 0,
    bytesChecked: 0,
    dataChecked: options.readData === true,
    checks: [],
    ok: true,
  };
  const indexes = new Map<string, Promise<StoreIndex>>();
  const packsSeen = new Map<string, Promise<boolean>>();
  for (const copy of copies) {
    const problems: string[] = [];
    try {
      const manifest = await target.manifest(copy.key);
      let index = indexes.get(manifest.meta.store);
      if (!index) indexes.set(manifest.meta.store, (index = StoreIndex.load(target.objects, manifest.meta.store)));
      const storeIndex = await index;
      const packs = new Set<number>();
      for (const page of manifest.pages) {
        const key = contentKeyFromHash('chunklists', page.hash);
        const refs = decodePage(key, await target.objects.get(key));
        result.pages++;
        for (const ref of refs) {
          result.chunks++;
          if (ref.zero) continue;
          const pack = storeIndex.packOf(ref.fingerprint);
          if (pack === undefined) {
            if (problems.length < 10) problems.push(`chunk ${hex(ref.fingerprint)} (page ${key}) is in no index segment of its store`);
          } else packs.add(pack);
        }
      }
      await mapConcurrent(
        [...packs].map((p) => storeIndex.packKey(p)),
        8,
        (packKey) => {
          let seen = packsSeen.get(packKey);
          if (!seen) packsSeen.set(packKey, (seen = target.objects.head(packKey).then((info) => info !== undefined)));
          return seen;
        },
        (exists, packKey) => {
          if (!exists) problems.push(`pack ${packKey} is missing`);
        },
      );
      if (options.readData && problems.length === 0) {
        const restored = await restore(target, copy, checkOnly());
        result.bytesChecked += restored.bytesWritten;
      }
    } catch (err) {
      if (err instanceof ObjectFormatError || err instanceof ObjectNotFoundError || (err as { code?: string }).code === 'data_damaged') {
        problems.push((err as Error).message);
      } else throw err;
    }
    result.snapshots++;
    result.checks.push({ key: copy.key, problems });
    if (problems.length > 0) result.ok = false;
    options.onProgress?.(result.snapshots, copies.length);
  }
  result.packs = packsSeen.size;
  return result;
}
