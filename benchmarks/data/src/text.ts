/**
 * Compressible, text-like 4 KiB pages (logs, configs, source code, prose, CSV) that are a
 * pure function of a 64-bit page key.
 *
 * Generating words one by one in JS runs at tens of MB/s, far below the 1 GB/s the VM image
 * generator needs. So a per-seed pool of a few MiB of text is built once, and each page is
 * a concatenation of pool slices (256 bytes to 2 KiB) at positions drawn from the page key:
 * memcpy speed, yet no two pages are equal and no chunk of 2 KiB or more recurs, so dedup
 * engines see no false duplication. Slices are long enough to keep each page's local
 * statistics those of real text, which is what byte-level compressors with small windows
 * (LZ4's 64 KiB) exploit.
 */
import { CITIES, HOSTS, LEVELS, PROCS, WORDS, zipfTable } from './words.js';
import { Rng, mix32 } from './prng.js';

export const PAGE = 4096;

const POOL_BYTES = 4 << 20;
const SLICE_MIN = 256;
const SLICE_SPAN = 1792; // slices of 256..2047 bytes

const pools = new Map<number, Buffer>();

/** The text pool of a seed, built once per process: pages of every series share it. */
export function textPool(seed: number): Buffer {
  let pool = pools.get(seed >>> 0);
  if (!pool) {
    pool = buildPool(seed >>> 0);
    pools.set(seed >>> 0, pool);
  }
  return pool;
}

/**
 * Writes the 4096-byte page named by the 64-bit key (k1, k2) into dest[off, off + 4096).
 * 64 bits because a 32-bit key would, by the birthday bound, give a multi-GiB image a few
 * pairs of identical pages: false duplicates a dedup benchmark would count.
 */
export function renderTextPage(pool: Buffer, k1: number, k2: number, dest: Uint8Array, off: number): void {
  const limit = pool.length - SLICE_MIN - SLICE_SPAN;
  // Two mulberry32 streams inlined: a few slices per page, no allocation (Buffer.copy
  // rather than subarray + set).
  let s1 = k1 | 0;
  let s2 = mix32(k2 ^ 0x68e31da4) | 0;
  let filled = 0;
  while (filled < PAGE) {
    s1 = (s1 + 0x6d2b79f5) | 0;
    let t = Math.imul(s1 ^ (s1 >>> 15), 1 | s1);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const r1 = t ^ (t >>> 14);
    s2 = (s2 + 0x6d2b79f5) | 0;
    t = Math.imul(s2 ^ (s2 >>> 15), 1 | s2);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const r2 = t ^ (t >>> 14);
    const start = ((r1 ^ r2) >>> 0) % limit;
    let len = SLICE_MIN + (mix32(r1 + r2) % SLICE_SPAN);
    if (len > PAGE - filled) len = PAGE - filled;
    pool.copy(dest, off + filled, start, start + len);
    filled += len;
  }
}

function buildPool(seed: number): Buffer {
  const rng = new Rng(seed, 0x7e47);
  const zipf = zipfTable(WORDS.length);
  const word = (): string => WORDS[zipf[rng.u32() & 4095]];
  const ident = (): string => (rng.chance(0.5) ? `${word()}_${word()}` : word() + cap(word()));
  const sentence = (n: number): string => {
    let out = word();
    for (let i = 1; i < n; i++) out += ' ' + word();
    return out;
  };
  // Real log lines come from a finite set of format strings filled with variable fields;
  // that repetition is most of why logs compress 3-5x, so messages are drawn (Zipf) from
  // templates rather than composed freely.
  const templates: string[][] = [];
  for (let i = 0; i < 64; i++) {
    const parts = [sentence(rng.range(2, 5))];
    const holes = rng.range(1, 3);
    for (let h = 0; h < holes; h++) parts.push(` ${word()}=`, rng.chance(0.5) ? ` ${sentence(rng.range(1, 3))}` : '');
    templates.push(parts);
  }
  const templateZipf = zipfTable(templates.length);
  const localZipf = zipfTable(24);
  // Log timestamps advance monotonically through the pool, as they do through a log file;
  // the date part is cached because only the clock's seconds change line to line.
  let clock = Date.UTC(2024, 0, 1) + rng.int(86400e3 * 300);
  let datePrefix = '';
  let dateDay = -1;
  const timestamp = (): string => {
    const day = Math.floor(clock / 86400e3);
    if (day !== dateDay) {
      dateDay = day;
      datePrefix = new Date(day * 86400e3).toISOString().slice(0, 11);
    }
    const ms = clock - day * 86400e3;
    return `${datePrefix}${two(Math.floor(ms / 3600e3))}:${two(Math.floor(ms / 60e3) % 60)}:${two(Math.floor(ms / 1e3) % 60)}.${String(ms % 1000).padStart(3, '0')}Z`;
  };
  // Mix of file kinds by bytes: logs, configs, source, prose, CSV exports.
  const kindCdf = [0.35, 0.5, 0.75, 0.85, 1];

  const parts: string[] = [];
  let size = 0;
  while (size < POOL_BYTES) {
    // Emit a "file": a run of 20..300 lines of one kind, since real text is locally homogeneous.
    const u = rng.float();
    let kind = 0;
    while (u >= kindCdf[kind]) kind++;
    const lines = rng.range(20, 300);
    let depth = 0;
    // Per-file locals: a source file or config reuses a handful of identifiers, a log file
    // comes from one host and process; this repetition is what LZ matchers feed on.
    const locals: string[] = [];
    for (let i = 0, n = rng.range(6, 24); i < n; i++) locals.push(ident());
    const local = (): string => locals[localZipf[rng.u32() & 4095] % locals.length];
    const host = HOSTS[rng.u32() % HOSTS.length];
    const proc = `${PROCS[rng.u32() % PROCS.length]}[${1000 + (rng.u32() % 30000)}]`;
    for (let i = 0; i < lines; i++) {
      let line: string;
      switch (kind) {
        case 0: {
          clock += rng.int(5000);
          const t = templates[templateZipf[rng.u32() & 4095]];
          line = `${timestamp()} ${host} ${proc}: ${LEVELS[rng.u32() & 7]} ${t[0]}`;
          for (let p = 1; p < t.length; p += 2) line += t[p] + String(rng.logUniform(1, 100000)) + t[p + 1];
          break;
        }
        case 1: {
          const r = rng.u32() % 10;
          if (r === 0) line = `\n[${word()}.${word()}]`;
          else if (r === 1) line = `# ${sentence(rng.range(4, 12))}`;
          else if (r < 5) line = `${local()} = ${rng.u32() % (r < 4 ? 100 : 65536)}`;
          else if (r < 7) line = `${local()} = "/${word()}/${word()}/${word()}.${EXT[rng.u32() & 3]}"`;
          else if (r < 8) line = `${local()} = ${rng.chance(0.5) ? 'true' : 'false'}`;
          else line = `${local()} = ${word()}`;
          break;
        }
        case 2: {
          const r = rng.u32() & 7;
          const pad = '    '.repeat(depth);
          if (r === 0 && depth < 4) {
            line = `${pad}if (${local()} ${OPS[rng.u32() & 3]} ${local()}) {`;
            depth++;
          } else if (r === 1 && depth > 0) {
            depth--;
            line = `${'    '.repeat(depth)}}`;
          } else if (r === 2) line = `${pad}// ${sentence(rng.range(3, 9))}`;
          else if (r === 3) line = `${pad}return ${local()}(${local()}, ${rng.u32() % 1000});`;
          else if (r === 4) line = `${pad}const ${local()} = ${local()}.${local()}(${local()});`;
          else line = `${pad}${local()}.${word()}(${local()}, "${word()} ${word()}");`;
          break;
        }
        case 3: {
          const s = sentence(rng.range(6, 24));
          line = cap(s) + (rng.chance(0.8) ? '.' : ',') + (rng.chance(0.15) ? '\n' : '');
          break;
        }
        default: {
          clock += rng.int(60000);
          line =
            `${rng.u32() % 1000000},${word()},${CITIES[rng.u32() % CITIES.length]},${rng.u32() % 10000}.${two(rng.u32() % 100)},` +
            `${timestamp().slice(0, 10)},${rng.u32() % 100}`;
        }
      }
      parts.push(line, '\n');
      size += line.length + 1;
    }
  }
  // Every vocabulary entry is ASCII, so latin1 is a byte-exact encoding.
  return Buffer.from(parts.join('').slice(0, POOL_BYTES), 'latin1');
}

const EXT = ['conf', 'log', 'db', 'sock'];
const OPS = ['==', '!=', '<', '>='];

function two(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function cap(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1);
}
