/**
 * libvirt: sources: the disks of every domain (running or not) whose name matches the
 * pattern. Discovery:
 *
 *   virsh [-c URI] list --all --name              domain names
 *   virsh [-c URI] -q domblklist DOMAIN --details  Type Device Target Source per disk
 *   virsh [-c URI] dumpxml DOMAIN                  each disk's <driver type=...> (format)
 *
 * A disk of type `file` or `block` with device `disk` is a target named
 * `libvirt:DOMAIN/TARGET` (e.g. `libvirt:web-1/vda`): the target device name is what
 * stays stable when the disk's file changes (an external snapshot overlay, a moved
 * image), so the job's history of that disk continues. Other disks are skipped with a
 * warning: CD-ROMs and floppies, `lun` passthrough, network (rbd, iscsi, nbd), pool
 * volumes and empty drives. The format comes from the domain XML (a raw disk is read
 * raw even if its guest wrote a qcow2 header into it); without one, from the image's
 * magic.
 */
import { execFile } from 'node:child_process';
import type { LibvirtSourceSpec } from '@hoard/protocol/agent';
import { formatSourceSpec } from '@hoard/protocol/agent';
import { SourceToolMissingError } from './errors.js';
import { globToRegExp } from './glob.js';
import { fileTarget } from './file.js';
import { imageTarget, openDetectedImage } from './image.js';
import { processFailure, STDERR_TAIL_BYTES } from './process.js';
import type { SourceTarget } from './source.js';

export interface LibvirtDisk {
  /** `file`, `block`, `network`, `volume`, ... */
  type: string;
  /** `disk`, `cdrom`, `floppy`, `lun` */
  device: string;
  /** The guest's device name, e.g. `vda`. */
  target: string;
  /** Path of the file or block device; undefined for an empty drive (`-`). */
  source?: string;
}

export async function resolveLibvirtSource(spec: LibvirtSourceSpec, env: NodeJS.ProcessEnv, warn: (message: string) => void): Promise<SourceTarget[]> {
  const label = formatSourceSpec(spec);
  const connect = spec.uri === undefined ? [] : ['-c', spec.uri];
  const virsh = (args: string[]): Promise<string> => runVirsh(label, [...connect, ...args], env);
  const re = globToRegExp(spec.pattern);
  const domains = (await virsh(['list', '--all', '--name']))
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name !== '' && re.test(name))
    .sort();
  const targets: SourceTarget[] = [];
  for (const domain of domains) {
    const disks = parseDomblklist(await virsh(['-q', 'domblklist', domain, '--details']));
    const formats = parseDiskFormats(await virsh(['dumpxml', domain]));
    for (const disk of disks) {
      const name = `libvirt:${domain}/${disk.target}`;
      if (disk.device !== 'disk') {
        if (disk.device !== 'cdrom' && disk.device !== 'floppy') warn(`${name}: skipped, a ${disk.device} device (only device "disk" is backed up)`);
        continue;
      }
      if (disk.source === undefined) {
        warn(`${name}: skipped, the drive has no source`);
        continue;
      }
      if (disk.type !== 'file' && disk.type !== 'block') {
        warn(`${name}: skipped, a ${disk.type} disk (${disk.source}); only file and block disks are read, back up ${disk.type} storage where it lives`);
        continue;
      }
      if (!disk.source.startsWith('/')) {
        // qemu would read "nbd:...", "json:{...}" and the like as protocols, not files.
        warn(`${name}: skipped, its source ${JSON.stringify(disk.source)} is not an absolute path`);
        continue;
      }
      const kind = disk.type === 'block' ? 'block-device' : 'file';
      const format = formats.get(disk.target);
      if (format !== undefined) targets.push(imageTarget(name, disk.source, kind, format, env));
      else if (disk.type === 'block') targets.push(fileTarget(name, disk.source, kind, 'vm-image'));
      else {
        const path = disk.source;
        targets.push({ name, kind, chunking: 'vm-image', open: (signal) => openDetectedImage(name, path, env, signal) });
      }
    }
  }
  return targets;
}

/** Rows of `virsh -q domblklist DOMAIN --details`: Type, Device, Target (no spaces), Source (the rest, may contain spaces). */
export function parseDomblklist(text: string): LibvirtDisk[] {
  const disks: LibvirtDisk[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || /^\s*-+\s*$/.test(line) || /^\s*Type\s+Device\s+Target\s+Source\s*$/.test(line)) continue;
    const m = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const source = m[4] === '-' || m[4] === '' ? undefined : m[4];
    disks.push(source === undefined ? { type: m[1], device: m[2], target: m[3] } : { type: m[1], device: m[2], target: m[3], source });
  }
  return disks;
}

/** Target device -> <driver type='...'> of each <disk> in a domain's XML. */
export function parseDiskFormats(xml: string): Map<string, string> {
  const formats = new Map<string, string>();
  for (const disk of xml.matchAll(/<disk\b[^>]*>([\s\S]*?)<\/disk>/g)) {
    const body = disk[1];
    const target = /<target\b[^>]*?\bdev=(['"])(.*?)\1/.exec(body);
    const driver = /<driver\b[^>]*?\btype=(['"])(.*?)\1/.exec(body);
    if (target && driver) formats.set(xmlDecode(target[2]), xmlDecode(driver[2]));
  }
  return formats;
}

function xmlDecode(text: string): string {
  return text.replace(/&(apos|quot|amp|lt|gt|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => {
    switch (e.toLowerCase()) {
      case 'apos':
        return "'";
      case 'quot':
        return '"';
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      default:
        return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function runVirsh(label: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('virsh', args, { env, maxBuffer: 64 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(String(stdout));
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new SourceToolMissingError(label, 'virsh', 'libvirt-clients'));
      const tail = String(stderr).slice(-STDERR_TAIL_BYTES).trim();
      const code = typeof err.code === 'number' ? err.code : null;
      reject(
        processFailure(
          label,
          'virsh',
          `virsh ${args.join(' ')} ${code !== null ? `exited with status ${code}` : 'failed'}`,
          { code, signal: (err.signal as NodeJS.Signals) ?? null },
          tail,
        ),
      );
    });
  });
}
