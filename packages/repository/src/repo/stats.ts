/**
 * `hoard stats`: what each fingerprint store holds and how well dedup and compression
 * work, from the bucket alone and without a passphrase. Figures come from snapshot
 * manifests (logical bytes) and index segments (raw and stored lengths of every blob),
 * never from reading packs. Definitions: docs/verify.md, "Stats".
 */
import { FingerprintIndex } from '@hoard/chunker';
import { decodeIndexSegment } from '../index-segment/index-segment.js';
import { decodeManifest } from '../snapshot/manifest.js';
import { listAll } from '../store/object-store.js';
import { mapConcurrent } from './concurrency.js';
import { decodeStoreRecord, STORES_PREFIX, type StoreScope } from './records.js';
import { SNAPSHOTS_PREFIX, type Repository } from './repository.js';

export interface StatsFigures {
  snapshots: number;
  /** Sum of the snapshots' stream lengths (zero runs included). */
  logicalBytes: number;
  /** Sum of the raw lengths of the distinct blobs (chunks) in the index segments. */
  uniqueBytes: number;
  /** Sum of the stored lengths (after compression and encryption) of every indexed blob. */
  storedBytes: number;
  /** Distinct blobs. */
  chunks: number;
  /** Packs named by index segments. */
  packs: number;
  /** logicalBytes / uniqueBytes; 0 when nothing is stored. */
  dedupFactor: number;
  /** uniqueBytes / storedBytes; 0 when nothing is stored. */
  compressionRatio: number;
}

export interface StoreStats extends StatsFigures {
  name: string;
  id: string;
  scope: StoreScope;
}

export interface RepositoryStats {
  stores: StoreStats[];
  totals: StatsFigures & { stores: number; segments: number };
  /** Objects that could not be read or decoded and were left out (run `hoard verify`). */
  skipped: string[];
}

interface Tally {
  snapshots: number;
  logicalBytes: number;
  uniqueBytes: number;
  storedBytes: number;
  chunks: number;
  packs: Set<string>;
  blobs: FingerprintIndex;
}

const READS = 8;
const NO_VALUE = new Uint32Array(1);

export async function repositoryStats(repo: Repository): Promise<RepositoryStats> {
  const objects = repo.objects;
  const skipped: string[] = [];
  /** The decoded object, or undefined when it is missing or damaged (then skipped). */
  const read = async <T>(key: string, decode: (key: string, bytes: Uint8Array) => T): Promise<T | undefined> => {
    try {
      return decode(key, await objects.get(key));
    } catch {
      return undefined;
    }
  };
  const stores: (StoreStats & { tally: Tally })[] = [];
  const byId = new Map<string, Tally>();
  for await (const info of listAll(objects, STORES_PREFIX)) {
    try {
      const record = decodeStoreRecord(info.key, await objects.get(info.key));
      if (byId.has(record.id)) throw new Error('duplicate store id');
      const tally: Tally = {
        snapshots: 0,
        logicalBytes: 0,
        uniqueBytes: 0,
        storedBytes: 0,
        chunks: 0,
        packs: new Set(),
        blobs: new FingerprintIndex({ valueWords: 1 }),
      };
      byId.set(record.id, tally);
      stores.push({ name: record.name, id: record.id, scope: record.scope, ...figures(tally), tally });
    } catch {
      skipped.push(info.key);
    }
  }

  const snapshotKeys: string[] = [];
  for await (const info of listAll(objects, SNAPSHOTS_PREFIX)) snapshotKeys.push(info.key);
  await mapConcurrent(
    snapshotKeys,
    READS,
    (key) => read(key, decodeManifest),
    (manifest, key) => {
      const tally = manifest && byId.get(manifest.meta.store);
      if (!manifest || !tally) {
        skipped.push(key);
        return;
      }
      tally.snapshots++;
      tally.logicalBytes += manifest.meta.logicalBytes;
    },
  );

  const segmentKeys: string[] = [];
  for await (const info of listAll(objects, 'index/')) segmentKeys.push(info.key);
  let segments = 0;
  await mapConcurrent(
    segmentKeys,
    READS,
    (key) => read(key, decodeIndexSegment),
    (segment, key) => {
      const tally = segment && byId.get(Buffer.from(segment.storeId).toString('hex'));
      if (!segment || !tally) {
        skipped.push(key);
        return;
      }
      segments++;
      for (const p of segment.packs) {
        tally.packs.add(Buffer.from(p.packHash).toString('hex'));
        for (const e of p.entries) {
          tally.storedBytes += e.storedLength;
          if (tally.blobs.add(e.fingerprint, NO_VALUE)) {
            tally.chunks++;
            tally.uniqueBytes += e.rawLength;
          }
        }
      }
    },
  );

  const total = { snapshots: 0, logicalBytes: 0, uniqueBytes: 0, storedBytes: 0, chunks: 0, packs: 0 };
  const out: StoreStats[] = stores.map(({ name, id, scope, tally }) => {
    const f = figures(tally);
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += f[k];
    return { name, id, scope, ...f };
  });
  out.sort((a, b) => a.name.localeCompare(b.name));
  return { stores: out, totals: { ...total, ...ratios(total), stores: out.length, segments }, skipped };
}

function figures(t: Tally): StatsFigures {
  const f = {
    snapshots: t.snapshots,
    logicalBytes: t.logicalBytes,
    uniqueBytes: t.uniqueBytes,
    storedBytes: t.storedBytes,
    chunks: t.chunks,
    packs: t.packs.size,
  };
  return { ...f, ...ratios(f) };
}

function ratios(f: { logicalBytes: number; uniqueBytes: number; storedBytes: number }): Pick<StatsFigures, 'dedupFactor' | 'compressionRatio'> {
  return {
    dedupFactor: f.uniqueBytes > 0 ? f.logicalBytes / f.uniqueBytes : 0,
    compressionRatio: f.storedBytes > 0 ? f.uniqueBytes / f.storedBytes : 0,
  };
}
