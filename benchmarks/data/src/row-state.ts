/**
 * Row state of one table on one day, in typed arrays (O(rows), ~9 bytes a row), and the
 * deterministic daily mutation that turns day d-1 into day d.
 *
 * Rows are kept in *slot* order, the order the dump prints them: slot i starts as row id
 * i+1, inserts append slots, deletes leave dead slots, and a few inserts reuse a dead slot
 * (a new id printed mid-table, as PostgreSQL places new tuples in freed heap space). That is
 * what shifts content between days.
 */
import type { Rng } from './prng.js';
import { rowLength, type RowContext, type TableDef } from './sql-rows.js';

const HOT_SHARE = 0.9;
const HOT_FRACTION = 0.02;
const UPDATE_RUN_MEAN = 8;
const DELETE_RUN_MEAN = 4;

export class TableState {
  /** Slots in use. */
  n: number;
  ids: Uint32Array;
  versions: Uint16Array;
  dead: Uint8Array;
  /** Byte length of each slot's line, once known; lets dayBytes avoid a generation pass. */
  lens: Uint16Array | null;
  live: number;
  nextId: number;
  /** No live slot before this one: where retention deletes resume. */
  oldest: number;

  constructor(rows: number) {
    this.n = rows;
    this.ids = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) this.ids[i] = i + 1;
    this.versions = new Uint16Array(rows);
    this.dead = new Uint8Array(rows);
    this.lens = null;
    this.live = rows;
    this.nextId = rows + 1;
    this.oldest = 0;
  }

  clone(): TableState {
    const c = Object.create(TableState.prototype) as TableState;
    const cap = this.n + Math.ceil(this.n / 64) + 16;
    c.n = this.n;
    c.ids = grow(this.ids, this.n, cap);
    c.versions = grow(this.versions, this.n, cap);
    c.dead = grow(this.dead, this.n, cap);
    c.lens = this.lens === null ? null : grow(this.lens, this.n, cap);
    c.live = this.live;
    c.nextId = this.nextId;
    c.oldest = this.oldest;
    return c;
  }

  private append(): number {
    if (this.n === this.ids.length) {
      const cap = this.n * 2 + 16;
      this.ids = grow(this.ids, this.n, cap);
      this.versions = grow(this.versions, this.n, cap);
      this.dead = grow(this.dead, this.n, cap);
      if (this.lens !== null) this.lens = grow(this.lens, this.n, cap);
    }
    return this.n++;
  }

  /** A random live slot in [lo, n), or -1 after a few misses (a nearly empty table). */
  private randomLive(rng: Rng, lo: number): number {
    for (let tries = 0; tries < 32; tries++) {
      const s = lo + rng.int(this.n - lo);
      if (this.dead[s] === 0) return s;
    }
    return -1;
  }

  /**
   * Applies one day's deletes, then updates, then inserts.
   *
   * Changes are not spread uniformly, because in real databases they are not, and because
   * uniform spreading would touch every 64 KiB of the dump at a 1% update rate, leaving
   * nothing for any chunker to deduplicate:
   * - HOT_SHARE of updates hit the newest HOT_FRACTION of rows (fresh orders change status,
   *   new customers fix their details);
   * - the rest, and non-retention deletes, come in runs of neighbouring rows (batch jobs
   *   work on rows created together: "archive the orders of March 3rd").
   */
  mutate(rng: Rng, table: TableDef, ctx: RowContext, deletes: number, updates: number, inserts: number): void {
    for (let i = 0; i < deletes && this.live > 0; ) {
      if (rng.chance(table.deleteOldest)) {
        while (this.dead[this.oldest] === 1) this.oldest++;
        this.dead[this.oldest] = 1;
        this.live--;
        i++;
        continue;
      }
      let s = this.randomLive(rng, 0);
      if (s < 0) break;
      for (let run = 1 + Math.floor(rng.exp(DELETE_RUN_MEAN - 1)); run > 0 && i < deletes && s < this.n; s++) {
        if (this.dead[s] === 1) continue;
        this.dead[s] = 1;
        this.live--;
        i++;
        run--;
      }
    }
    const bump = (s: number): void => {
      if (this.versions[s] === 0xffff) return;
      this.versions[s]++;
      if (this.lens !== null) this.lens[s] = rowLength(table, ctx, this.ids[s], this.versions[s]);
    };
    const hotStart = this.n - Math.max(1, Math.ceil(this.n * HOT_FRACTION));
    for (let i = 0; i < updates && this.live > 0; ) {
      if (rng.chance(HOT_SHARE)) {
        const s = this.randomLive(rng, hotStart);
        if (s >= 0) bump(s);
        i++;
        continue;
      }
      let s = this.randomLive(rng, 0);
      if (s < 0) break;
      for (let run = 1 + Math.floor(rng.exp(UPDATE_RUN_MEAN - 1)); run > 0 && i < updates && s < this.n; s++) {
        if (this.dead[s] === 1) continue;
        bump(s);
        i++;
        run--;
      }
    }
    for (let i = 0; i < inserts; i++) {
      let s = -1;
      if (this.live < this.n && rng.chance(0.1)) {
        for (let tries = 0; tries < 8 && s < 0; tries++) {
          const c = rng.int(this.n);
          if (this.dead[c] === 1) s = c;
        }
      }
      if (s < 0) s = this.append();
      else if (s < this.oldest) this.oldest = s;
      this.ids[s] = this.nextId++;
      this.versions[s] = 0;
      this.dead[s] = 0;
      this.live++;
      if (this.lens !== null) this.lens[s] = rowLength(table, ctx, this.ids[s], 0);
    }
  }

  /** Bytes of all live lines; requires lens. */
  liveBytes(): number {
    const lens = this.lens!;
    let sum = 0;
    for (let s = 0; s < this.n; s++) if (this.dead[s] === 0) sum += lens[s];
    return sum;
  }
}

function grow<T extends Uint8Array | Uint16Array | Uint32Array>(a: T, used: number, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(cap, used));
  b.set(a.subarray(0, used));
  return b;
}
