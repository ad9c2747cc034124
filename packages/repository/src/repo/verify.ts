/**
 * `hoard verify`: proves from the bucket alone that every committed snapshot can be
 * restored (invariants 1, 3 and 4), and with `readData` that the stored bytes are intact.
 * What is checked and what the findings look like: docs/verify.md.
 *
 *   list snapshots, then index segments, then stores, then packs (this order means a
 *   backup committing meanwhile cannot cause a false finding: see docs/verify.md)
 *   -> store records decode
 *   -> segments decode; each pack they name: trailer (two ranged reads) = segment entries
 *   -> packs no segment names: unreferencedPacks (leftovers, not errors)
 *   -> readData: packs (all, or a random share) read in pieces, every blob's xxh64
 *      checked, and decoded + re-hashed where the store's keys are at hand
 *   -> snapshots: manifest, every page, every stored chunk indexed in the snapshot's
 *      store and not in a pack or blob found damaged above
 *
 * The structure pass never needs a passphrase. Damage never stops the run: every
 * problem becomes a finding and the run goes on. Memory: the stores' indexes (as a
 * backup holds them) plus one segment, a few pack pieces and two pages at a time.
 */
import { loadXxh64, xxh64 } from '../checksum.js';
import { contentKeyFromHash } from '../content-key.js';
import { decodeIndexSegment, packKeyFromHash, type IndexSegment } from '../index-segment/index-segment.js';
import type { PackEntry, PackTrailer } from '../pack/pack-format.js';
import { readPackTrailer } from '../pack/pack-reader.js';
import { decodePage, type ChunkRef } from '../snapshot/chunk-list.js';
import { decodeManifest, type Manifest } from '../snapshot/manifest.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll } from '../store/object-store.js';
import { mapConcurrent } from './concurrency.js';
import { PassphraseRequiredError } from './errors.js';
import type { FingerprintStore } from './fingerprint-store.js';
import { decodeStoreRecord, describeScope, STORES_PREFIX, type StoreRecord } from './records.js';
import { SNAPSHOTS_PREFIX, type Repository } from './repository.js';
import { StoreIndex } from './store-index.js';

export interface VerifyOptions {
  /** Also read the packs' blob data (`verify --read-data`). */
  readData?: boolean;
  /** Percent (above 0, at most 100) of the packs whose data is read, chosen at random (default 100). */
  subsetPercent?: number;
  /**
   * Only this job's snapshots, and only the stores it can use (global ones and its own).
   * Every segment is still read (to know which packs are referenced).
   */
  job?: string;
  onProgress?: (p: { phase: VerifyPhase; done: number; total: number }) => void;
}

export type VerifyPhase = 'stores' | 'segments' | 'packs' | 'data' | 'snapshots';

export interface VerifyFinding {
  /** Manifest key of the affected snapshot, when the problem concerns one. */
  snapshot?: string;
  /** Key of the damaged or missing object. */
  object: string;
  /** Byte offset: in the pack for blobs and trailer entries, in the stream for chunks. */
  offset?: number;
  problem: string;
}

export interface VerifyReport {
  snapshots: number;
  /** Chunk-list page references checked. */
  pages: number;
  segments: number;
  /** Packs named by the segments checked (trailer against segment). */
  packs: number;
  /** Packs whose data was read (readData). */
  packsRead: number;
  blobsChecked: number;
  /** Bytes of pack data read (readData). */
  bytesRead: number;
  findings: VerifyFinding[];
  /**
   * Packs under packs/ that no index segment names: left by interrupted (or still
   * running) backups. Not an error; GC removes them.
   */
  unreferencedPacks: string[];
  /** What was and was not checked (a share of packs; checksums only without keys). */
  notes: string[];
  ok: boolean;
}

/** Largest ranged read of pack data. */
const PIECE_BYTES = 16 * 1024 * 1024;
/** Blobs decoded at once within a piece (bounds the decompressed bytes in memory). */
const DECODES_IN_FLIGHT = 16;
const SEGMENT_READS = 4;
const TRAILER_READS = 8;
const DATA_READS = 2;

interface StoreState {
  id: string;
  record?: StoreRecord;
  /** The stores the run covers (all, or the job's). */
  inScope: boolean;
  index: StoreIndex;
  /** Pack ordinal -> why reads from it fail. */
  badPacks: Map<number, string>;
  /** `ordinal:offset` -> why that blob does not decode. */
  badBlobs: Map<string, string>;
  /** readData: the store opened with its keys, or undefined (checksums only). */
  opened?: Promise<FingerprintStore | undefined>;
}

interface PackState {
  store: StoreState;
  ordinal: number;
  /** The trailer could be read (the pack exists and is a pack). */
  readable: boolean;
}

export async function verify(repo: Repository, options: VerifyOptions = {}): Promise<VerifyReport> {
  return new Verifier(repo, options).run();
}

class Verifier {
  private readonly report: VerifyReport = {
    snapshots: 0,
    pages: 0,
    segments: 0,
    packs: 0,
    packsRead: 0,
    blobsChecked: 0,
    bytesRead: 0,
    findings: [],
    unreferencedPacks: [],
    notes: [],
    ok: false,
  };
  private readonly stores = new Map<string, StoreState>();
  private readonly packs = new Map<string, PackState>();

  constructor(
    private readonly repo: Repository,
    private readonly options: VerifyOptions,
  ) {
    const pct = options.subsetPercent;
    if (pct !== undefined && (!Number.isFinite(pct) || pct <= 0 || pct > 100)) {
      throw new RangeError(`subsetPercent must be above 0 and at most 100, got ${pct}`);
    }
  }

  private get objects() {
    return this.repo.objects;
  }

  private find(finding: VerifyFinding): void {
    this.report.findings.push(finding);
  }

  private progress(phase: VerifyPhase, done: number, total: number): void {
    this.options.onProgress?.({ phase, done, total });
  }

  async run(): Promise<VerifyReport> {
    await loadXxh64();
    const job = this.options.job;
    // Listing order matters (invariant 1 read backwards): a manifest is written after its
    // segments, a segment after its packs and store record. Listing snapshots before
    // segments, and segments before stores and packs, means every object a listed
    // snapshot or segment needs was already there when its listing ran.
    const snapshotKeys = await this.keys(job === undefined ? SNAPSHOTS_PREFIX : `${SNAPSHOTS_PREFIX}${job}/`);
    const segmentKeys = await this.keys('index/');
    await this.checkStores();
    await this.checkSegments(segmentKeys);
    await this.findUnreferencedPacks();
    if (this.options.readData) await this.readData();
    await this.checkSnapshots(snapshotKeys);
    this.report.ok = this.report.findings.length === 0;
    return this.report;
  }

  private async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const info of listAll(this.objects, prefix)) keys.push(info.key);
    return keys;
  }

  // ---- store records -------------------------------------------------------------------

  private async checkStores(): Promise<void> {
    const keys = await this.keys(STORES_PREFIX);
    let done = 0;
    for (const key of keys) {
      try {
        const record = decodeStoreRecord(key, await this.objects.get(key));
        const seen = this.stores.get(record.id);
        if (seen?.record) {
          this.find({ object: key, problem: `store id ${record.id} is also the id of ${STORES_PREFIX}${seen.record.name}` });
        } else {
          const job = this.options.job;
          this.stores.set(record.id, {
            ...this.newStore(record.id),
            record,
            inScope: job === undefined || record.scope.kind === 'global' || record.scope.job === job,
          });
        }
      } catch (err) {
        this.find({ object: key, problem: message(err) });
      }
      this.progress('stores', ++done, keys.length);
    }
  }

  private newStore(id: string): StoreState {
    return { id, inScope: false, index: new StoreIndex(), badPacks: new Map(), badBlobs: new Map() };
  }

  /** The state of store `id`; a store without a record is out of scope (found once). */
  private store(id: string, object: string): StoreState {
    let state = this.stores.get(id);
    if (!state) {
      state = this.newStore(id);
      this.stores.set(id, state);
    }
    if (!state.record) this.find({ object, problem: `belongs to fingerprint store ${id}, which has no record under ${STORES_PREFIX}` });
    return state;
  }

  // ---- index segments and pack trailers ------------------------------------------------

  private async checkSegments(keys: string[]): Promise<void> {
    let done = 0;
    await mapConcurrent(
      keys,
      SEGMENT_READS,
      async (key): Promise<IndexSegment | Error> => {
        try {
          return decodeIndexSegment(key, await this.objects.get(key));
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      },
      async (segment, key) => {
        if (segment instanceof Error) {
          this.find({ object: key, problem: segment.message });
        } else {
          this.report.segments++;
          await this.checkSegment(key, segment);
        }
        this.progress('segments', ++done, keys.length);
      },
    );
  }

  private async checkSegment(key: string, segment: IndexSegment): Promise<void> {
    const storeId = hex(segment.storeId);
    const store = this.store(storeId, key);
    const checks: { packKey: string; state: PackState; entries: PackEntry[] }[] = [];
    for (const p of segment.packs) {
      const packKey = packKeyFromHash(p.packHash);
      let state = this.packs.get(packKey);
      if (state && state.store !== store) {
        // The trailer holds one store id, so one of the two segments is wrong.
        this.find({ object: key, problem: `names pack ${packKey} for store ${storeId}, another segment names it for store ${state.store.id}` });
        continue;
      }
      if (!state) {
        state = { store, ordinal: store.index.packOrdinal(p.packHash), readable: true };
        this.packs.set(packKey, state);
        if (store.inScope) this.report.packs++;
      }
      if (!store.inScope) continue;
      store.index.addPackEntries(p.packHash, p.entries);
      checks.push({ packKey, state, entries: p.entries });
    }
    // A pack named twice (two segments) is checked against each: both must match it.
    await mapConcurrent(
      checks,
      TRAILER_READS,
      (c) => this.checkTrailer(c.packKey, storeId, c.entries, key),
      (problem, c) => {
        if (!problem) return;
        this.find({ object: c.packKey, offset: problem.offset, problem: problem.problem });
        if (!problem.readable) c.state.readable = false;
        if (!c.state.store.badPacks.has(c.state.ordinal)) c.state.store.badPacks.set(c.state.ordinal, problem.problem);
      },
    );
  }

  private async checkTrailer(
    packKey: string,
    storeId: string,
    entries: readonly PackEntry[],
    segmentKey: string,
  ): Promise<{ problem: string; offset?: number; readable: boolean } | undefined> {
    let trailer: PackTrailer;
    try {
      trailer = await readPackTrailer(this.objects, packKey);
    } catch (err) {
      const missing = err instanceof ObjectNotFoundError || (err instanceof Error && /no such object/.test(err.message));
      return { problem: missing ? `pack is missing (named by index segment ${segmentKey})` : message(err), readable: false };
    }
    const against = `index segment ${segmentKey}`;
    if (hex(trailer.storeId) !== storeId) {
      return { problem: `trailer says store ${hex(trailer.storeId)}, ${against} says ${storeId}`, readable: true };
    }
    if (trailer.entries.length !== entries.length) {
      return { problem: `trailer lists ${trailer.entries.length} blobs, ${against} lists ${entries.length}`, readable: true };
    }
    for (let i = 0; i < entries.length; i++) {
      const field = differingField(trailer.entries[i], entries[i]);
      if (field) {
        return { problem: `trailer entry ${i} differs from ${against} in its ${field}`, offset: trailer.entries[i].offset, readable: true };
      }
    }
    return undefined;
  }

  private async findUnreferencedPacks(): Promise<void> {
    let listed = 0;
    for await (const info of listAll(this.objects, 'packs/')) {
      listed++;
      if (!this.packs.has(info.key)) this.report.unreferencedPacks.push(info.key);
    }
    this.progress('packs', listed, listed);
  }

  // ---- pack data ----------------------------------------------------------------------

  private async readData(): Promise<void> {
    const candidates = [...this.packs].filter(([, s]) => s.store.inScope && s.readable);
    const pct = this.options.subsetPercent ?? 100;
    let chosen = candidates;
    if (pct < 100) {
      const count = Math.min(candidates.length, Math.max(1, Math.ceil((candidates.length * pct) / 100)));
      chosen = sample(candidates, count);
      this.report.notes.push(
        `read-data: ${chosen.length} of ${candidates.length} packs (${pct}%) chosen at random; the others were checked for structure only`,
      );
    }
    let done = 0;
    this.progress('data', 0, chosen.length);
    await mapConcurrent(
      chosen,
      DATA_READS,
      async ([packKey, state]) => {
        await this.readPack(packKey, state);
      },
      () => {
        this.progress('data', ++done, chosen.length);
      },
    );
  }

  /** The store with its keys for decoding, or undefined: checksums only (noted once). */
  private codecFor(store: StoreState, packKey: string): Promise<FingerprintStore | undefined> {
    store.opened ??= (async () => {
      const record = store.record;
      if (!record) return undefined;
      try {
        return await this.repo.storeByName(record.name);
      } catch (err) {
        if (err instanceof PassphraseRequiredError) {
          this.report.notes.push(
            `store ${record.name} is encrypted and no passphrase was given: its blobs were checked against their xxh64 checksums only (not decrypted, decompressed or re-hashed)`,
          );
        } else {
          this.find({
            object: `${STORES_PREFIX}${record.name}`,
            problem: `cannot open the store's keys (${message(err)}); its blobs in ${packKey} and other packs were checked against their checksums only`,
          });
        }
        return undefined;
      }
    })();
    return store.opened;
  }

  private async readPack(packKey: string, state: PackState): Promise<void> {
    let trailer: PackTrailer;
    try {
      trailer = await readPackTrailer(this.objects, packKey);
    } catch (err) {
      // Reported by the structure pass unless it changed meanwhile.
      this.packProblem(packKey, state, undefined, `cannot read the trailer: ${message(err)}`);
      return;
    }
    const fpStore = await this.codecFor(state.store, packKey);
    this.report.packsRead++;
    const entries = trailer.entries;
    for (let first = 0; first < entries.length; ) {
      let last = first;
      const start = entries[first].offset;
      while (last + 1 < entries.length && entries[last + 1].offset + entries[last + 1].storedLength - start <= PIECE_BYTES) last++;
      const end = entries[last].offset + entries[last].storedLength;
      let bytes: Uint8Array;
      try {
        bytes = await this.objects.get(packKey, { offset: start, length: end - start });
      } catch (err) {
        this.packProblem(packKey, state, start, `cannot read bytes ${start}+${end - start}: ${message(err)}`);
        return;
      }
      this.report.bytesRead += bytes.length;
      const piece = entries.slice(first, last + 1);
      for (let i = 0; i < piece.length; i += DECODES_IN_FLIGHT) {
        await Promise.all(
          piece
            .slice(i, i + DECODES_IN_FLIGHT)
            .map((e, j) => this.checkBlob(packKey, state, first + i + j, e, bytes.subarray(e.offset - start, e.offset - start + e.storedLength), fpStore)),
        );
      }
      first = last + 1;
    }
  }

  private async checkBlob(
    packKey: string,
    state: PackState,
    i: number,
    e: PackEntry,
    stored: Uint8Array,
    fpStore: FingerprintStore | undefined,
  ): Promise<void> {
    this.report.blobsChecked++;
    let problem: string | undefined;
    if (fpStore) {
      try {
        await fpStore.codec.decode(stored, { codec: e.codec, rawLength: e.rawLength, checksum: e.checksum }, e.fingerprint, fpStore.fingerprinter.digest);
      } catch (err) {
        problem = message(err);
      }
    } else {
      const actual = xxh64(stored);
      if (actual !== e.checksum)
        problem = `blob failed its checksum check: xxh64 of the stored bytes is ${hex64(actual)}, the trailer says ${hex64(e.checksum)}`;
    }
    if (!problem) return;
    problem = `blob ${i} (chunk ${hex(e.fingerprint)}, ${e.storedLength} stored bytes): ${problem}`;
    this.find({ object: packKey, offset: e.offset, problem });
    state.store.badBlobs.set(`${state.ordinal}:${e.offset}`, problem);
  }

  private packProblem(packKey: string, state: PackState, offset: number | undefined, problem: string): void {
    if (!state.store.badPacks.has(state.ordinal)) {
      this.find({ object: packKey, offset, problem });
      state.store.badPacks.set(state.ordinal, problem);
    }
  }

  // ---- snapshots ----------------------------------------------------------------------

  private async checkSnapshots(keys: string[]): Promise<void> {
    let done = 0;
    for (const key of keys) {
      await this.checkSnapshot(key);
      this.progress('snapshots', ++done, keys.length);
    }
  }

  private async checkSnapshot(key: string): Promise<void> {
    let manifest: Manifest;
    try {
      manifest = decodeManifest(key, await this.objects.get(key));
    } catch (err) {
      this.find({ snapshot: key, object: key, problem: message(err) });
      return;
    }
    this.report.snapshots++;
    const meta = manifest.meta;
    if (!key.startsWith(`${SNAPSHOTS_PREFIX}${meta.job}/`)) {
      this.find({ snapshot: key, object: key, problem: `manifest says job ${JSON.stringify(meta.job)}, its key says otherwise` });
    }
    let store = this.stores.get(meta.store);
    if (!store?.record) {
      this.find({ snapshot: key, object: key, problem: `fingerprint store ${meta.store} has no record under ${STORES_PREFIX}: its chunks cannot be located` });
      store = undefined;
    } else if (!store.inScope) {
      this.find({ snapshot: key, object: key, problem: `uses fingerprint store ${store.record.name}, which belongs to ${describeScope(store.record.scope)}` });
      store = undefined;
    }
    // Chunk problems are summed per object: a missing pack is one finding per snapshot,
    // not one per chunk.
    const problems = new Map<string, { object: string; offset: number; count: number; problem: string }>();
    const note = (object: string, offset: number, problem: string) => {
      const seen = problems.get(object);
      if (seen) seen.count++;
      else problems.set(object, { object, offset, count: 1, problem });
    };
    const pageKeys = manifest.pages.map((p) => contentKeyFromHash('chunklists', p.hash));
    const load = (i: number): Promise<ChunkRef[] | Error> =>
      this.objects
        .get(pageKeys[i])
        .then(
          (bytes) => decodePage(pageKeys[i], bytes),
          (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
        )
        .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    let next = manifest.pages.length > 0 ? load(0) : undefined;
    for (let i = 0; i < manifest.pages.length; i++) {
      const ref = manifest.pages[i];
      const pageKey = pageKeys[i];
      const refs = await next!;
      next = i + 1 < manifest.pages.length ? load(i + 1) : undefined;
      this.report.pages++;
      if (refs instanceof Error) {
        const missing = refs instanceof ObjectNotFoundError;
        this.find({
          snapshot: key,
          object: pageKey,
          offset: ref.offset,
          problem: missing ? `chunk-list page ${i} is missing` : `chunk-list page ${i}: ${refs.message}`,
        });
        continue;
      }
      const bytes = refs.reduce((n, c) => n + c.length, 0);
      if (refs.length !== ref.chunks || bytes !== ref.logicalBytes) {
        this.find({
          snapshot: key,
          object: pageKey,
          offset: ref.offset,
          problem: `chunk-list page ${i} holds ${refs.length} chunks, ${bytes} bytes; the manifest says ${ref.chunks} chunks, ${ref.logicalBytes} bytes`,
        });
        continue;
      }
      if (!store) continue;
      let offset = ref.offset;
      for (const chunk of refs) {
        if (!chunk.zero) {
          const loc = store.index.locate(chunk.fingerprint);
          if (!loc) {
            note(pageKey, offset, `chunk ${hex(chunk.fingerprint)} is in no index segment of store ${store.record!.name}`);
          } else {
            const bad = store.badPacks.get(loc.pack) ?? store.badBlobs.get(`${loc.pack}:${loc.offset}`);
            if (bad !== undefined)
              note(store.index.packKey(loc.pack), offset, `chunk ${hex(chunk.fingerprint)} at pack offset ${loc.offset} cannot be read: ${bad}`);
          }
        }
        offset += chunk.length;
      }
    }
    for (const p of problems.values()) {
      const many = p.count > 1 ? `${p.count} chunks from this offset on are affected; the first: ` : '';
      this.find({ snapshot: key, object: p.object, offset: p.offset, problem: `${many}${p.problem}` });
    }
  }
}

function differingField(a: PackEntry, b: PackEntry): string | undefined {
  if (Buffer.compare(a.fingerprint, b.fingerprint) !== 0) return 'fingerprint';
  if (a.offset !== b.offset) return 'offset';
  if (a.storedLength !== b.storedLength) return 'stored length';
  if (a.rawLength !== b.rawLength) return 'raw length';
  if (a.codec !== b.codec) return 'codec';
  if (a.checksum !== b.checksum) return 'checksum';
  return undefined;
}

/** `count` distinct items chosen uniformly at random (partial Fisher-Yates). */
function sample<T>(items: readonly T[], count: number): T[] {
  const a = items.slice();
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(Math.random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, count);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const hex64 = (v: bigint): string => v.toString(16).padStart(16, '0');
