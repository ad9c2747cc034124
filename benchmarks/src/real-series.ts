/**
 * The real-data series of `pnpm bench backup` (beside the generated ones): bytes this
 * machine already has, so that stored-bytes and time figures are not only measured on
 * data we generated.
 *
 * - usr_tar: a tar stream (GNU tar, `--null -T -`) of a bounded part of /usr: the regular
 *   files of a sorted walk of /usr up to `budgetBytes`. Between days a share of the files
 *   is swapped for others from further along the walk, as package removals and installs
 *   change an installed system (the tar stream is in path order, so changes land in place,
 *   and insertions shift everything after them).
 * - pgbench_dump: `pg_dump --format=custom --compress=0` (what the agent runs for a
 *   postgres:// source) of a pgbench database (`pgbench -i -s SCALE`) in a PostgreSQL
 *   cluster of its own (initdb into a temp directory, unix socket only); before each later
 *   day `pgbench -n -c 2 -j 2 -t TX --random-seed=SEED+DAY` runs real TPC-B-like
 *   transactions (updates of accounts, tellers and branches, inserts into history).
 *
 * A day's bytes are what the tools see; they are not byte-for-byte reproducible across
 * runs (pgbench's transactions interleave; /usr differs between machines), which is why
 * every tool backs up the same materialized file in one run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chown, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What runSeries needs of a series: generated (`@hoard/bench-data`) or real. */
export interface BenchSeries {
  /** The hoard chunking preset the series' file is backed up with (`--chunking`). */
  readonly name: string;
  readonly days: number;
  day(day: number, pieceBytes?: number): AsyncIterable<Uint8Array>;
}

export interface RealSeries extends BenchSeries {
  /** One line for the report: what the bytes are. */
  readonly describe: string;
  /** Frees what the series started (the PostgreSQL cluster). */
  close(): Promise<void>;
}

const MiB = 1 << 20;

/** The stdout of `command` as pieces; rejects with its stderr tail when it exits non-zero. */
async function* spawnStream(command: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv }): AsyncIterable<Uint8Array> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  child.stdin.end(options.input ?? '');
  for await (const piece of child.stdout) yield piece as Buffer;
  const code = await exited;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`);
}

function runChecked(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 64 * MiB });
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (exit ${r.status}): ${`${r.stderr ?? ''}${r.error?.message ?? ''}`.trim().slice(-1500)}`);
  return r.stdout;
}

/** Regular files under `root`, in sorted path order, until `limitBytes` of them. */
async function walkFiles(root: string, limitBytes: number): Promise<{ path: string; bytes: number }[]> {
  const out: { path: string; bytes: number }[] = [];
  let total = 0;
  const visit = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return; // unreadable: not part of the series
    }
    for (const name of names) {
      if (total >= limitBytes) return;
      const path = join(dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info) continue;
      if (info.isDirectory()) await visit(path);
      else if (info.isFile() && info.size > 0) {
        out.push({ path, bytes: info.size });
        total += info.size;
      }
    }
  };
  await visit(root);
  return out;
}

/** A stable pseudo-random number in [0, 1) for a path and a day. */
function draw(path: string, day: number, seed: number): number {
  return createHash('sha256').update(`${seed}:${day}:${path}`).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * A tar stream of a bounded part of `root` (default /usr). Day 0: the first files of a
 * sorted walk up to `budgetBytes`. Each later day drops `churn` of the day before's files
 * (picked by a hash of path, day and seed) and adds as many bytes of files from the rest
 * of the walk.
 */
export async function usrTarSeries(o: { budgetBytes: number; days: number; seed: number; churn?: number; root?: string }): Promise<RealSeries> {
  const root = o.root ?? '/usr';
  const churn = o.churn ?? 0.03;
  // The walk goes beyond the budget: later days take files from the rest.
  const pool = await walkFiles(root, o.budgetBytes * 2);
  if (pool.length === 0) throw new Error(`no readable files under ${root} for the usr_tar series`);
  const sets: string[][] = [];
  let chosen = new Set<number>();
  let next = 0;
  let bytes = 0;
  while (next < pool.length && bytes < o.budgetBytes) {
    chosen.add(next);
    bytes += pool[next++]!.bytes;
  }
  for (let day = 0; day < o.days; day++) {
    if (day > 0) {
      const kept = new Set<number>();
      let dropped = 0;
      for (const i of chosen) {
        if (draw(pool[i]!.path, day, o.seed) < churn) dropped += pool[i]!.bytes;
        else kept.add(i);
      }
      for (let added = 0; added < dropped && next < pool.length; next++) {
        kept.add(next);
        added += pool[next]!.bytes;
      }
      chosen = kept;
    }
    sets.push([...chosen].sort((a, b) => a - b).map((i) => pool[i]!.path.replace(/^\//, '')));
  }
  return {
    name: 'file',
    days: o.days,
    describe: `tar of ${sets[0]!.length} files (${(bytes / MiB).toFixed(0)} MiB) of a sorted walk of ${root}; ${(churn * 100).toFixed(0)} % of the files swapped for others each day`,
    day: (day: number) => spawnStream('tar', ['-C', '/', '--no-recursion', '--null', '-T', '-', '-cf', '-'], { input: `${sets[day]!.join('\0')}\0` }),
    close: async () => {},
  };
}

/** The newest /usr/lib/postgresql/NN/bin with initdb, pg_ctl, pgbench and pg_dump. */
function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = runChecked('ls', [base])
      .split('\n')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    // none
  }
  for (const v of versions) {
    const dir = join(base, v, 'bin');
    if (['initdb', 'pg_ctl', 'pgbench', 'pg_dump'].every((p) => spawnSync('test', ['-x', join(dir, p)]).status === 0)) return dir;
  }
  throw new Error(`the pgbench_dump series needs PostgreSQL's server programs (initdb, pg_ctl, pgbench) under ${base}/NN/bin: apt-get install postgresql`);
}

/**
 * A pgbench database of about `scale` x 10 MiB of dump in a private cluster; day 0 is the
 * freshly initialised database, each later day follows `transactions` pgbench transactions.
 */
export async function pgbenchDumpSeries(o: { scale: number; transactions: number; days: number; seed: number; log: (l: string) => void }): Promise<RealSeries> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'hoard-bench-pg-'));
  // initdb and the server refuse root: as root they run as the postgres OS user, which owns the directory.
  const serverSide = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  const data = join(dir, 'data');
  const port = '5499';
  const client = ['-h', dir, '-p', port, '-U', 'postgres'];
  const env = { ...process.env, PGDATABASE: undefined, PGHOST: undefined, PGPORT: undefined, PGUSER: undefined, PGPASSWORD: undefined };
  let started = false;
  const stop = async () => {
    if (started) spawnSync(...serverSide('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w']), { stdio: 'ignore' });
    started = false;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (asRoot) {
      const ids = runChecked('id', ['-u', 'postgres']).trim();
      const gid = runChecked('id', ['-g', 'postgres']).trim();
      await chown(dir, Number(ids), Number(gid));
    }
    runChecked(...serverSide('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']));
    const opts = `-c listen_addresses='' -c unix_socket_directories='${dir}' -p ${port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    runChecked(...serverSide('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o', opts]));
    started = true;
    const t0 = Date.now();
    runChecked(join(bin, 'createdb'), [...client, 'bench'], env);
    runChecked(join(bin, 'pgbench'), [...client, '-i', '-q', '-s', String(o.scale), 'bench'], env);
    o.log(`pgbench_dump: pgbench -i -s ${o.scale} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    await stop();
    throw err;
  }
  let ranThrough = 0;
  return {
    name: 'db-dump',
    days: o.days,
    describe: `pg_dump --format=custom --compress=0 of a pgbench -s ${o.scale} database; ${o.transactions} pgbench transactions (-c 2 -j 2) before each later day`,
    day: (day: number) => {
      const transact = () => {
        // Days are materialized in order; each runs the transactions of the days since the last.
        for (; ranThrough < day; ranThrough++) {
          const t0 = Date.now();
          const perClient = Math.ceil(o.transactions / 2);
          runChecked(
            join(bin, 'pgbench'),
            [...client, '-n', '-c', '2', '-j', '2', '-t', String(perClient), `--random-seed=${o.seed + ranThrough + 1}`, 'bench'],
            env,
          );
          o.log(`pgbench_dump: ${perClient * 2} transactions for day ${ranThrough + 1} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        }
      };
      return (async function* () {
        transact();
        yield* spawnStream(join(bin, 'pg_dump'), [...client, '--format=custom', '--compress=0', '--no-password', 'bench'], { env });
      })();
    },
    close: stop,
  };
}
