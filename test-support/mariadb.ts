/**
 * A real MariaDB server for tests: `mariadb-install-db` into
 * `<tmpdir>/hoard-mariadb-XXXXXX/data`, then `mariadbd` on a free loopback port with its
 * socket in the same directory (as root, it runs as the `mysql` OS user). root@localhost
 * (socket, no password) is for the harness; the `url` uses a user `hoard` with a
 * password over TCP on 127.0.0.1, the way a backup job connects. Starts in about a
 * second. Cleanup works as in postgres.ts: stop(), else the watchdog, else the next
 * start reaps directories whose owner is gone.
 */
import { spawn } from 'node:child_process';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, reapStale, run, runWithInput, shellQuote, startWatchdog, stopWatchdog, writeCleanupScript } from './postgres.js';

export interface RunningMariadb {
  /** `mysql://hoard:PASSWORD@127.0.0.1:PORT` (no database: see urlFor). */
  url: string;
  /** `mysql://hoard:PASSWORD@127.0.0.1:PORT/DB`. */
  urlFor(db: string): string;
  port: number;
  user: string;
  password: string;
  dir: string;
  dataDir: string;
  socket: string;
  /** Runs SQL (text, or the bytes of a dump) through the `mariadb` client as root over the socket; returns tab-separated rows without column names. */
  mysql(sql: string | Buffer, db?: string): Promise<string>;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const DIR_PREFIX = 'hoard-mariadb-';
const USER = 'hoard';
const PASSWORD = 'hoard-test-pw';
/** Small InnoDB files: the defaults allocate ~100 MiB of redo log per server. */
const SERVER_OPTIONS = ['--innodb-log-file-size=8M', '--innodb-buffer-pool-size=32M', '--skip-name-resolve'];

export async function startMariadb(): Promise<RunningMariadb> {
  await reapStale(DIR_PREFIX);
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const pidFile = join(dir, 'mysqld.pid');
  const errorLog = join(dir, 'error.log');
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  await writeCleanupScript(dir, [
    `pid=$(cat ${shellQuote(pidFile)} 2>/dev/null || true)`,
    // Throwaway data: no clean shutdown needed.
    `[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true`,
  ]);
  if (asRoot) await chown(dir, ...(await mysqlIds()));
  const watchdog = startWatchdog(dir);
  let serverPid: number | undefined;

  const stop = async (): Promise<void> => {
    stopWatchdog(watchdog);
    if (serverPid !== undefined) {
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await run('sh', [join(dir, 'cleanup.sh')]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const userOption = asRoot ? ['--user=mysql'] : [];
    const installArgs = [
      '--no-defaults',
      `--datadir=${dataDir}`,
      ...userOption,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      ...SERVER_OPTIONS,
    ];
    try {
      await run('mariadb-install-db', installArgs, { timeout: 120_000 });
    } catch (first) {
      // Seen once on a loaded machine (its bootstrap lost a temporary table in /tmp): one
      // more try into an empty data directory before the test fails.
      await rm(dataDir, { recursive: true, force: true });
      await run('mariadb-install-db', installArgs, { timeout: 120_000 }).catch((second: Error) => {
        throw new Error(`${second.message} (a first attempt failed too: ${(first as Error).message})`, { cause: second });
      });
    }
    const port = await freePort();
    const server = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${pidFile}`,
        `--log-error=${errorLog}`,
        ...userOption,
        '--skip-log-bin',
        '--performance-schema=OFF',
        '--innodb-flush-log-at-trx-commit=0',
        ...SERVER_OPTIONS,
      ],
      { detached: true, stdio: 'ignore' },
    );
    server.on('error', () => {});
    server.unref();
    serverPid = server.pid;
    let exited: string | undefined;
    server.once('exit', (code, signal) => {
      exited = code !== null ? `exited with status ${code}` : `was killed by ${signal}`;
    });

    const mysql = (sql: string | Buffer, db?: string): Promise<string> =>
      runWithInput('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '-N', '-B', ...(db ? [db] : [])], sql);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited) throw new Error(`mariadbd ${exited}`);
      if (
        await mysql('SELECT 1').then(
          () => true,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) throw new Error('mariadbd did not accept connections within 60 s');
      await sleep(50);
    }
    await mysql(`CREATE USER '${USER}'@'%' IDENTIFIED BY '${PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'%' WITH GRANT OPTION;`);
    const url = `mysql://${USER}:${PASSWORD}@127.0.0.1:${port}`;
    return {
      url,
      urlFor: (db) => `${url}/${encodeURIComponent(db)}`,
      port,
      user: USER,
      password: PASSWORD,
      dir,
      dataDir,
      socket,
      mysql,
      createDatabase: async (name) => {
        await mysql(`CREATE DATABASE \`${name.replace(/`/g, '``')}\``);
      },
      stop,
    };
  } catch (err) {
    const log = await readFile(errorLog, 'utf8').catch(() => '');
    await stop();
    throw new Error(`could not start MariaDB: ${(err as Error).message}${log ? `\nerror log:\n${log.split('\n').slice(-15).join('\n')}` : ''}`, { cause: err });
  }
}

async function mysqlIds(): Promise<[number, number]> {
  const uid = Number((await run('id', ['-u', 'mysql'])).trim());
  const gid = Number((await run('id', ['-g', 'mysql'])).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no mysql OS user; install mariadb-server (scripts/ensure-test-deps.sh does)');
  return [uid, gid];
}
