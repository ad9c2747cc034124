/**
 * file:, vm: and libvirt: sources against real images: qcow2 made with qemu-img/qemu-io
 * (read as the guest sees them, compared with `qemu-img convert -O raw` and
 * `qemu-img compare`), raw files, a loop block device when the machine allows one, glob
 * discovery, and libvirt's test driver.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSourceSpec } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  globToRegExp,
  parseDiskFormats,
  parseDomblklist,
  resolveSource,
  SourceClosedError,
  SourceFailedError,
  SourceNotFoundError,
  SourceSizeMismatchError,
  SourceUnsupportedError,
  type OpenedSource,
  type SourceTarget,
} from '../dist/sources/index.js';
import { convertToQcow2, convertToRaw, makeQcow2, qemuCompare, qemuInfo } from '../../../test-support/qemu.js';

const run = promisify(execFile);
const MiB = 1 << 20;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-image-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function resolve(spec: string, warnings?: string[]): Promise<SourceTarget[]> {
  return resolveSource(parseSourceSpec(spec), warnings ? { onWarning: (m) => warnings.push(m) } : {});
}

async function readAll(opened: OpenedSource): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of opened.stream!) parts.push(Buffer.from(part)); // pieces are valid until the next one
  return Buffer.concat(parts);
}

async function readHash(target: SourceTarget): Promise<{ sha256: string; bytes: number; expectedBytes?: number }> {
  const opened = await target.open();
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const part of opened.stream!) {
    hash.update(part);
    bytes += part.length;
  }
  await opened.done;
  await opened.close();
  return { sha256: hash.digest('hex'), bytes, expectedBytes: opened.expectedBytes };
}

async function fileHash(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Deterministic incompressible-ish bytes. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size + 3);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out.subarray(0, size);
}

async function qemuNbdProcessesFor(path: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmdline[0]?.endsWith('qemu-nbd') && cmdline.includes(path)) pids.push(Number(entry));
  }
  return pids;
}

describe('file: sources', () => {
  it('reads a regular file byte for byte, with its size', async () => {
    const path = join(dir, 'plain.img');
    const data = noise(3 * MiB + 123, 7);
    await writeFile(path, data);
    const [t] = await resolve(`file:${path}`);
    expect(t).toMatchObject({ name: path, kind: 'file', chunking: 'vm-image' });
    const opened = await t.open();
    expect(opened.expectedBytes).toBe(data.length);
    const bytes = await readAll(opened);
    await opened.done;
    expect(bytes.equals(data)).toBe(true);
  });

  it('reads a qcow2 file given as file: as its bytes, not as the guest view', async () => {
    const path = join(dir, 'as-file.qcow2');
    await makeQcow2(path, 8 * MiB, [{ offset: MiB, length: MiB, pattern: 0x5a }]);
    const [t] = await resolve(`file:${path}`);
    const { sha256, bytes } = await readHash(t);
    expect(sha256).toBe(await fileHash(path));
    expect(bytes).toBeLessThan(8 * MiB);
  });

  it('says what is wrong with a missing path, a directory or a fifo', async () => {
    await expect(resolve(`file:${dir}/nope.img`)).rejects.toThrow(SourceNotFoundError);
    await expect(resolve(`file:${dir}/nope.img`)).rejects.toThrow(/nope\.img does not exist/);
    await expect(resolve(`file:${dir}`)).rejects.toThrow(SourceUnsupportedError);
    await expect(resolve(`file:${dir}`)).rejects.toThrow(/is a directory.*vm:/);
    const fifo = join(dir, 'fifo');
    await run('mkfifo', [fifo]);
    await expect(resolve(`file:${fifo}`)).rejects.toThrow(/named pipe.*cmd:cat/);
  });

  it('a file that grows while it is read fails with SourceSizeMismatchError', async () => {
    const path = join(dir, 'growing.img');
    await writeFile(path, noise(4 * MiB, 1));
    const opened = await (await resolve(`file:${path}`))[0].open();
    const iterator = opened.stream![Symbol.asyncIterator]();
    await iterator.next();
    await appendFile(path, noise(2 * MiB, 2));
    let err: unknown;
    try {
      for (;;) if ((await iterator.next()).done) break;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SourceSizeMismatchError);
    expect((err as Error).message).toMatch(/more than the 4194304 bytes/);
    await expect(opened.done).rejects.toBeInstanceOf(SourceSizeMismatchError);
  });

  it('a file truncated while it is read fails with SourceSizeMismatchError', async () => {
    const path = join(dir, 'shrinking.img');
    await writeFile(path, noise(6 * MiB, 3));
    const opened = await (await resolve(`file:${path}`))[0].open();
    const iterator = opened.stream![Symbol.asyncIterator]();
    await iterator.next();
    await truncate(path, 2 * MiB);
    const err = await (async () => {
      for (;;) if ((await iterator.next()).done) break;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceSizeMismatchError);
    expect((err as SourceSizeMismatchError).expectedBytes).toBe(6 * MiB);
    await expect(opened.done).rejects.toThrow(/ended after .* bytes, but its size was 6291456/);
  });

  it('close() before the end: done rejects with SourceClosedError', async () => {
    const path = join(dir, 'closed.img');
    await writeFile(path, noise(4 * MiB, 4));
    const opened = await (await resolve(`file:${path}`))[0].open();
    await opened.stream![Symbol.asyncIterator]().next();
    await opened.close();
    await opened.close();
    await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
  });

  it('a block device (a loop device, when this machine lets the test make one): size from sysfs, bytes as written', async (ctx) => {
    const backing = join(dir, 'loop-backing.img');
    const data = noise(5 * MiB, 5);
    await writeFile(backing, data);
    let device: string;
    try {
      device = (await run('losetup', ['--find', '--show', '--read-only', backing])).stdout.trim();
    } catch (err) {
      ctx.skip(`no loop device here (${(err as Error).message.split('\n')[0]})`);
      return;
    }
    try {
      const link = join(dir, 'by-id-link');
      await symlink(device, link);
      for (const path of [device, link]) {
        const [t] = await resolve(`file:${path}`);
        expect(t).toMatchObject({ name: path, kind: 'block-device', chunking: 'vm-image' });
        const opened = await t.open();
        expect(opened.expectedBytes).toBe(data.length);
        expect((await readAll(opened)).equals(data)).toBe(true);
        await opened.done;
      }
      // vm: also takes block devices (read raw).
      const [vm] = await resolve(`vm:${dir}/by-id-l*`);
      expect(vm).toMatchObject({ name: link, kind: 'block-device' });
    } finally {
      await run('losetup', ['-d', device]);
    }
  });
});

describe('vm: sources', () => {
  it('reads qcow2 as the guest sees it: the stream equals qemu-img convert -O raw, expectedBytes is the virtual size', async () => {
    const images = join(dir, 'vm-read');
    await mkdir(images);
    const path = join(images, 'web.qcow2');
    await makeQcow2(path, 48 * MiB + 65536, [
      { offset: 0, length: 512, pattern: 0xeb },
      { offset: MiB, length: 3 * MiB + 4096, pattern: 0xab },
      { offset: 20 * MiB + 512, length: 65536, pattern: 0x11 },
      { offset: 30 * MiB, length: 2 * MiB, pattern: 0 },
      { offset: 48 * MiB, length: 65536, pattern: 0xff },
    ]);
    const [t] = await resolve(`vm:${images}/*.qcow2`);
    expect(t).toMatchObject({ name: path, kind: 'file', chunking: 'vm-image' });
    const reference = join(dir, 'web.reference.raw');
    await convertToRaw(path, reference);
    const { sha256, bytes, expectedBytes } = await readHash(t);
    expect(expectedBytes).toBe((await qemuInfo(path))['virtual-size']);
    expect(bytes).toBe(48 * MiB + 65536);
    expect(sha256).toBe(await fileHash(reference));
  });

  it('a restore of the stream is identical to the image for qemu-img compare, also for a compressed overlay on a backing file', async () => {
    const images = join(dir, 'vm-chain');
    await mkdir(images);
    const base = join(images, 'base.qcow2');
    const rawData = join(dir, 'chain-data.raw');
    await writeFile(rawData, Buffer.concat([noise(4 * MiB, 11), Buffer.alloc(4 * MiB), noise(2 * MiB, 12)]));
    await convertToQcow2(rawData, base, { sourceFormat: 'raw' });
    const overlay = join(images, 'overlay.qcow2');
    await makeQcow2(overlay, 10 * MiB, [{ offset: 5 * MiB, length: MiB, pattern: 0x42 }], base);
    const compressed = join(images, 'overlay-compressed.qcow2');
    await convertToQcow2(overlay, compressed, { compressed: true });

    const targets = await resolve(`vm:${images}/overlay*.qcow2`);
    expect(targets.map((t) => t.name)).toEqual([compressed, overlay]);
    for (const t of targets) {
      const restored = join(dir, `restored-${targets.indexOf(t)}.raw`);
      const opened = await t.open();
      const bytes = await readAll(opened);
      await opened.done;
      await writeFile(restored, bytes);
      expect(await qemuCompare(restored, overlay)).toBe(true);
      expect(await qemuCompare(restored, t.name)).toBe(true);
      expect(bytes.subarray(5 * MiB, 6 * MiB).every((b) => b === 0x42)).toBe(true);
    }
    // And a difference is seen as one.
    const other = join(dir, 'restored-other.raw');
    await writeFile(other, Buffer.alloc(10 * MiB));
    expect(await qemuCompare(other, overlay)).toBe(false);
  });

  it('detects qcow2 by its magic, not its name; a raw image named .qcow2 is read raw', async () => {
    const images = join(dir, 'vm-magic');
    await mkdir(images);
    const disguised = join(images, 'a-disk.img');
    await makeQcow2(disguised, 4 * MiB, [{ offset: 0, length: MiB, pattern: 0x33 }]);
    const raw = join(images, 'b-raw.qcow2');
    await writeFile(raw, noise(MiB + 512, 9));
    const [a, b] = await resolve(`vm:${images}/*`);
    expect(a.name).toBe(disguised);
    const first = await readHash(a);
    expect(first.bytes).toBe(4 * MiB);
    expect(first.sha256).toBe(
      createHash('sha256')
        .update(Buffer.concat([Buffer.alloc(MiB, 0x33), Buffer.alloc(3 * MiB)]))
        .digest('hex'),
    );
    const second = await readHash(b);
    expect(second).toEqual({ sha256: await fileHash(raw), bytes: MiB + 512, expectedBytes: MiB + 512 });
  });

  it('expands the glob on every resolve: an image created after the first resolve is discovered', async () => {
    const images = join(dir, 'vm-glob');
    await mkdir(join(images, 'sub'), { recursive: true });
    await writeFile(join(images, 'one.img'), noise(4096, 1));
    await writeFile(join(images, '.hidden.img'), noise(4096, 2));
    await writeFile(join(images, 'notes.txt'), 'x');
    const glob = `vm:${images}/*.img`;
    expect((await resolve(glob)).map((t) => t.name)).toEqual([join(images, 'one.img')]);
    await writeFile(join(images, 'two.img'), noise(8192, 3));
    await mkdir(join(images, 'dir.img')); // a directory that matches is not a target
    const again = await resolve(glob);
    expect(again.map((t) => t.name)).toEqual([join(images, 'one.img'), join(images, 'two.img')]);
    expect((await readHash(again[1])).bytes).toBe(8192);
    // Wildcards in directory segments, ? and classes.
    await mkdir(join(images, 'vm-1'));
    await mkdir(join(images, 'vm-2'));
    await writeFile(join(images, 'vm-1', 'disk0.img'), 'a');
    await writeFile(join(images, 'vm-2', 'disk0.img'), 'b');
    await writeFile(join(images, 'vm-2', 'disk1.img'), 'c');
    expect((await resolve(`vm:${images}/vm-?/disk[0-9].img`)).map((t) => t.name)).toEqual([
      join(images, 'vm-1', 'disk0.img'),
      join(images, 'vm-2', 'disk0.img'),
      join(images, 'vm-2', 'disk1.img'),
    ]);
    expect((await resolve(`vm:${images}/vm-[!1]/disk*.img`)).map((t) => t.name)).toEqual([
      join(images, 'vm-2', 'disk0.img'),
      join(images, 'vm-2', 'disk1.img'),
    ]);
    expect((await resolve(`vm:${images}/.*.img`)).map((t) => t.name)).toEqual([join(images, '.hidden.img')]);
    // Nothing matched is not an error (the caller decides); a literal path that is missing is.
    expect(await resolve(`vm:${images}/*.vmdk`)).toEqual([]);
    expect(await resolve(`vm:${dir}/no-such-dir/*.img`)).toEqual([]);
    await expect(resolve(`vm:${images}/missing.qcow2`)).rejects.toThrow(SourceNotFoundError);
  });

  it('globToRegExp: *, ?, classes, negation, literal metacharacters', () => {
    expect(globToRegExp('*.qcow2').test('web.qcow2')).toBe(true);
    expect(globToRegExp('*.qcow2').test('web.qcow2.bak')).toBe(false);
    expect(globToRegExp('web-?').test('web-1')).toBe(true);
    expect(globToRegExp('web-?').test('web-12')).toBe(false);
    expect(globToRegExp('[a-c]x').test('bx')).toBe(true);
    expect(globToRegExp('[!a-c]x').test('bx')).toBe(false);
    expect(globToRegExp('[^a-c]x').test('dx')).toBe(true);
    expect(globToRegExp('[*]').test('*')).toBe(true);
    expect(globToRegExp('[*]').test('a')).toBe(false);
    expect(globToRegExp('a.b(c)+$').test('a.b(c)+$')).toBe(true);
    expect(globToRegExp('[]]').test(']')).toBe(true);
  });

  it('a qcow2 image in use by another process fails with a clear SourceFailedError', async () => {
    const path = join(dir, 'locked.qcow2');
    await makeQcow2(path, 4 * MiB);
    // A writer holding qemu's image lock, as a running VM does.
    const socket = join(dir, 'writer.sock');
    const writer = spawn('qemu-nbd', ['-f', 'qcow2', `--socket=${socket}`, '--persistent', path], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 250 && !(await readdir(dir)).includes('writer.sock'); i++) await sleep(20);
      const [t] = await resolve(`vm:${path}`);
      const err = await t.open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SourceFailedError);
      expect((err as Error).message).toMatch(/in use/);
      expect((err as SourceFailedError).stderrTail).toMatch(/lock/);
    } finally {
      writer.kill('SIGKILL');
      await new Promise((r) => writer.once('exit', r));
    }
  });

  it('a corrupt qcow2 fails with qemu-img saying why', async () => {
    const path = join(dir, 'corrupt.qcow2');
    await writeFile(path, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(60, 0xee)]));
    const [t] = await resolve(`vm:${path}`);
    const err = await t.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceFailedError);
    expect((err as SourceFailedError).program).toBe('qemu-img');
    expect((err as SourceFailedError).stderrTail.length).toBeGreaterThan(0);
  });

  it('close() in the middle of a qcow2 stream stops qemu-nbd and removes its socket directory', async () => {
    const path = join(dir, 'close-me.qcow2');
    await makeQcow2(path, 64 * MiB, [{ offset: 0, length: 32 * MiB, pattern: 0x61 }]);
    const nbdDirsBefore = (await readdir(tmpdir())).filter((n) => n.startsWith('hoard-nbd-'));
    const [t] = await resolve(`vm:${path}`);
    const opened = await t.open();
    const iterator = opened.stream![Symbol.asyncIterator]();
    await iterator.next();
    expect(await qemuNbdProcessesFor(path)).toHaveLength(1);
    await opened.close();
    expect(await qemuNbdProcessesFor(path)).toEqual([]);
    await expect(opened.done).rejects.toBeInstanceOf(SourceClosedError);
    await expect(iterator.next()).rejects.toBeInstanceOf(SourceClosedError);
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('hoard-nbd-') && !nbdDirsBefore.includes(n))).toEqual([]);
  });

  it('after a complete read qemu-nbd has exited and nothing is left behind', async () => {
    const path = join(dir, 'complete.qcow2');
    await makeQcow2(path, 2 * MiB, [{ offset: 0, length: MiB, pattern: 0x62 }]);
    const nbdDirsBefore = (await readdir(tmpdir())).filter((n) => n.startsWith('hoard-nbd-'));
    const [t] = await resolve(`vm:${path}`);
    expect((await readHash(t)).bytes).toBe(2 * MiB);
    expect(await qemuNbdProcessesFor(path)).toEqual([]);
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('hoard-nbd-') && !nbdDirsBefore.includes(n))).toEqual([]);
  });
});

describe('libvirt: sources', () => {
  it("discovers the test driver's built-in domain and its disk (test:///default)", async () => {
    const targets = await resolve('libvirt:*?uri=test:///default');
    expect(targets.map((t) => [t.name, t.kind, t.chunking])).toEqual([['libvirt:test/vda', 'file', 'vm-image']]);
    // The test driver's disk is not a real file.
    await expect(targets[0].open()).rejects.toThrow(SourceNotFoundError);
    await expect(targets[0].open()).rejects.toThrow(/\/guest\/diskimage1 does not exist/);
    expect(await resolve('libvirt:web-*?uri=test:///default')).toEqual([]);
  });

  it('reads the disks of matching domains from a test-driver host definition, by the format in the domain XML', async () => {
    const images = join(dir, 'libvirt');
    await mkdir(images);
    const qcow2 = join(images, 'web-1.qcow2');
    await makeQcow2(qcow2, 6 * MiB, [{ offset: 2 * MiB, length: MiB, pattern: 0x77 }]);
    // A disk libvirt says is raw, whose guest wrote a qcow2 header into it: read raw.
    const rawWithHeader = join(images, 'web-1 data.img');
    await makeQcow2(rawWithHeader, 4 * MiB);
    const undeclared = join(images, 'db-1.qcow2');
    await makeQcow2(undeclared, 3 * MiB, [{ offset: 0, length: MiB, pattern: 0x12 }]);
    const xml = `<node>
  <domain type='test'><name>web-1</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${qcow2}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${rawWithHeader}'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='${images}/install.iso'/><target dev='sda' bus='sata'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='pool/web-1-extra'><host name='mon1' port='6789'/></source><target dev='vdc' bus='virtio'/></disk>
  </devices></domain>
  <domain type='test'><name>db-1</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <disk type='file' device='disk'><source file='${undeclared}'/><target dev='vda' bus='virtio'/></disk>
  </devices></domain>
  <domain type='test'><name>other</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <disk type='file' device='disk'><source file='/nowhere.img'/><target dev='vda' bus='virtio'/></disk>
  </devices></domain>
</node>`;
    const host = join(images, 'host.xml');
    await writeFile(host, xml);
    const warnings: string[] = [];
    const targets = await resolve(`libvirt:[dw]*-1?uri=test://${host}`, warnings);
    expect(targets.map((t) => [t.name, t.kind])).toEqual([
      ['libvirt:db-1/vda', 'file'],
      ['libvirt:web-1/vda', 'file'],
      ['libvirt:web-1/vdb', 'file'],
    ]);
    expect(warnings).toEqual([expect.stringMatching(/^libvirt:web-1\/vdc: skipped, a network disk \(pool\/web-1-extra\)/)]);

    const [db, vda, vdb] = targets;
    const dbRead = await readHash(db); // no <driver type>: qcow2 by its magic
    expect(dbRead.bytes).toBe(3 * MiB);
    const vdaRef = join(dir, 'web-1.raw');
    await convertToRaw(qcow2, vdaRef);
    expect(await readHash(vda)).toEqual({ sha256: await fileHash(vdaRef), bytes: 6 * MiB, expectedBytes: 6 * MiB });
    const vdbRead = await readHash(vdb); // declared raw: the file's own bytes
    expect(vdbRead.sha256).toBe(await fileHash(rawWithHeader));
  });

  it('an unreachable libvirt URI fails with virsh saying why', async () => {
    const err = await resolve(`libvirt:*?uri=test://${dir}/no-such-host.xml`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceFailedError);
    expect((err as SourceFailedError).program).toBe('virsh');
    expect((err as Error).message).toMatch(/virsh .*list --all --name exited with status 1/);
    expect((err as SourceFailedError).stderrTail).toMatch(/error/);
  });

  it('parses domblklist rows (sources with spaces, empty drives) and driver formats from domain XML', () => {
    const rows = parseDomblklist(
      ` file      disk    vda   /var/lib/libvirt/images/my disk.qcow2\n block     disk    sdb   /dev/vg0/db\n file      cdrom   sda   -\n network   disk    vdc   pool/img\n`,
    );
    expect(rows).toEqual([
      { type: 'file', device: 'disk', target: 'vda', source: '/var/lib/libvirt/images/my disk.qcow2' },
      { type: 'block', device: 'disk', target: 'sdb', source: '/dev/vg0/db' },
      { type: 'file', device: 'cdrom', target: 'sda' },
      { type: 'network', device: 'disk', target: 'vdc', source: 'pool/img' },
    ]);
    const formats = parseDiskFormats(`<domain><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='/a &amp; b.qcow2'/>
        <backingStore type='file'><format type='raw'/><source file='/base.img'/></backingStore><target dev='vda' bus='virtio'/></disk>
      <disk type="block" device="disk"><driver name="qemu" type="raw"/><source dev="/dev/sdb"/><target dev="sdb" bus="scsi"/></disk>
      <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
    </devices></domain>`);
    expect([...formats]).toEqual([
      ['vda', 'qcow2'],
      ['sdb', 'raw'],
    ]);
  });
});
