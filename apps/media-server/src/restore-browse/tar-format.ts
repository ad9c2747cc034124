/**
 * Tar headers for downloads (POSIX pax, readable by GNU tar, bsdtar and 7-Zip). ustar
 * fields hold names up to 100 bytes (155 more in the prefix), sizes below 8 GiB and ASCII;
 * anything beyond that (long or non-ASCII paths, long symlink targets, large files, times
 * with more than seconds) goes into a pax extended header in front of the entry.
 *
 * Every header's size is known in advance (`tarEntryBytes`), so a download can announce
 * its exact Content-Length before the first byte.
 */

export const TAR_BLOCK = 512;
/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

export interface TarEntry {
  /** The path in the archive; a directory's ends without '/' (added here). Raw bytes. */
  name: Buffer;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  target?: Buffer;
}

const TYPE_FLAG = { file: '0', dir: '5', symlink: '2' } as const;
const MAX_OCTAL_SIZE = 0o77777777777;

/** The header block(s) of an entry: a pax header when needed, then the ustar header. */
export function tarHeader(entry: TarEntry): Buffer {
  const name = entry.type === 'dir' ? Buffer.concat([entry.name, Buffer.from('/')]) : entry.name;
  const target = entry.target ?? Buffer.alloc(0);
  const size = entry.type === 'file' ? entry.size : 0;
  const pax: [string, Buffer][] = [];
  const split = splitName(name);
  if (!split) pax.push(['path', name]);
  if (target.length > 100 || !isAscii(target)) pax.push(['linkpath', target]);
  if (size > MAX_OCTAL_SIZE) pax.push(['size', Buffer.from(String(size))]);
  const seconds = entry.mtimeNs / 1_000_000_000n;
  const nanos = entry.mtimeNs % 1_000_000_000n;
  if (nanos !== 0n || entry.mtimeNs < 0n) pax.push(['mtime', Buffer.from(formatPaxTime(entry.mtimeNs))]);
  const ustar = ustarBlock({
    name: split?.name ?? fallbackName(name),
    prefix: split?.prefix ?? Buffer.alloc(0),
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size: size > MAX_OCTAL_SIZE ? 0 : size,
    mtime: seconds < 0n ? 0 : Number(seconds),
    type: TYPE_FLAG[entry.type],
    linkname: target.length <= 100 && isAscii(target) ? target : Buffer.alloc(0),
  });
  if (pax.length === 0) return ustar;
  const records = Buffer.concat(pax.map(([key, value]) => paxRecord(key, value)));
  const paxHeader = ustarBlock({
    name: Buffer.from('PaxHeader'),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: 0,
    type: 'x',
    linkname: Buffer.alloc(0),
  });
  return Buffer.concat([paxHeader, records, Buffer.alloc(padding(records.length)), ustar]);
}

/** Bytes an entry takes in the archive: its headers, its content and the padding after it. */
export function tarEntryBytes(entry: TarEntry): number {
  const content = entry.type === 'file' ? entry.size : 0;
  return tarHeader(entry).length + content + padding(content);
}

/** Zero bytes after `length` content bytes up to the next block. */
export function padding(length: number): number {
  return (TAR_BLOCK - (length % TAR_BLOCK)) % TAR_BLOCK;
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c === 0 || c > 0x7e) return false;
  return true;
}

/** ustar's name/prefix split, or undefined when the name needs a pax header. */
function splitName(name: Buffer): { name: Buffer; prefix: Buffer } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { name, prefix: Buffer.alloc(0) };
  // Split at a '/' so that the prefix is at most 155 bytes and the rest at most 100.
  for (let i = Math.min(name.length - 1, 155); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
  }
  return undefined;
}

/** What the ustar name field says when the pax header holds the real one (readers that ignore pax see this). */
function fallbackName(name: Buffer): Buffer {
  const ascii = Buffer.from(name.toString('latin1').replace(/[^\x20-\x7e]/g, '_'), 'latin1');
  return ascii.subarray(Math.max(0, ascii.length - 100));
}

function formatPaxTime(ns: bigint): string {
  const negative = ns < 0n;
  const abs = negative ? -ns : ns;
  const s = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${s}${frac ? `.${frac}` : ''}`;
}

/** `LEN key=value\n`, where LEN counts the whole record, its own digits included. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

interface UstarFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: Buffer;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(TAR_BLOCK);
  f.name.copy(b, 0, 0, 100);
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, f.uid <= 0o7777777 ? f.uid : 0);
  octal(b, 116, 8, f.gid <= 0o7777777 ? f.gid : 0);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, Math.min(f.mtime, MAX_OCTAL_SIZE));
  b.fill(0x20, 148, 156); // checksum counted as spaces
  b.write(f.type, 156, 'latin1');
  f.linkname.copy(b, 157, 0, 100);
  b.write('ustar\u000000', 257, 'latin1');
  f.prefix.copy(b, 345, 0, 155);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return b;
}

function octal(b: Buffer, at: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, at, 'latin1');
}
