/**
 * A series of daily plain-SQL dumps of one database, shaped like `pg_dump --inserts`:
 * schema, one `INSERT INTO ... VALUES (...);` line per row in table order, then sequence
 * values, constraints and indexes.
 *
 * Between days a small fraction of rows is updated (the line changes and usually its
 * length), inserted (mostly appended, a few in freed slots mid-table) and deleted, so most
 * of the text survives but at shifted offsets: fixed-size blocks lose dedup after the
 * first change in a table, content-defined chunking re-synchronises.
 */
import { Rng, hash2, hash3, hash4 } from './prng.js';
import { TableState } from './row-state.js';
import { DEFAULT_PIECE, checkDay, checkDays, checkPiece, checkRate, checkSeed, type DataSeries } from './series.js';
import { MAX_ROW, TABLES, rowLength, type RowContext, type TableDef } from './sql-rows.js';
import type { Sink } from './ascii.js';

export interface DumpSeriesOptions {
  seed: number;
  /** Size of day 0's dump, e.g. 1 GiB. */
  approxBytes: number;
  days: number;
  /** Fraction of live rows updated per day, default 0.01. */
  updateRate?: number;
  /** Fraction of live rows inserted per day, default 0.005. */
  insertRate?: number;
  /** Fraction of live rows deleted per day, default 0.002. */
  deleteRate?: number;
}

export interface DumpTableStats {
  readonly name: string;
  readonly liveRows: number;
  /** Highest id handed out so far. */
  readonly maxId: number;
}

export interface DumpSeries extends DataSeries {
  tables(day: number): DumpTableStats[];
}

const TAG_DUMP = 0xd0d0;
const TAG_DAY = 0xda7e;

export function dumpSeries(opts: DumpSeriesOptions): DumpSeries {
  return new SqlDump(opts);
}

interface DayState {
  readonly day: number;
  readonly tables: TableState[];
}

class SqlDump implements DumpSeries {
  readonly name = 'db-dump';
  readonly days: number;
  private readonly seed: number;
  private readonly rates: { update: number; insert: number; delete: number };
  private readonly ctx: RowContext[];
  private readonly base: DayState;
  /** Most recently built state: days are usually visited in order, so replay resumes here. */
  private last: DayState;
  private readonly bytes = new Map<number, number>();

  constructor(opts: DumpSeriesOptions) {
    this.seed = checkSeed(opts.seed);
    checkDays(opts.days);
    if (!Number.isSafeInteger(opts.approxBytes) || opts.approxBytes < 4096) {
      throw new RangeError(`approxBytes must be an integer >= 4096, got ${opts.approxBytes}`);
    }
    this.days = opts.days;
    this.rates = { update: opts.updateRate ?? 0.01, insert: opts.insertRate ?? 0.005, delete: opts.deleteRate ?? 0.002 };
    checkRate('updateRate', this.rates.update);
    checkRate('insertRate', this.rates.insert);
    checkRate('deleteRate', this.rates.delete);
    this.ctx = this.sizeTables(opts.approxBytes);
    this.base = { day: 0, tables: this.ctx.map((c) => new TableState(c.initialRows)) };
    this.last = this.base;
  }

  dayBytes(day: number): number {
    checkDay(day, this.days);
    let bytes = this.bytes.get(day);
    if (bytes === undefined) {
      const state = this.state(day);
      bytes = header(day).length + footer(day, state.tables).length;
      TABLES.forEach((t, i) => {
        const ts = state.tables[i];
        if (ts.lens === null) ts.lens = this.lineLengths(i, ts);
        bytes! += dataHeader(t).length + ts.liveBytes() + DATA_FOOTER.length;
      });
      this.bytes.set(day, bytes);
    }
    return bytes;
  }

  tables(day: number): DumpTableStats[] {
    checkDay(day, this.days);
    return this.state(day).tables.map((ts, i) => ({ name: TABLES[i].name, liveRows: ts.live, maxId: ts.nextId - 1 }));
  }

  day(day: number, pieceBytes: number = DEFAULT_PIECE): AsyncIterable<Uint8Array> {
    checkDay(day, this.days);
    checkPiece(pieceBytes);
    return this.stream(day, this.state(day), pieceBytes);
  }

  private async *stream(day: number, state: DayState, pieceBytes: number): AsyncGenerator<Uint8Array> {
    const out = new PieceWriter(pieceBytes);
    out.text(header(day));
    for (let t = 0; t < TABLES.length; t++) {
      const table = TABLES[t];
      const ctx = this.ctx[t];
      const ts = state.tables[t];
      // Line lengths come for free while streaming; record them (only once the pass is
      // complete: a consumer may stop early) so dayBytes needs no extra pass.
      const lens = ts.lens === null ? new Uint16Array(ts.n) : null;
      out.text(dataHeader(table));
      for (let s = 0; s < ts.n; s++) {
        if (ts.dead[s] === 1) continue;
        const sink = out.begin();
        const from = sink.pos;
        table.write(ctx, ts.ids[s], ts.versions[s], sink);
        if (lens !== null) lens[s] = sink.pos - from;
        out.commit(sink);
        if (out.ready.length > 0) yield* out.drain();
      }
      out.text(DATA_FOOTER);
      if (lens !== null && ts.lens === null) ts.lens = lens;
    }
    out.text(footer(day, state.tables));
    out.end();
    yield* out.drain();
  }

  private lineLengths(t: number, ts: TableState): Uint16Array {
    const lens = new Uint16Array(ts.n);
    for (let s = 0; s < ts.n; s++) {
      if (ts.dead[s] === 0) lens[s] = rowLength(TABLES[t], this.ctx[t], ts.ids[s], ts.versions[s]);
    }
    return lens;
  }

  /** Day d's state: replayed from the last built state (or day 0) one day at a time. */
  private state(day: number): DayState {
    if (day === this.last.day) return this.last;
    const from = this.last.day < day ? this.last : this.base;
    if (day === from.day) return from;
    // States handed to streams are never mutated: replay works on a clone.
    const tables = from.tables.map((ts) => ts.clone());
    for (let d = from.day + 1; d <= day; d++) this.replay(d, tables);
    this.last = { day, tables };
    return this.last;
  }

  /**
   * One day of churn. Each kind of change is spread over the tables by weight x live rows,
   * normalised so that the series-wide count is rate x live rows. Each table draws from its
   * own stream so that changing one table's shape does not reshuffle the others.
   */
  private replay(day: number, tables: TableState[]): void {
    const live = tables.map((ts) => ts.live);
    const total = live.reduce((a, b) => a + b, 0);
    const split = (rate: number, weight: (t: TableDef) => number): number[] => {
      const w = TABLES.map((t, i) => weight(t) * live[i]);
      const sum = w.reduce((a, b) => a + b, 0);
      return w.map((x) => (sum > 0 ? Math.round((rate * total * x) / sum) : 0));
    };
    const del = split(this.rates.delete, (t) => t.deleteWeight);
    const upd = split(this.rates.update, (t) => t.updateWeight);
    const ins = split(this.rates.insert, (t) => t.insertWeight);
    tables.forEach((ts, i) => {
      const rng = new Rng(hash4(this.seed, TAG_DAY, day, i));
      ts.mutate(rng, TABLES[i], this.ctx[i], del[i], upd[i], ins[i]);
    });
  }

  /**
   * Row counts for approxBytes: each table's mean line length is measured on a sample of
   * ids spread over a first guess of its size (lengths depend a little on digit counts).
   */
  private sizeTables(approxBytes: number): RowContext[] {
    const fixed = header(0).length + footer(0, []).length + 3 * 100;
    const budget = Math.max(0, approxBytes - fixed);
    const guess = TABLES.map((t) => Math.max(1, Math.round((budget * t.share) / 200)));
    return TABLES.map((t, i) => {
      const seed = hash3(this.seed, TAG_DUMP, i);
      const mean = meanLength(t, { seed, initialRows: guess[i], customers: guess[0] });
      const rows = Math.max(1, Math.round((budget * t.share) / mean));
      if (i === 0) guess[0] = rows;
      return { seed, initialRows: rows, customers: guess[0] };
    });
  }
}

function meanLength(t: TableDef, ctx: RowContext): number {
  const rows = ctx.initialRows;
  const n = Math.min(rows, 2000);
  let sum = 0;
  for (let k = 0; k < n; k++) sum += rowLength(t, ctx, 1 + Math.floor((k * rows) / n), 0);
  return sum / n;
}

// ---- dump framing (pg_dump's layout) -------------------------------------------------

const DUMP_START = Date.UTC(2024, 5, 1, 2, 0, 0);

function when(day: number, plusSeconds: number): string {
  return new Date(DUMP_START + day * 86400e3 + plusSeconds * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

function comment(name: string, type: string): string {
  return `--\n-- Name: ${name}; Type: ${type}; Schema: public; Owner: app\n--\n\n`;
}

function header(day: number): string {
  let s =
    '--\n-- PostgreSQL database dump\n--\n\n' +
    '-- Dumped from database version 16.3\n-- Dumped by pg_dump version 16.3\n\n' +
    `-- Started on ${when(day, hash2(day, 1) % 60)} UTC\n\n` +
    'SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n' +
    "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n" +
    "SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n" +
    'SET xmloption = content;\nSET client_min_messages = warning;\nSET row_security = off;\n\n' +
    "SET default_tablespace = '';\n\nSET default_table_access_method = heap;\n\n";
  for (const t of TABLES) {
    s +=
      comment(t.name, 'TABLE') +
      `CREATE TABLE public.${t.name} (\n    ${t.columns.join(',\n    ')}\n);\n\n\n` +
      `ALTER TABLE public.${t.name} OWNER TO app;\n\n` +
      comment(`${t.name}_id_seq`, 'SEQUENCE') +
      `CREATE SEQUENCE public.${t.name}_id_seq\n    START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;\n\n\n` +
      `ALTER SEQUENCE public.${t.name}_id_seq OWNER TO app;\n\n` +
      comment(`${t.name}_id_seq`, 'SEQUENCE OWNED BY') +
      `ALTER SEQUENCE public.${t.name}_id_seq OWNED BY public.${t.name}.id;\n\n\n`;
  }
  for (const t of TABLES) {
    s +=
      comment(`${t.name} id`, 'DEFAULT') + `ALTER TABLE ONLY public.${t.name} ALTER COLUMN id SET DEFAULT nextval('public.${t.name}_id_seq'::regclass);\n\n\n`;
  }
  return s;
}

function dataHeader(t: TableDef): string {
  return `--\n-- Data for Name: ${t.name}; Type: TABLE DATA; Schema: public; Owner: app\n--\n\n`;
}

const DATA_FOOTER = '\n\n';

function footer(day: number, tables: readonly TableState[]): string {
  let s = '';
  TABLES.forEach((t, i) => {
    s +=
      comment(`${t.name}_id_seq`, 'SEQUENCE SET') +
      `SELECT pg_catalog.setval('public.${t.name}_id_seq', ${tables[i] === undefined ? 1 : tables[i].nextId - 1}, true);\n\n\n`;
  });
  for (const t of TABLES) {
    s += comment(`${t.name} ${t.name}_pkey`, 'CONSTRAINT') + `ALTER TABLE ONLY public.${t.name}\n    ADD CONSTRAINT ${t.name}_pkey PRIMARY KEY (id);\n\n\n`;
  }
  s +=
    comment('events_occurred_at_idx', 'INDEX') +
    'CREATE INDEX events_occurred_at_idx ON public.events USING btree (occurred_at);\n\n\n' +
    comment('orders_customer_id_idx', 'INDEX') +
    'CREATE INDEX orders_customer_id_idx ON public.orders USING btree (customer_id);\n\n\n' +
    comment('orders orders_customer_id_fkey', 'FK CONSTRAINT') +
    'ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);\n\n\n' +
    `-- Completed on ${when(day, 300 + (hash2(day, 2) % 900))} UTC\n\n` +
    '--\n-- PostgreSQL database dump complete\n--\n\n';
  return s;
}

/**
 * Cuts the output into fresh pieces of exactly pieceBytes (the last one shorter). Rows are
 * written straight into the current piece when it has room for the longest possible row,
 * else into a scratch buffer that is then split across the piece boundary: almost every
 * byte is written once, where it will be handed out.
 */
class PieceWriter {
  readonly ready: Uint8Array[] = [];
  private piece: Uint8Array;
  private used = 0;
  private readonly direct: Sink;
  private readonly scratch: Sink = { buf: new Uint8Array(MAX_ROW), pos: 0 };

  constructor(private readonly pieceBytes: number) {
    this.piece = alloc(pieceBytes);
    this.direct = { buf: this.piece, pos: 0 };
  }

  /** A sink with room for one row (at most MAX_ROW bytes); hand it back to commit(). */
  begin(): Sink {
    if (this.pieceBytes - this.used >= MAX_ROW) {
      this.direct.buf = this.piece;
      this.direct.pos = this.used;
      return this.direct;
    }
    this.scratch.pos = 0;
    return this.scratch;
  }

  commit(sink: Sink): void {
    if (sink === this.direct) {
      this.used = sink.pos;
      if (this.used === this.pieceBytes) this.flush();
    } else {
      this.bytes(sink.buf, sink.pos);
    }
  }

  /** Framing text; ASCII only, so latin1 is byte-exact. */
  text(s: string): void {
    const b = Buffer.from(s, 'latin1');
    this.bytes(b, b.length);
  }

  end(): void {
    if (this.used > 0) this.flush();
  }

  *drain(): Generator<Uint8Array> {
    while (this.ready.length > 0) yield this.ready.shift()!;
  }

  private bytes(src: Uint8Array, len: number): void {
    let off = 0;
    while (off < len) {
      const n = Math.min(len - off, this.pieceBytes - this.used);
      this.piece.set(src.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.pieceBytes) this.flush();
    }
  }

  private flush(): void {
    this.ready.push(this.used === this.piece.length ? this.piece : this.piece.subarray(0, this.used));
    this.piece = alloc(this.pieceBytes);
    this.used = 0;
  }
}

/** Every byte of a piece is written before it is handed out, so skipping the zeroing is safe. */
function alloc(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}
