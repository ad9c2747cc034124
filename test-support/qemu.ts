/**
 * qemu-img / qemu-io helpers for tests: real qcow2 images with real data in the guest
 * view, and comparisons as qemu sees them. Needs qemu-utils (scripts/ensure-test-deps.sh).
 */
import { execFile } from 'node:child_process';

export interface GuestWrite {
  /** Byte offset in the guest's view of the disk. */
  offset: number;
  length: number;
  /** Byte value written (qemu-io `write -P`); 0 writes zeros. */
  pattern: number;
}

/** Runs a program; resolves to { code, stdout, stderr } whatever the exit status, rejects only when it cannot run. */
export function runTool(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`${command} could not run: ${err.message}`, { cause: err }));
      resolve({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function tool(command: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runTool(command, args);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with status ${code}: ${stderr.trim()}`);
  return stdout;
}

/**
 * Creates a qcow2 image of `virtualSize` bytes and writes `writes` into the guest view
 * with qemu-io (unwritten ranges read as zeros). With `backing`, an overlay on it.
 */
export async function makeQcow2(path: string, virtualSize: number, writes: GuestWrite[] = [], backing?: string): Promise<void> {
  await tool('qemu-img', ['create', '-q', '-f', 'qcow2', ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), path, String(virtualSize)]);
  if (writes.length) {
    const commands = writes.flatMap((w) => ['-c', `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`]);
    await tool('qemu-io', ['-f', 'qcow2', ...commands, path]);
  }
}

/** Converts an image (raw file, qcow2, ...) to qcow2; `compressed` uses qcow2's zlib clusters. */
export async function convertToQcow2(source: string, target: string, options: { sourceFormat?: string; compressed?: boolean } = {}): Promise<void> {
  await tool('qemu-img', [
    'convert',
    '-q',
    ...(options.sourceFormat ? ['-f', options.sourceFormat] : []),
    '-O',
    'qcow2',
    ...(options.compressed ? ['-c'] : []),
    source,
    target,
  ]);
}

/** The raw guest view of an image, written to `target` (what a restore must reproduce). */
export async function convertToRaw(source: string, target: string): Promise<void> {
  await tool('qemu-img', ['convert', '-q', '-O', 'raw', source, target]);
}

/** `qemu-img info --output=json` of an image. */
export async function qemuInfo(path: string): Promise<{ 'virtual-size': number; format: string; 'backing-filename'?: string }> {
  return JSON.parse(await tool('qemu-img', ['info', '--output=json', path])) as { 'virtual-size': number; format: string };
}

/**
 * `qemu-img compare A B`: true when the guest contents are identical (exit 0), false when
 * they differ (exit 1); throws on errors (exit 2+). Formats are probed, so a raw file
 * compares with a qcow2 image. With `strict`, a size difference counts as a difference.
 */
export async function qemuCompare(a: string, b: string, options: { strict?: boolean } = {}): Promise<boolean> {
  const { code, stdout, stderr } = await runTool('qemu-img', ['compare', ...(options.strict ? ['-s'] : []), a, b]);
  if (code === 0) return true;
  if (code === 1) return false;
  throw new Error(`qemu-img compare ${a} ${b} exited with status ${code}: ${(stderr || stdout).trim()}`);
}
