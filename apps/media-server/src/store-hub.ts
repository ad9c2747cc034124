/**
 * The media server's fingerprint stores: each opened once, its index loaded into memory
 * at start (the `global` store and every per-job store), and one StoreWriter per store
 * shared by all sessions writing to it, so concurrent sessions dedup against each other
 * and fill packs together.
 *
 * A pack left half-full by a session whose agent went away is sealed after IDLE_SEAL_MS
 * without new blobs, so what that agent uploaded becomes durable and deduplicable for its
 * retry.
 */
import type { StoreReport } from '@hoard/protocol';
import {
  CONDEMNED_PREFIX,
  GC_LOCK_KEY,
  REVIVED_PREFIX,
  StoreWriter,
  listAll,
  type FingerprintStore,
  type Repository,
  type StoreIndex,
} from '@hoard/repository';

import { Serial } from './serial.js';

const IDLE_SEAL_MS = 5_000;
/** How often the bucket is checked for the work of a GC run elsewhere (`hoard gc --repo`). */
const GC_FOLLOW_MS = 60_000;

export interface GcFollowResult {
  /** Store indexes rebuilt from the segments. */
  rebuilt: number;
  /** Their entries before and after. */
  entriesBefore: number;
  entriesAfter: number;
}

export interface OpenStore {
  store: FingerprintStore;
  index: StoreIndex;
  writer: StoreWriter;
  /** Fingerprint lookups (missing queries and reference checks) since start. */
  lookups: number;
}

export type { StoreReport };

export class StoreHub {
  private readonly open = new Map<string, Promise<OpenStore>>();
  private readonly lastBlobs = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private lastRate = { at: Date.now(), lookups: new Map<string, number>(), perSecond: new Map<string, number>() };
  /** Listing of gc/condemned/ and gc/revived/ when the indexes last followed a GC. */
  private gcSeen = '';
  private lastGcCheck = Date.now();
  private readonly following = new Serial();

  constructor(
    private readonly repo: Repository,
    private readonly options: { uploadsInFlight?: number; sealIdleMs?: number; gcFollowMs?: number } = {},
  ) {
    this.timer = setInterval(() => void this.tick(), options.sealIdleMs ?? IDLE_SEAL_MS);
    this.timer.unref();
  }

  /** Opens every store in the repository and loads its index (server start). */
  async loadAll(): Promise<OpenStore[]> {
    const records = await this.repo.stores();
    return Promise.all(records.map((r) => this.byName(r.name)));
  }

  /** The store a job writes to (its own per-job store if it has one, else `global`). */
  async forJob(job: string, name?: string): Promise<OpenStore> {
    const store = await this.repo.storeForJob(job, name);
    return this.byName(store.name);
  }

  byName(name: string): Promise<OpenStore> {
    let entry = this.open.get(name);
    if (!entry) {
      entry = (async () => {
        const store = await this.repo.storeByName(name);
        const index = await store.index();
        const writer = new StoreWriter(this.repo.objects, store, index, {
          packBytes: this.repo.config.packBytes,
          uploadsInFlight: this.options.uploadsInFlight ?? 2,
        });
        return { store, index, writer, lookups: 0 };
      })();
      this.open.set(name, entry);
      entry.catch(() => this.open.delete(name));
    }
    return entry;
  }

  /**
   * Brings the in-memory indexes in line with what garbage collection did to the bucket,
   * by rebuilding them from the index segments (StoreIndex.rebuild): condemned packs are
   * no longer deduplicated against (a backup that used one anyway is caught by its commit
   * check), repacked and revived packs are used. Does nothing while a GC holds the lock or
   * when the GC objects have not changed since last time, unless `force`. Serialized.
   */
  followGc(force = false): Promise<GcFollowResult | undefined> {
    return this.following.run(() => this.followGcOnce(force));
  }

  private async followGcOnce(force: boolean): Promise<GcFollowResult | undefined> {
    const objects = this.repo.objects;
    const keys: string[] = [];
    for (const prefix of [CONDEMNED_PREFIX, REVIVED_PREFIX]) for await (const info of listAll(objects, prefix)) keys.push(info.key);
    const seen = keys.sort().join('\n');
    if (!force && seen === this.gcSeen) return undefined;
    // A GC rewriting the segments right now: look again once it is done.
    if (await objects.head(GC_LOCK_KEY)) return undefined;
    const result: GcFollowResult = { rebuilt: 0, entriesBefore: 0, entriesAfter: 0 };
    for (const entry of this.open.values()) {
      const s = await entry.catch(() => undefined);
      if (!s) continue;
      result.entriesBefore += s.index.fingerprints.size;
      await s.index.rebuild(objects, s.store.id);
      result.entriesAfter += s.index.fingerprints.size;
      result.rebuilt++;
    }
    this.gcSeen = seen;
    return result;
  }

  async reports(): Promise<StoreReport[]> {
    const all = await Promise.allSettled([...this.open.values()]);
    const out: StoreReport[] = [];
    for (const r of all) {
      if (r.status !== 'fulfilled') continue;
      const { store, index, writer, lookups } = r.value;
      out.push({
        name: store.name,
        id: store.id,
        scope: store.record.scope.kind === 'job' ? `job:${store.record.scope.job}` : 'global',
        encrypted: store.encrypted,
        entries: index.fingerprints.size,
        memoryBytes: index.fingerprints.memoryBytes,
        lookups,
        lookupsPerSecond: this.lastRate.perSecond.get(store.name) ?? 0,
        packsWritten: writer.stats.packs,
        storedBytes: writer.stats.storedBytes,
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Seals packs nobody has added to lately, and refreshes the lookup rates. */
  private async tick(): Promise<void> {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastRate.at) / 1000);
    const lookups = new Map<string, number>();
    const perSecond = new Map<string, number>();
    for (const entry of this.open.values()) {
      let s: OpenStore;
      try {
        s = await entry;
      } catch {
        continue;
      }
      const name = s.store.name;
      lookups.set(name, s.lookups);
      perSecond.set(name, Math.round((s.lookups - (this.lastRate.lookups.get(name) ?? 0)) / seconds));
      const blobs = s.writer.stats.blobs;
      if (s.writer.openBlobs > 0 && this.lastBlobs.get(name) === blobs) {
        // Errors surface to the sessions that depend on these blobs, at their commit.
        await s.writer.flush().catch(() => undefined);
      }
      this.lastBlobs.set(name, blobs);
    }
    this.lastRate = { at: now, lookups, perSecond };
    if (now - this.lastGcCheck >= (this.options.gcFollowMs ?? GC_FOLLOW_MS)) {
      this.lastGcCheck = now;
      await this.followGc().catch(() => undefined);
    }
  }

  /** Makes every open pack durable (server shutdown). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const entry of this.open.values()) {
      const s = await entry.catch(() => undefined);
      if (s) await s.writer.flush().catch(() => undefined);
    }
  }
}
