import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const hoard = fileURLToPath(new URL('../dist/main.js', import.meta.url));
/** The built CLI, for tests that spawn it themselves (a shell pipeline, a terminal). */
export const HOARD_MAIN = hoard;

/**
 * XDG_CONFIG_HOME for the CLI under test: a directory that does not exist, so a connection
 * saved by `hoard login` on this machine never changes what a test's command does.
 */
export const NO_CONFIG_HOME = join(tmpdir(), `hoard-test-no-config-${process.pid}`);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the built `hoard` with `args`; `stdin` is written to its standard input. */
export function hoardCli(args: string[], options: { stdin?: Buffer | Iterable<Buffer>; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [hoard, ...args], {
      env: { ...process.env, HOARD_PASSPHRASE: '', XDG_CONFIG_HOME: NO_CONFIG_HOME, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    child.stdin.on('error', () => undefined);
    if (options.stdin === undefined) child.stdin.end();
    else if (Buffer.isBuffer(options.stdin)) child.stdin.end(options.stdin);
    else {
      for (const piece of options.stdin) child.stdin.write(piece);
      child.stdin.end();
    }
  });
}

/** `size` bytes of deterministic, incompressible noise (xorshift32 from `seed`); `size` a multiple of 4. */
export function noise(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

/** A stack trace in user-facing output means an error was not handled as a user error. */
export const STACK_TRACE = /\n\s+at .*(\.js|\.ts):\d+/;

/** A tree as path -> kind, mode, mtime, size and content hash (symlinks by target): equal maps, equal trees. */
export async function describeTree(root: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = join(rel, name);
    const info = await lstat(join(root, path));
    if (info.isSymbolicLink()) out.set(path, `link -> ${await readlink(join(root, path))}`);
    else if (info.isDirectory()) {
      out.set(path, `dir ${(info.mode & 0o7777).toString(8)}`);
      for (const [k, v] of await describeTree(root, path)) out.set(k, v);
    } else {
      const hash = createHash('sha256')
        .update(await readFile(join(root, path)))
        .digest('hex');
      out.set(path, `file ${(info.mode & 0o7777).toString(8)} ${Math.floor(info.mtimeMs)} ${info.size} ${hash}`);
    }
  }
  return out;
}
