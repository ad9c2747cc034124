/**
 * A real S3 server for tests: a throwaway Ceph RADOS Gateway started by ceph-rgw.sh.
 * One is started per test run by global-setup.ts; tests reach it with `s3TestServer()`
 * (s3-test-env.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What a test needs to talk to the server. */
export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface RunningS3 extends S3TestServer {
  /** Directory holding the daemons' config, pid files and logs. */
  dir: string;
  stop(): Promise<void>;
}

/** What global-setup.ts hands to the tests: the server, or why there is none. */
export type ProvidedS3 = ({ ok: true } & S3TestServer) | { ok: false; error: string };

declare module 'vitest' {
  export interface ProvidedContext {
    s3: ProvidedS3;
  }
}

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'ceph-rgw.sh');
/** Every run's directory is `<tmpdir>/hoard-rgw-XXXXXX`, holding `owner.pid`. */
const DIR_PREFIX = 'hoard-rgw-';
/** A directory without owner.pid this old is debris, not a run that is just starting. */
const OWNERLESS_GRACE_MS = 60_000;

/**
 * Starts a Ceph RGW on free loopback ports, owned by this process: when this process
 * exits, however it exits, the script's watchdog stops the daemons. Call stop() to stop
 * them sooner.
 */
export async function startS3(): Promise<RunningS3> {
  await reapStale();
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  const [rgwPort, monPort] = await freePorts(2);
  const stop = async (): Promise<void> => {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [SCRIPT, 'start', dir, String(rgwPort), String(monPort), String(process.pid)], { timeout: 180_000 }));
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    const setupLog = await readFile(join(dir, 'log', 'setup.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`could not start Ceph RGW: ${stderr || (err as Error).message}${setupLog ? `\n${setupLog.split('\n').slice(-15).join('\n')}` : ''}`, {
      cause: err,
    });
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
  return { endpoint: fields.endpoint, accessKeyId: fields.access_key, secretAccessKey: fields.secret_key, dir, stop };
}

/**
 * Stops the daemons of earlier runs whose owner is gone (a run killed so hard that its
 * watchdog died too) and removes their directories. Runs of other live processes, such
 * as a concurrent test run, are left alone.
 */
async function reapStale(): Promise<void> {
  const base = tmpdir();
  for (const name of await readdir(base)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(base, name);
    const owner = Number.parseInt(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => ''), 10);
    if (Number.isNaN(owner)) {
      const age = await stat(dir).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age < OWNERLESS_GRACE_MS) continue;
    } else if (isAlive(owner)) {
      continue;
    }
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
