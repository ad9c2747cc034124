/**
 * Source specs (@hoard/protocol): what parses, what does not and what the error says,
 * printing back with passwords redacted, and a round-trip property.
 */
import fc from 'fast-check';
import { formatSourceSpec, parseSourceSpec, SourceSpecError, type SourceSpec } from '@hoard/protocol';
import { describe, expect, it } from 'vitest';

function parseError(text: string): SourceSpecError {
  try {
    parseSourceSpec(text);
  } catch (err) {
    expect(err).toBeInstanceOf(SourceSpecError);
    expect((err as Error).name).toBe('SourceSpecError');
    return err as SourceSpecError;
  }
  throw new Error(`${JSON.stringify(text)} parsed`);
}

describe('parseSourceSpec', () => {
  it('parses every source type', () => {
    expect(parseSourceSpec('file:/var/lib/libvirt/images/web.img')).toEqual({ type: 'file', path: '/var/lib/libvirt/images/web.img' });
    expect(parseSourceSpec('file:/dev/vg0/web')).toEqual({ type: 'file', path: '/dev/vg0/web' });
    expect(parseSourceSpec('dir:/srv/www')).toEqual({ type: 'dir', path: '/srv/www' });
    expect(parseSourceSpec('vm:/var/lib/libvirt/images/*.qcow2')).toEqual({ type: 'vm', glob: '/var/lib/libvirt/images/*.qcow2' });
    expect(parseSourceSpec('vm:/images/web.qcow2')).toEqual({ type: 'vm', glob: '/images/web.qcow2' });
    expect(parseSourceSpec('vm:/srv/vm-[0-9]/disk?.img')).toEqual({ type: 'vm', glob: '/srv/vm-[0-9]/disk?.img' });
    expect(parseSourceSpec('libvirt:*')).toEqual({ type: 'libvirt', pattern: '*' });
    expect(parseSourceSpec('libvirt:web-*?uri=test:///default')).toEqual({ type: 'libvirt', pattern: 'web-*', uri: 'test:///default' });
    expect(parseSourceSpec('libvirt:db?uri=qemu+ssh://root@kvm1/system?keyfile=/k&no_verify=1')).toEqual({
      type: 'libvirt',
      pattern: 'db',
      uri: 'qemu+ssh://root@kvm1/system?keyfile=/k&no_verify=1',
    });
    expect(parseSourceSpec('postgres://backup:s3cret@db1:5432/shop')).toEqual({
      type: 'postgres',
      url: 'postgres://backup:s3cret@db1:5432/shop',
      format: 'custom',
    });
    expect(parseSourceSpec('postgresql://db1/shop?format=plain')).toEqual({ type: 'postgres', url: 'postgresql://db1/shop', format: 'plain' });
    expect(parseSourceSpec('postgres://db1/shop?sslmode=require&format=custom')).toEqual({
      type: 'postgres',
      url: 'postgres://db1/shop?sslmode=require',
      format: 'custom',
    });
    expect(parseSourceSpec('postgres:///shop?host=/var/run/postgresql')).toEqual({
      type: 'postgres',
      url: 'postgres:///shop?host=/var/run/postgresql',
      format: 'custom',
    });
    expect(parseSourceSpec('mysql://backup:pw@db2:3306/shop')).toEqual({ type: 'mysql', url: 'mysql://backup:pw@db2:3306/shop' });
    expect(parseSourceSpec('mariadb://root@localhost/shop?socket=/run/mysqld/mysqld.sock')).toEqual({
      type: 'mysql',
      url: 'mariadb://root@localhost/shop?socket=/run/mysqld/mysqld.sock',
    });
    expect(parseSourceSpec('cmd:tar -C /etc -cf - . | zstd')).toEqual({ type: 'cmd', command: 'tar -C /etc -cf - . | zstd' });
    expect(parseSourceSpec('  FILE:/x  ')).toEqual({ type: 'file', path: '/x' });
  });

  it('rejects bad specs with a message that says what would be right', () => {
    expect(parseError('vm:images/*.qcow2').message).toMatch(/"vm:" needs an absolute path or glob.*e\.g\. vm:\/var\/lib\/libvirt\/images\/\*\.qcow2/);
    expect(parseError('vm:').message).toMatch(/"vm:" needs an absolute path or glob, e\.g\. vm:\/var\/lib\/libvirt\/images\/\*\.qcow2/);
    expect(parseError('file:relative/x.img').message).toMatch(/absolute path/);
    expect(parseError('file:/var/lib/../../etc/shadow').message).toMatch(/must not contain "\.\." segments/);
    expect(parseError('dir:/srv/..').message).toMatch(/"\.\."/);
    expect(parseError('file:/x\0y').message).toMatch(/NUL/);
    expect(parseError('cmd:').message).toMatch(/"cmd:" needs a command/);
    expect(parseError('cmd:   ').message).toMatch(/"cmd:" needs a command/);
    expect(parseError('s3://bucket/x').message).toMatch(/unknown source type "s3:".*file:.*cmd:/);
    expect(parseError('/var/lib/x.img').message).toMatch(/write file:\/var\/lib\/x\.img .* or vm:\/var\/lib\/x\.img/);
    expect(parseError('').message).toMatch(/empty source spec/);
    expect(parseError('vm:/images/[ab.qcow2').message).toMatch(/never closed/);
    expect(parseError('libvirt:').message).toMatch(/needs a domain-name pattern/);
    expect(parseError('libvirt:a/b').message).toMatch(/must not contain "\/"/);
    expect(parseError('libvirt:*?uri=').message).toMatch(/needs a connection URI/);
    expect(parseError('libvirt:*?url=qemu:///system').message).toMatch(/one parameter, \?uri=/);
    expect(parseError('postgres://db1:5432').message).toMatch(/names no database.*e\.g\. postgres:\/\//);
    expect(parseError('postgres://db1/shop?format=tar').message).toMatch(/format=custom .* or format=plain/);
    expect(parseError('postgres:shop').message).toMatch(/needs a URL like postgres:\/\//);
    expect(parseError('mysql://db1').message).toMatch(/names no database/);
    expect(parseError('mysql://db1/shop?ssl=1').message).toMatch(/"ssl" is not supported/);
  });

  it('never repeats a password in an error message', () => {
    const err = parseError('postgres://u:hunter2@db1:99999/shop');
    expect(err.message).not.toContain('hunter2');
    expect(err.spec).not.toContain('hunter2');
    expect(parseError('mysql://u:hunter2@h').message).not.toContain('hunter2');
  });
});

describe('formatSourceSpec', () => {
  it('prints specs back, with passwords redacted', () => {
    expect(formatSourceSpec(parseSourceSpec('postgres://user:secret@db1:5432/shop'))).toBe('postgres://user:***@db1:5432/shop');
    expect(formatSourceSpec(parseSourceSpec('postgres://user:p%40ss@db1/shop?format=plain'))).toBe('postgres://user:***@db1/shop?format=plain');
    expect(formatSourceSpec(parseSourceSpec('postgres://db1/shop?sslmode=require&format=plain'))).toBe('postgres://db1/shop?sslmode=require&format=plain');
    expect(formatSourceSpec(parseSourceSpec('postgres://db1/shop?format=custom'))).toBe('postgres://db1/shop');
    expect(formatSourceSpec(parseSourceSpec('mysql://root:pw@db2/shop'))).toBe('mysql://root:***@db2/shop');
    expect(formatSourceSpec(parseSourceSpec('mysql://root@db2/shop'))).toBe('mysql://root@db2/shop');
    expect(formatSourceSpec(parseSourceSpec('libvirt:web-*?uri=test:///default'))).toBe('libvirt:web-*?uri=test:///default');
    expect(formatSourceSpec({ type: 'postgres', url: 'postgres://a:b@h/d', format: 'plain' })).toBe('postgres://a:***@h/d?format=plain');
  });

  // Generated valid specs without passwords print back exactly as written, and parse
  // back to the same spec.
  it('format(parse(x)) === x for valid specs (property)', () => {
    const segChar = fc.constantFrom(...'abcxyz019_-.+ '.split(''));
    const segment = fc.string({ unit: segChar, minLength: 1, maxLength: 8 }).filter((s) => s !== '.' && s !== '..' && s.trim() === s);
    const absPath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
    const globPart = fc.oneof(segment, fc.constantFrom('*', '*.qcow2', 'vm-?', '[a-c]*', '[!x]?.img', 'disk[0-9]'));
    const glob = fc.array(globPart, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
    const name = fc.string({ unit: fc.constantFrom(...'abcdefxyz0129_-.'.split('')), minLength: 1, maxLength: 10 }).filter((n) => n !== '.' && n !== '..');
    const host = fc.oneof(
      fc.constantFrom('localhost', '127.0.0.1', 'db1.example.com', '[::1]'),
      name.map((n) => `h${n.replace(/[._-]/g, '')}`),
    );
    const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
    const user = fc.option(
      name.map((n) => `u${n}`),
      { nil: undefined },
    );
    const authority = fc.tuple(user, host, port).map(([u, h, p]) => `${u ? `${u}@` : ''}${h}${p ? `:${p}` : ''}`);
    const spec = fc.oneof(
      absPath.map((p) => `file:${p}`),
      absPath.map((p) => `dir:${p}`),
      glob.map((g) => `vm:${g}`),
      fc
        .tuple(
          fc.oneof(name, fc.constantFrom('*', 'web-*', 'db-[0-9]?')),
          fc.option(fc.constantFrom('qemu:///system', 'test:///default', 'qemu+ssh://root@kvm1/system?keyfile=/k&x=1'), { nil: undefined }),
        )
        .map(([p, uri]) => `libvirt:${p}${uri ? `?uri=${uri}` : ''}`),
      fc
        .tuple(
          fc.constantFrom('postgres', 'postgresql'),
          authority,
          name,
          fc.constantFrom('', '?format=plain', '?sslmode=require', '?sslmode=require&format=plain'),
        )
        .map(([scheme, a, db, q]) => `${scheme}://${a}/${db}${q}`),
      fc
        .tuple(fc.constantFrom('mysql', 'mariadb'), authority, name, fc.constantFrom('', '?socket=/run/mysqld/mysqld.sock'))
        .map(([scheme, a, db, q]) => `${scheme}://${a}/${db}${q}`),
      fc
        .string({ minLength: 1, maxLength: 40 })
        .filter((c) => c.trim() === c && c !== '' && !c.includes('\0'))
        .map((c) => `cmd:${c}`),
    );
    fc.assert(
      fc.property(spec, (text) => {
        const parsed = parseSourceSpec(text);
        expect(formatSourceSpec(parsed)).toBe(text);
        expect(parseSourceSpec(formatSourceSpec(parsed))).toEqual(parsed);
      }),
      { numRuns: 2000 },
    );
  });

  it('parse(format(spec)) === spec for specs built by hand', () => {
    const specs: SourceSpec[] = [
      { type: 'file', path: '/a b/c' },
      { type: 'vm', glob: '/x/*' },
      { type: 'libvirt', pattern: '*' },
      { type: 'postgres', url: 'postgres://h/d?sslmode=disable', format: 'plain' },
      { type: 'cmd', command: 'echo hi' },
    ];
    for (const spec of specs) expect(parseSourceSpec(formatSourceSpec(spec))).toEqual(spec);
  });
});
