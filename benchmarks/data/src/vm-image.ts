/**
 * A series of daily full images of a VM's virtual disk, as a guest filesystem evolves it.
 *
 * Day 0 is a patchwork of regions (zero / incompressible / text). Each later day paints
 * writes on top: clustered extents (a filesystem allocates near its recent allocations, and
 * the same hot files - databases, logs, swap - are rewritten day after day) plus isolated
 * 4 KiB metadata writes. The image is never materialised: a day is the day-0 span map with
 * the painted writes merged in, and each page's bytes are recomputed from the id of the
 * content that covers it (see spans.ts, keystream.ts, text.ts).
 */
import { Keystream } from './keystream.js';
import { Rng, hash2, hash3 } from './prng.js';
import { DEFAULT_PIECE, MiB, checkDay, checkDays, checkPiece, checkRate, checkSeed, type DataSeries } from './series.js';
import { Kind, findSpan, flatten, overlay, type Span } from './spans.js';
import { PAGE, renderTextPage, textPool } from './text.js';

export interface VmImageSeriesOptions {
  /** Any uint32. */
  seed: number;
  /** Multiple of 4 KiB, e.g. 2 GiB for benchmarks, 64 MiB for the demo. */
  imageBytes: number;
  /** Number of daily versions (day 0 = the first backup). */
  days: number;
  /** Fraction of the image rewritten by clustered extents per day, default 0.02. */
  dailyChangeRate?: number;
  /** Isolated 4 KiB writes per day, default imageBytes / 8 MiB. */
  scatteredWritesPerDay?: number;
  /** Largest clustered extent, default 4 MiB (multiple of 4 KiB). */
  maxExtentBytes?: number;
}

export type VmContentKind = 'zero' | 'random' | 'text';

export interface VmRegion {
  readonly offset: number;
  readonly length: number;
  readonly kind: VmContentKind;
}

export interface VmImageSeries extends DataSeries {
  readonly imageBytes: number;
  /** The content map of a day: contiguous, sorted byte ranges and what fills them. */
  layout(day: number): VmRegion[];
  /** The writes applied on that day (none on day 0), in the order applied (later wins). */
  writes(day: number): VmRegion[];
}

const KIND_NAMES: readonly VmContentKind[] = ['zero', 'random', 'text'];

// Domain tags for hash-derived seeds, so that no two decisions share a random stream.
const TAG_LAYOUT = 0x1a7047;
const TAG_DAY = 0xda7;
const TAG_TEXT = 0x7e77;

export function vmImageSeries(opts: VmImageSeriesOptions): VmImageSeries {
  return new VmImage(opts);
}

class VmImage implements VmImageSeries {
  readonly name = 'vm-image';
  readonly days: number;
  readonly imageBytes: number;
  private readonly seed: number;
  private readonly pages: number;
  private readonly rate: number;
  private readonly scattered: number;
  private readonly maxExtentPages: number;
  private readonly textSeed: number;
  private readonly base: Span[];
  private readonly zeroRegions: Span[];
  private readonly hotspots: number[];
  private readonly hotSpan: number;
  /** states[d] = content map of day d, filled lazily and kept (spans are shared, so small). */
  private readonly states: Span[][] = [];

  constructor(opts: VmImageSeriesOptions) {
    this.seed = checkSeed(opts.seed);
    checkDays(opts.days);
    if (!Number.isSafeInteger(opts.imageBytes) || opts.imageBytes <= 0 || opts.imageBytes % PAGE !== 0) {
      throw new RangeError(`imageBytes must be a positive multiple of ${PAGE}, got ${opts.imageBytes}`);
    }
    this.days = opts.days;
    this.imageBytes = opts.imageBytes;
    this.pages = opts.imageBytes / PAGE;
    this.rate = opts.dailyChangeRate ?? 0.02;
    checkRate('dailyChangeRate', this.rate);
    this.scattered = opts.scatteredWritesPerDay ?? Math.round(opts.imageBytes / (8 * MiB));
    if (!Number.isInteger(this.scattered) || this.scattered < 0) {
      throw new RangeError(`scatteredWritesPerDay must be a non-negative integer, got ${this.scattered}`);
    }
    const maxExtent = opts.maxExtentBytes ?? 4 * MiB;
    if (!Number.isInteger(maxExtent) || maxExtent < PAGE || maxExtent % PAGE !== 0) {
      throw new RangeError(`maxExtentBytes must be a positive multiple of ${PAGE}, got ${maxExtent}`);
    }
    this.maxExtentPages = Math.min(maxExtent / PAGE, this.pages);
    this.textSeed = hash2(this.seed, TAG_TEXT);

    const rng = new Rng(this.seed, TAG_LAYOUT);
    this.base = this.buildLayout(rng);
    this.zeroRegions = this.base.filter((s) => s.kind === Kind.Zero);
    // Persistent hot areas (database files, logs, swap, journal) that attract a large share
    // of each day's writes, so the same pages are rewritten day after day as on real disks.
    this.hotspots = [];
    for (let i = 0, n = rng.range(4, 8); i < n; i++) this.hotspots.push(rng.int(this.pages));
    this.hotSpan = Math.max(1, Math.floor(this.pages / 64));
    this.states[0] = this.base;
  }

  dayBytes(day: number): number {
    checkDay(day, this.days);
    return this.imageBytes;
  }

  layout(day: number): VmRegion[] {
    checkDay(day, this.days);
    return this.state(day).map(toRegion);
  }

  writes(day: number): VmRegion[] {
    checkDay(day, this.days);
    return day === 0 ? [] : this.dayWrites(day).map(toRegion);
  }

  day(day: number, pieceBytes: number = DEFAULT_PIECE): AsyncIterable<Uint8Array> {
    checkDay(day, this.days);
    checkPiece(pieceBytes);
    return this.stream(this.state(day), pieceBytes);
  }

  private async *stream(map: readonly Span[], pieceBytes: number): AsyncGenerator<Uint8Array> {
    // Per stream, not per series: concurrent streams must not share a cipher position.
    const renderer = new Renderer(map, new Keystream(this.seed, 'vm-image'), textPool(this.seed), this.textSeed);
    for (let pos = 0; pos < this.imageBytes; pos += pieceBytes) {
      const piece = new Uint8Array(Math.min(pieceBytes, this.imageBytes - pos));
      renderer.render(pos, piece);
      yield piece;
    }
  }

  /**
   * Regions of log-uniform size (1..64 MiB on large images, scaled down on small ones), each
   * kind picked with odds proportional to how far that kind is below its byte target, which
   * keeps the realised proportions within a region or two of the targets.
   */
  private buildLayout(rng: Rng): Span[] {
    const maxR = Math.max(1, Math.min(16384, Math.floor(this.pages / 8)));
    const minR = Math.max(1, Math.min(256, Math.floor(maxR / 16)));
    // ~30% zero, ~40% incompressible, ~30% text, each share moved by up to +-5 points.
    const zero = 0.25 + 0.1 * rng.float();
    const text = 0.25 + 0.1 * rng.float();
    const target = [zero, 1 - zero - text, text].map((f) => f * this.pages);
    const got = [0, 0, 0];
    const map: Span[] = [];
    for (let start = 0, idx = 0; start < this.pages; idx++) {
      const size = Math.min(rng.logUniform(minR, maxR), this.pages - start);
      const deficit = target.map((t, k) => Math.max(0, t - got[k]));
      const sum = deficit[0] + deficit[1] + deficit[2];
      let kind = 0;
      if (sum > 0) {
        let u = rng.float() * sum;
        while (kind < 2 && u >= deficit[kind]) u -= deficit[kind++];
      } else {
        kind = 1;
      }
      got[kind] += size;
      map.push({ start, end: start + size, kind: kind as Kind, day: 0, idx, cpage: 0 });
      start += size;
    }
    return map;
  }

  private state(day: number): Span[] {
    let d = day;
    while (this.states[d] === undefined) d--;
    for (d++; d <= day; d++) {
      this.states[d] = overlay(this.states[d - 1], flatten(this.dayWrites(d)));
    }
    return this.states[day];
  }

  /**
   * One day's writes, a function of (seed, day) only, so any day can be replayed without the
   * days before it having been streamed.
   *
   * Extent sizes are log-uniform on 4 KiB..maxExtent (half the extents are <= 128 KiB, yet
   * the large ones carry most bytes), the shape block-trace studies report for writes. An
   * extent usually follows the previous one after a short exponential gap (mean 64 KiB),
   * mostly forward, like an allocator filling the free space next to its last allocation;
   * with probability 1/4 it jumps: to a hot spot (45%), into a day-0 zero region, i.e. newly
   * allocated space (25%), or anywhere (30%).
   */
  private dayWrites(day: number): Span[] {
    const rng = new Rng(hash3(this.seed, TAG_DAY, day));
    const out: Span[] = [];
    const budget = Math.round(this.rate * this.pages);
    let written = 0;
    let prevStart = -1;
    let prevEnd = -1;
    while (written < budget) {
      const size = Math.min(rng.logUniform(1, this.maxExtentPages), budget - written);
      let start: number;
      if (prevEnd < 0 || rng.chance(0.25)) {
        const u = rng.float();
        if (u < 0.45) {
          start = this.hotspots[rng.int(this.hotspots.length)] + Math.round((rng.float() * 2 - 1) * this.hotSpan);
        } else if (u < 0.7 && this.zeroRegions.length > 0) {
          const r = this.zeroRegions[rng.int(this.zeroRegions.length)];
          start = r.start + rng.int(r.end - r.start);
        } else {
          start = rng.int(this.pages);
        }
      } else {
        const gap = Math.floor(rng.exp(16));
        start = rng.chance(0.8) ? prevEnd + gap : prevStart - gap - size;
      }
      start = Math.max(0, Math.min(this.pages - size, start));
      out.push({ start, end: start + size, kind: this.newKind(rng, start), day, idx: out.length, cpage: 0 });
      written += size;
      prevStart = start;
      prevEnd = start + size;
    }
    // Isolated metadata updates: inode tables, bitmaps, journal blocks, all over the disk.
    for (let i = 0; i < this.scattered; i++) {
      const start = rng.int(this.pages);
      const kind = rng.chance(0.5) ? Kind.Text : Kind.Random;
      out.push({ start, end: start + 1, kind, day, idx: out.length, cpage: 0 });
    }
    return out;
  }

  /** Rewrites mostly keep the nature of the file they land in; fresh allocations are mixed. */
  private newKind(rng: Rng, page: number): Kind {
    const under = this.base[findSpan(this.base, page)].kind;
    const pText = under === Kind.Text ? 0.7 : under === Kind.Random ? 0.2 : 0.5;
    return rng.chance(pText) ? Kind.Text : Kind.Random;
  }
}

function toRegion(s: Span): VmRegion {
  return { offset: s.start * PAGE, length: (s.end - s.start) * PAGE, kind: KIND_NAMES[s.kind] };
}

/** Fills byte ranges of one day's image, walking its span map forward. */
class Renderer {
  private si = 0;
  private readonly scratch = new Uint8Array(PAGE);

  constructor(
    private readonly map: readonly Span[],
    private readonly ks: Keystream,
    private readonly pool: Buffer,
    private readonly textSeed: number,
  ) {}

  render(pos: number, dest: Uint8Array): void {
    const stop = pos + dest.length;
    // Pieces arrive in order, so the cursor only moves forward; re-find it if a caller
    // ever asks for an earlier position.
    if (this.map[this.si].start * PAGE > pos) this.si = findSpan(this.map, Math.floor(pos / PAGE));
    let at = pos;
    while (at < stop) {
      const s = this.map[this.si];
      const spanEnd = s.end * PAGE;
      if (spanEnd <= at) {
        this.si++;
        continue;
      }
      const segEnd = Math.min(stop, spanEnd);
      if (s.kind === Kind.Random) {
        this.ks.fill(s.day, s.idx, s.cpage * PAGE + (at - s.start * PAGE), dest, at - pos, segEnd - at);
      } else if (s.kind === Kind.Text) {
        this.text(s, at, segEnd, dest, pos);
      } // Zero: fresh buffers are already zero.
      at = segEnd;
    }
  }

  private text(s: Span, from: number, to: number, dest: Uint8Array, destPos: number): void {
    // (k1, k2) is a 64-bit hash of (day, idx, content page): both halves depend on all
    // three, so a 32-bit collision between two extents' ids cannot make their pages equal.
    const k1 = hash3(this.textSeed, s.day, s.idx);
    const k2base = hash3(s.idx, s.day, this.textSeed ^ 0x5f3759df);
    for (let page = Math.floor(from / PAGE); page * PAGE < to; page++) {
      const pageStart = page * PAGE;
      const k2 = hash2(k2base, s.cpage + (page - s.start));
      if (pageStart >= from && pageStart + PAGE <= to) {
        renderTextPage(this.pool, k1, k2, dest, pageStart - destPos);
      } else {
        // A piece boundary cuts this page: render it whole, keep the part in range.
        renderTextPage(this.pool, k1, k2, this.scratch, 0);
        const a = Math.max(from, pageStart);
        const b = Math.min(to, pageStart + PAGE);
        dest.set(this.scratch.subarray(a - pageStart, b - pageStart), a - destPos);
      }
    }
  }
}
