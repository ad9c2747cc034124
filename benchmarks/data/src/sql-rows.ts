/**
 * The tables of the synthetic database and the text of one row: a pure function of
 * (seed, table, rowId, version), so any day's dump can be regenerated from row state alone.
 *
 * Columns split into immutable ones (hashed from the row id: names, creation time, what an
 * event was) and mutable ones (hashed from id and version: status, balance, updated_at),
 * so an update rewrites part of a line and usually changes its length, as an UPDATE does.
 *
 * Speed matters (hundreds of MB/s): one inlined PRNG with module state, pre-encoded tokens,
 * and bytes written straight into the output (see ascii.ts).
 */
import { byte, enc, hex, int, lit, two, type Sink } from './ascii.js';
import { CITIES, COUNTRIES, FIRST_NAMES, LAST_NAMES, WORDS, zipfTable } from './words.js';
import { hash3, hash4 } from './prng.js';

/** Per-table constants a row needs besides its id and version. */
export interface RowContext {
  /** Hash of (series seed, table). */
  readonly seed: number;
  /** Rows in the table on day 0: spreads creation times over the history. */
  readonly initialRows: number;
  /** Customers on day 0: foreign keys of orders and events point into them. */
  readonly customers: number;
}

export interface TableDef {
  readonly name: string;
  /** Column definitions for CREATE TABLE. */
  readonly columns: readonly string[];
  /** Share of day-0 bytes. */
  readonly share: number;
  /** Relative odds of a row of this table being updated / inserted / deleted. */
  readonly updateWeight: number;
  readonly insertWeight: number;
  readonly deleteWeight: number;
  /** Retention: share of deletes that remove the oldest live rows rather than random ones. */
  readonly deleteOldest: number;
  /** Appends the full `INSERT INTO ...;\n` line (at most MAX_ROW bytes) to o. */
  write(ctx: RowContext, id: number, version: number, o: Sink): void;
}

/** Upper bound on one line's length, with a wide margin (the longest are ~700 bytes). */
export const MAX_ROW = 4096;

const scratch: Sink = { buf: new Uint8Array(MAX_ROW), pos: 0 };

export function rowLength(t: TableDef, ctx: RowContext, id: number, version: number): number {
  scratch.pos = 0;
  t.write(ctx, id, version, scratch);
  return scratch.pos;
}

export function rowText(t: TableDef, ctx: RowContext, id: number, version: number): string {
  const n = rowLength(t, ctx, id, version);
  return Buffer.from(scratch.buf.buffer, 0, n).toString('latin1');
}

// ---- inlined PRNG (mulberry32) -------------------------------------------------------
let st = 0;
function reseed(h: number): void {
  st = h | 0;
}
function next(): number {
  st = (st + 0x6d2b79f5) | 0;
  let t = Math.imul(st ^ (st >>> 15), 1 | st);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (t ^ (t >>> 14)) >>> 0;
}
/** Uniform in [0, n) by multiply-high: `%` on a uint32 above 2^31 is a slow float modulo. */
function below(n: number): number {
  return Math.floor(next() * 2.3283064365386963e-10 * n);
}

// ---- shared tokens -------------------------------------------------------------------
const encAll = (xs: readonly string[]): Uint8Array[] => xs.map(enc);
const SEP = enc("', '"); // between two quoted values
const Q_NUM = enc("', "); // quoted value, then a bare one
const NUM_Q = enc(", '"); // bare value, then a quoted one
const COMMA = enc(', ');
const TZ_SEP = enc("+00', '");
const TZ_END = enc("+00', ");
const NULL = enc('NULL');
const END = enc(');\n');
const QUOTE = 39;

// History the rows are spread over: creation times run from HISTORY_START (row 1) to
// HISTORY_END (the last day-0 row); later inserts continue past it at the same pace.
const HISTORY_START = Date.UTC(2019, 0, 1) / 1000;
const HISTORY_END = Date.UTC(2024, 5, 1) / 1000;
const EPOCH_DAY0 = Math.floor(HISTORY_START / 86400);
const dates: Uint8Array[] = [];

/** 'YYYY-MM-DD HH:MM:SS' for a unix time in seconds. */
function timestamp(o: Sink, sec: number): void {
  const day = Math.floor(sec / 86400);
  let date = dates[day - EPOCH_DAY0];
  if (date === undefined) {
    date = enc(new Date(day * 86400e3).toISOString().slice(0, 10) + ' ');
    dates[day - EPOCH_DAY0] = date;
  }
  lit(o, date);
  const s = (sec - day * 86400) | 0;
  const h = (s / 3600) | 0;
  const m = ((s - h * 3600) / 60) | 0;
  two(o, h);
  byte(o, 58);
  two(o, m);
  byte(o, 58);
  two(o, s - h * 3600 - m * 60);
}

function money(o: Sink, cents: number): void {
  const units = (cents / 100) | 0;
  int(o, units);
  byte(o, 46);
  two(o, cents - units * 100);
}

/** A random (version 4 layout) UUID. */
function uuid(o: Sink): void {
  hex(o, next(), 8);
  byte(o, 45);
  hex(o, next(), 4);
  byte(o, 45);
  hex(o, 0x4000 | (next() & 0xfff), 4);
  byte(o, 45);
  hex(o, 0x8000 | (next() & 0x3fff), 4);
  byte(o, 45);
  hex(o, next(), 4);
  hex(o, next(), 8);
}

const ZIPF = zipfTable(WORDS.length);
const WORD_B = encAll(WORDS);
function words(o: Sink, n: number): void {
  lit(o, WORD_B[ZIPF[next() & 4095]]);
  for (let i = 1; i < n; i++) {
    byte(o, 32);
    lit(o, WORD_B[ZIPF[next() & 4095]]);
  }
}
function word(o: Sink): void {
  lit(o, WORD_B[ZIPF[next() & 4095]]);
}

/** Seconds between consecutive row ids so that day-0 rows span the whole history. */
function step(ctx: RowContext): number {
  return Math.max(1, Math.floor((HISTORY_END - HISTORY_START) / ctx.initialRows));
}

// ---- customers -----------------------------------------------------------------------
const C_START = enc('INSERT INTO public.customers VALUES (');
const FIRST_B = encAll(FIRST_NAMES);
const FIRST_LC = encAll(FIRST_NAMES.map((n) => n.toLowerCase()));
const LAST_LC = encAll(LAST_NAMES.map((n) => n.toLowerCase().replace("'", '')));
// SQL string literals double their quotes: O'Brien -> O''Brien.
const LAST_SQL = encAll(LAST_NAMES.map((n) => n.replace("'", "''")));
const DOMAINS = encAll(['example.com', 'mail.example.org', 'example.net', 'corp.example.com', 'inbox.example']);
const COUNTRY_B = encAll(COUNTRIES);
const CITY_B = encAll(CITIES);
const CUSTOMER_STATUS = encAll(['active', 'active', 'active', 'active', 'inactive', 'suspended', 'pending_verification']);

function customerRow(ctx: RowContext, id: number, version: number, o: Sink): void {
  reseed(hash3(ctx.seed, id, 1));
  const f = below(FIRST_B.length);
  const l = below(LAST_SQL.length);
  const sp = step(ctx);
  const created = HISTORY_START + id * sp + below(sp);
  const suffix = below(3) === 0 ? -1 : below(1000);
  const domain = below(DOMAINS.length);
  const country = below(COUNTRY_B.length);
  lit(o, C_START);
  int(o, id);
  lit(o, NUM_Q);
  lit(o, FIRST_B[f]);
  byte(o, 32);
  lit(o, LAST_SQL[l]);
  lit(o, SEP);
  lit(o, FIRST_LC[f]);
  byte(o, 46);
  lit(o, LAST_LC[l]);
  if (suffix >= 0) int(o, suffix);
  byte(o, 64);
  lit(o, DOMAINS[domain]);
  lit(o, SEP);

  reseed(hash4(ctx.seed, id, version, 2));
  byte(o, 43);
  int(o, 10 + below(90));
  byte(o, 32);
  int(o, 100 + below(900));
  byte(o, 32);
  int(o, 1000000 + below(9000000));
  lit(o, SEP);
  lit(o, COUNTRY_B[country]);
  lit(o, SEP);
  lit(o, CITY_B[below(CITY_B.length)]);
  lit(o, Q_NUM);
  money(o, below(5000000));
  lit(o, NUM_Q);
  lit(o, CUSTOMER_STATUS[below(CUSTOMER_STATUS.length)]);
  lit(o, SEP);
  timestamp(o, created);
  lit(o, TZ_SEP);
  timestamp(o, created + version * (3600 + below(86400 * 20)));
  lit(o, TZ_END);
  if (below(3) === 0) lit(o, NULL);
  else {
    byte(o, QUOTE);
    words(o, 2 + below(12));
    byte(o, QUOTE);
  }
  lit(o, END);
}

// ---- orders --------------------------------------------------------------------------
const O_START = enc('INSERT INTO public.orders VALUES (');
const ORDER_STATUS = encAll(['pending', 'paid', 'packed', 'shipped', 'delivered', 'delivered', 'returned', 'cancelled']);
const CURRENCIES = encAll(['EUR', 'EUR', 'USD', 'USD', 'GBP', 'JPY', 'CHF']);
const SHIPPING = encAll(['standard', 'express', 'pickup', 'economy']);
const TRACK = enc("'1Z");

function orderRow(ctx: RowContext, id: number, version: number, o: Sink): void {
  reseed(hash3(ctx.seed, id, 1));
  const customer = 1 + below(ctx.customers);
  const sp = step(ctx);
  const created = HISTORY_START + id * sp + below(sp);
  const currency = below(CURRENCIES.length);
  const items = 1 + below(9);
  const total = items * (199 + below(20000));
  const shipping = below(SHIPPING.length);

  reseed(hash4(ctx.seed, id, version, 2));
  // Orders move forward through their life cycle as they are updated.
  const status = Math.min(ORDER_STATUS.length - 1, version + below(2) + (version > 3 ? below(3) : 0));
  lit(o, O_START);
  int(o, id);
  lit(o, COMMA);
  int(o, customer);
  lit(o, NUM_Q);
  lit(o, ORDER_STATUS[status]);
  lit(o, SEP);
  lit(o, CURRENCIES[currency]);
  lit(o, Q_NUM);
  money(o, total);
  lit(o, COMMA);
  int(o, items);
  lit(o, NUM_Q);
  lit(o, SHIPPING[shipping]);
  lit(o, Q_NUM);
  if (version >= 2) {
    lit(o, TRACK);
    hex(o, next(), 4);
    int(o, 1000000000 + below(2000000000));
    byte(o, QUOTE);
  } else lit(o, NULL);
  lit(o, NUM_Q);
  timestamp(o, created);
  lit(o, TZ_SEP);
  timestamp(o, created + version * (600 + below(86400 * 3)));
  byte(o, 43);
  two(o, 0);
  byte(o, QUOTE);
  lit(o, END);
}

// ---- events --------------------------------------------------------------------------
const E_START = enc('INSERT INTO public.events VALUES (');
const EVENT_KINDS = ['page_view', 'page_view', 'page_view', 'click', 'click', 'search', 'purchase', 'login', 'error'];
const EVENT_KIND_B = encAll(EVENT_KINDS);
const AGENTS = encAll([
  'Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15',
  'okhttp/4.12.0',
]);
const SECTIONS = encAll(['/products/', '/cart/', '/checkout/', '/account/', '/search/', '/blog/', '/help/', '/orders/']);
const J = {
  path: enc('{"path": "'),
  referrer: enc('", "referrer": "https://www.example.com/'),
  q: enc('?q='),
  ua: enc('", "ua": "'),
  dur: enc('", "dur_ms": '),
  element: enc('", "element": "#'),
  x: enc('", "x": '),
  y: enc(', "y": '),
  query: enc('{"query": "'),
  results: enc('", "results": '),
  page: enc(', "page": '),
  order: enc('{"order_id": '),
  amount: enc(', "amount": "'),
  currency: enc('", "currency": "'),
  items: enc('", "items": ['),
  itemsEnd: enc(']'),
  method: enc('{"method": "'),
  ip: enc('", "ip": "'),
  mfa: enc('", "mfa": '),
  code: enc('{"code": "E'),
  message: enc('", "message": "'),
  pathMid: enc('", "path": "'),
  quoteEnd: enc('"'),
  processed: enc(', "processed": true, "attempt": '),
  worker: enc(', "worker": "'),
  sso: enc('sso'),
  password: enc('password'),
  t: enc('true'),
  f: enc('false'),
  close: enc("}');\n"),
};

function eventRow(ctx: RowContext, id: number, version: number, o: Sink): void {
  reseed(hash3(ctx.seed, id, 1));
  const sp = step(ctx);
  const occurred = HISTORY_START + id * sp + below(sp);
  const ms = below(1000);
  const kind = below(EVENT_KINDS.length);
  lit(o, E_START);
  int(o, id);
  lit(o, NUM_Q);
  timestamp(o, occurred);
  byte(o, 46);
  byte(o, 48 + ((ms / 100) | 0));
  two(o, ms % 100);
  lit(o, TZ_SEP);
  lit(o, EVENT_KIND_B[kind]);
  lit(o, Q_NUM);
  if (below(5) === 0) lit(o, NULL);
  else int(o, 1 + below(ctx.customers));
  lit(o, NUM_Q);
  uuid(o);
  lit(o, SEP);
  const section = below(SECTIONS.length);
  const item = below(100000);
  switch (EVENT_KINDS[kind]) {
    case 'page_view':
      lit(o, J.path);
      lit(o, SECTIONS[section]);
      int(o, item);
      lit(o, J.referrer);
      word(o);
      lit(o, J.q);
      word(o);
      byte(o, 43);
      word(o);
      lit(o, J.ua);
      lit(o, AGENTS[below(AGENTS.length)]);
      lit(o, J.dur);
      int(o, below(30000));
      break;
    case 'click':
      lit(o, J.path);
      lit(o, SECTIONS[section]);
      int(o, item);
      lit(o, J.element);
      word(o);
      byte(o, 45);
      word(o);
      lit(o, J.x);
      int(o, below(1920));
      lit(o, J.y);
      int(o, below(1080));
      break;
    case 'search':
      lit(o, J.query);
      words(o, 1 + below(4));
      lit(o, J.results);
      int(o, below(500));
      lit(o, J.page);
      int(o, 1 + below(5));
      break;
    case 'purchase':
      lit(o, J.order);
      int(o, 1 + below(ctx.customers * 3));
      lit(o, J.amount);
      money(o, below(100000));
      lit(o, J.currency);
      lit(o, CURRENCIES[below(CURRENCIES.length)]);
      lit(o, J.items);
      int(o, below(9999));
      lit(o, COMMA);
      int(o, below(9999));
      lit(o, J.itemsEnd);
      break;
    case 'login':
      lit(o, J.method);
      lit(o, below(3) === 0 ? J.sso : J.password);
      lit(o, J.ip);
      int(o, below(224));
      byte(o, 46);
      int(o, below(256));
      byte(o, 46);
      int(o, below(256));
      byte(o, 46);
      int(o, below(256));
      lit(o, J.ua);
      lit(o, AGENTS[below(AGENTS.length)]);
      lit(o, J.mfa);
      lit(o, below(2) === 0 ? J.t : J.f);
      break;
    default:
      lit(o, J.code);
      int(o, 1000 + below(9000));
      lit(o, J.message);
      words(o, 3 + below(8));
      lit(o, J.pathMid);
      lit(o, SECTIONS[section]);
      int(o, item);
      lit(o, J.quoteEnd);
  }
  if (version > 0) {
    // Events are append-only except for late enrichment by a background job.
    reseed(hash4(ctx.seed, id, version, 2));
    lit(o, J.processed);
    int(o, version);
    lit(o, J.worker);
    word(o);
    byte(o, 45);
    int(o, below(64));
    lit(o, J.quoteEnd);
  }
  lit(o, J.close);
}

/**
 * Weights: customers and orders are OLTP tables (rows updated in place, orders mostly while
 * fresh); events is an append-mostly log whose deletes are mostly retention purges of its
 * oldest rows, so content disappears from the front of that table's section every day.
 */
export const TABLES: readonly TableDef[] = [
  {
    name: 'customers',
    columns: [
      'id bigint NOT NULL',
      'name text NOT NULL',
      'email text NOT NULL',
      'phone text',
      'country character(2) NOT NULL',
      'city text',
      'balance numeric(12,2) DEFAULT 0 NOT NULL',
      'status text NOT NULL',
      'created_at timestamp with time zone NOT NULL',
      'updated_at timestamp with time zone NOT NULL',
      'notes text',
    ],
    share: 0.2,
    updateWeight: 2,
    insertWeight: 0.5,
    deleteWeight: 0.5,
    deleteOldest: 0,
    write: customerRow,
  },
  {
    name: 'orders',
    columns: [
      'id bigint NOT NULL',
      'customer_id bigint NOT NULL',
      'status text NOT NULL',
      'currency character(3) NOT NULL',
      'total numeric(12,2) NOT NULL',
      'item_count integer NOT NULL',
      'shipping_method text NOT NULL',
      'tracking_no text',
      'created_at timestamp with time zone NOT NULL',
      'updated_at timestamp with time zone NOT NULL',
    ],
    share: 0.35,
    updateWeight: 1.5,
    insertWeight: 1,
    deleteWeight: 0.3,
    deleteOldest: 0,
    write: orderRow,
  },
  {
    name: 'events',
    columns: [
      'id bigint NOT NULL',
      'occurred_at timestamp with time zone NOT NULL',
      'kind text NOT NULL',
      'user_id bigint',
      'session_id uuid NOT NULL',
      'payload jsonb NOT NULL',
    ],
    share: 0.45,
    updateWeight: 0.2,
    insertWeight: 1.3,
    deleteWeight: 1.6,
    deleteOldest: 0.7,
    write: eventRow,
  },
];
