import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArchiveFormatError,
  EntryTableParser,
  decodeArchiveTrailer,
  encodeArchiveTrailer,
  encodeEntry,
  unsafePathReason,
  type DirEntry,
} from '../dist/index.js';

const name = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))))
  .filter((b) => !b.equals(Buffer.from('.')) && !b.equals(Buffer.from('..')));

const entryArb = fc.record({
  type: fc.constantFrom<DirEntry['type']>('file', 'dir', 'symlink'),
  path: name,
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  size: fc.integer({ min: 0, max: 2 ** 40 }),
  mtimeNs: fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }),
  inode: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  dev: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  target: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
});

/** Lays entries out as an archive would: file contents back to back from 0. */
function layout(raw: Array<Omit<DirEntry, 'offset'>>): { entries: DirEntry[]; table: Buffer; tableOffset: number } {
  let offset = 0;
  const entries = raw.map((e) => {
    const entry: DirEntry = { ...e, offset: e.type === 'file' ? offset : 0, size: e.type === 'dir' ? 0 : e.type === 'symlink' ? e.target!.length : e.size };
    if (e.type !== 'symlink') delete entry.target;
    if (e.type === 'file') offset += e.size;
    return entry;
  });
  return { entries, table: Buffer.concat(entries.map(encodeEntry)), tableOffset: offset };
}

function parseAll(table: Buffer, tableOffset: number, count: number, pieceSize: number): DirEntry[] {
  const parser = new EntryTableParser('test', { tableOffset, entryCount: count, tableBytes: table.length });
  const out: DirEntry[] = [];
  for (let i = 0; i < table.length; i += pieceSize) out.push(...parser.push(table.subarray(i, i + pieceSize)));
  parser.end();
  return out;
}

describe('directory archive entry table', () => {
  it('decodes what it encodes, however the table is split into pieces', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), fc.integer({ min: 1, max: 200 }), (raw, pieceSize) => {
        const { entries, table, tableOffset } = layout(raw);
        expect(parseAll(table, tableOffset, entries.length, pieceSize)).toEqual(entries);
      }),
    );
  });

  it('refuses paths that would leave the restore target', () => {
    for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../b', 'a//b', 'a/./b', 'a/', 'x\0y']) {
      expect(unsafePathReason(Buffer.from(bad)), bad).toBeDefined();
      const { table } = layout([{ type: 'dir', path: Buffer.from(bad), mode: 0o755, uid: 0, gid: 0, size: 0, mtimeNs: 0n, inode: 1n, dev: 1n }]);
      expect(() => parseAll(table, 0, 1, 1000), bad).toThrow(ArchiveFormatError);
    }
    expect(unsafePathReason(Buffer.from('.'))).toBeUndefined();
    expect(unsafePathReason(Buffer.from('a/b..c/.d'))).toBeUndefined();
  });

  it('refuses file contents that overlap, leave gaps or run into the table', () => {
    const file = (path: string, size: number, offset: number): DirEntry => ({
      type: 'file',
      path: Buffer.from(path),
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      offset,
      mtimeNs: 0n,
      inode: 1n,
      dev: 1n,
    });
    const table = (...e: DirEntry[]) => Buffer.concat(e.map(encodeEntry));
    expect(() => parseAll(table(file('a', 10, 0), file('b', 5, 9)), 15, 2, 1000)).toThrow(/starts at 9, expected 10/);
    expect(() => parseAll(table(file('a', 10, 0)), 5, 1, 1000)).toThrow(/runs into the entry table/);
    expect(() => parseAll(table(file('a', 10, 0)), 12, 1, 1000)).toThrow(/file contents end at 10, but the table starts at 12/);
    expect(() => parseAll(table(file('a', 10, 0)), 10, 2, 1000)).toThrow(/holds 1 entries, the trailer says 2/);
    expect(() => parseAll(table(file('a', 10, 0)).subarray(0, 50), 10, 1, 1000)).toThrow(/ends inside entry 0/);
  });

  it('checks that the trailer fits the archive it ends', () => {
    const trailer = encodeArchiveTrailer({ tableOffset: 100, entryCount: 3, tableBytes: 200 });
    expect(decodeArchiveTrailer('s', trailer, 332)).toEqual({ tableOffset: 100, entryCount: 3, tableBytes: 200 });
    expect(() => decodeArchiveTrailer('s', trailer, 333)).toThrow(/does not end where/);
    expect(() => decodeArchiveTrailer('s', Buffer.alloc(32), 332)).toThrow(/not a directory archive/);
  });
});

describe('directory archive parents', () => {
  const entry = (type: DirEntry['type'], path: string, extra: Partial<DirEntry> = {}): DirEntry => ({
    type,
    path: Buffer.from(path),
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 0,
    offset: 0,
    mtimeNs: 0n,
    inode: 1n,
    dev: 1n,
    ...extra,
  });
  const parse = (...entries: DirEntry[]) => parseAll(Buffer.concat(entries.map(encodeEntry)), 0, entries.length, 1000);

  it('refuses an entry under a symlink or a file (a restore would write through it)', () => {
    expect(() => parse(entry('dir', '.'), entry('symlink', 'a', { target: Buffer.from('/etc') }), entry('file', 'a/passwd'))).toThrow(
      /parent is not a directory/,
    );
    expect(() => parse(entry('dir', '.'), entry('file', 'f'), entry('dir', 'f/sub'))).toThrow(/parent is not a directory/);
    expect(() => parse(entry('dir', '.'), entry('file', 'x/y'))).toThrow(/parent is not a directory/);
    expect(() => parse(entry('dir', '.'), entry('dir', '.'))).toThrow(/"\." must be the first entry/);
    expect(parse(entry('dir', '.'), entry('dir', 'a'), entry('dir', 'a/b'), entry('file', 'a/b/c')).map((e) => e.path.toString())).toEqual([
      '.',
      'a',
      'a/b',
      'a/b/c',
    ]);
  });
});
