/**
 * The S3 server of `pnpm bench backup`: the test harness's throwaway Ceph RADOS Gateway
 * (`test-support/ceph-rgw.sh`: one monitor, one memstore OSD holding objects in RAM, one
 * radosgw, all on 127.0.0.1), started and stopped the way test-support/s3-server.ts does.
 * The Debian packages it needs are installed with apt-get when missing and running as root.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, aptInstall, findOnPath } from './peers.js';

const run = promisify(execFile);

export const RGW_SCRIPT = join(REPO_ROOT, 'test-support/ceph-rgw.sh');

/** binary -> Debian package, as scripts/ensure-test-deps.sh lists them for the S3 tests. */
const RGW_DEPS: Array<[string, string]> = [
  ['radosgw', 'radosgw'],
  ['ceph-mon', 'ceph-mon'],
  ['ceph-osd', 'ceph-osd'],
  ['ceph', 'ceph-common'],
  ['radosgw-admin', 'ceph-common'],
  ['monmaptool', 'ceph-base'],
  ['uuidgen', 'uuid-runtime'],
  ['curl', 'curl'],
];

/** The Debian packages missing to run the RGW (each once). */
export function missingRgwPackages(find: (bin: string) => string | null = findOnPath): string[] {
  return [...new Set(RGW_DEPS.filter(([bin]) => find(bin) === null).map(([, pkg]) => pkg))];
}

/** Installs what the RGW needs when it is missing. Returns null when ready, else why not. */
export function ensureRgwInstalled(log: (l: string) => void): string | null {
  const missing = missingRgwPackages();
  if (missing.length === 0) return null;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return `Ceph RGW not installed (missing ${missing.join(' ')}; as root: apt-get install -y --no-install-recommends ${missing.join(' ')})`;
  try {
    aptInstall(missing, log);
  } catch (err) {
    return `could not install Ceph RGW: ${(err as Error).message.split('\n')[0]}`;
  }
  const still = missingRgwPackages();
  return still.length === 0 ? null : `still missing after apt-get install: ${still.join(' ')}`;
}

export interface RunningRgw {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

/**
 * Starts the RGW on free loopback ports, owned by this process (the script's watchdog
 * stops it and removes its directory once this process is gone, however it ends). Its
 * directory is under the OS temp dir, not the work directory: the daemons' unix socket
 * paths must stay short.
 */
export async function startRgw(): Promise<RunningRgw> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-bench-rgw-'));
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  const [port, monPort] = await freePorts(2);
  const stop = async (): Promise<void> => {
    await run('bash', [RGW_SCRIPT, 'stop', dir]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [RGW_SCRIPT, 'start', dir, String(port), String(monPort), String(process.pid)], { timeout: 180_000 }));
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    const setupLog = await readFile(join(dir, 'log', 'setup.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`could not start Ceph RGW: ${stderr || (err as Error).message}${setupLog ? `\n${setupLog.split('\n').slice(-8).join('\n')}` : ''}`);
  }
  const fields = Object.fromEntries(
    stdout
      .trim()
      .split(/\s+/)
      .map((pair) => pair.split('=', 2) as [string, string]),
  );
  if (!fields.endpoint || !fields.access_key || !fields.secret_key) {
    await stop();
    throw new Error(`ceph-rgw.sh printed no endpoint: ${stdout}`);
  }
  return { endpoint: fields.endpoint, port, accessKeyId: fields.access_key, secretAccessKey: fields.secret_key, stop };
}

/** Ports the kernel says are free now (all held at once, so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
