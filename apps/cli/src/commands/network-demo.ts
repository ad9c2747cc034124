/**
 * `hoard demo` (the default): the real deployment in one process. Starts a media server
 * (fs storage, LevelDB catalog) on a free loopback port and an agent that connects to it
 * over HTTP, then backs up a generated VM image (a `file:` source) and a SQL dump twice,
 * restores both as they were at the first backup (`--at`), checks them, and prints what
 * crossed the network.
 *
 * The dump is a real one when PostgreSQL is installed: a throwaway cluster (demo-postgres.ts)
 * whose `shop` database is backed up through the agent's `postgres://` source, changed, backed
 * up again, and restored with pg_restore into a fresh database whose rows are compared with
 * day 0's. Without PostgreSQL (or with HOARD_DEMO_NO_POSTGRES=1) it is a generated SQL dump
 * (a `cmd:` source streaming it), checked byte for byte.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { AgentDaemon } from '@hoard/agent';
import { demoSeries, type DataSeries } from '@hoard/bench-data';
import { MediaServer } from '@hoard/media-server';
import { HoardClient, type RunView } from '@hoard/protocol';
import { FsObjectStore, Repository } from '@hoard/repository';
import { findPostgresBinDir, startDemoPostgres, type DatabaseChecksum, type DemoPostgres } from './demo-postgres.js';

const MiB = 1 << 20;
const mib = (n: number): string => (n / MiB).toFixed(1);

export interface NetworkDemoRow {
  day: number;
  source: string;
  snapshot: string;
  readBytes: number;
  sentBytes: number;
  newBytes: number;
  storedBytes: number;
  seconds: number;
}

export interface NetworkDemoRestore {
  source: string;
  at: string;
  snapshot: string | null;
  bytes: number;
  /** sha256: the restored stream against the generator's; pg_restore: the restored database's rows against day 0's. */
  check: 'sha256' | 'pg_restore';
  identical: boolean;
  /** pg_restore only (null for sha256): tables and rows restored, and the rows at day 0 and day 1. */
  tables: number | null;
  rows: number | null;
  day0Rows: number | null;
  day1Rows: number | null;
}

async function writeDay(series: DataSeries, day: number, path: string): Promise<void> {
  await pipeline(Readable.from(series.day(day)), createWriteStream(path));
}

async function hashOf(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const piece of stream) h.update(piece);
  return h.digest('hex');
}

type DumpChoice = { source: 'postgresql'; pg: DemoPostgres; note: string } | { source: 'generated'; note: string };

/**
 * The dump the demo backs up: a real PostgreSQL database when the server binaries are
 * installed (and HOARD_DEMO_NO_POSTGRES is unset), else the generated SQL stream. Starting
 * PostgreSQL may fail (no `postgres` user as root, an unwritable tmpdir, ...): the demo then
 * falls back too, and says why.
 */
async function chooseDump(onStarted: (pg: DemoPostgres) => void): Promise<DumpChoice> {
  const off = process.env.HOARD_DEMO_NO_POSTGRES;
  if (off !== undefined && off !== '' && off !== '0') return { source: 'generated', note: 'HOARD_DEMO_NO_POSTGRES is set' };
  const binDir = await findPostgresBinDir();
  if (binDir === undefined) return { source: 'generated', note: 'PostgreSQL not found' };
  let pg: DemoPostgres | undefined;
  try {
    pg = await startDemoPostgres(binDir);
    onStarted(pg);
    await pg.load();
    return { source: 'postgresql', pg, note: `PostgreSQL ${pg.version}, database shop on 127.0.0.1:${pg.port}` };
  } catch (err) {
    await pg?.stop();
    return { source: 'generated', note: `PostgreSQL ${pg ? 'failed' : 'did not start'} (${(err as Error).message})` };
  }
}

export async function runNetworkDemo(options: { json: boolean; keep?: boolean; report?: string; out: (s: string) => void }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-demo-'));
  const say = (line: string): void => {
    if (!options.json) options.out(line);
  };
  let server: MediaServer | undefined;
  let agent: AgentDaemon | undefined;
  let pg: DemoPostgres | undefined;
  // Ctrl-C: the PostgreSQL cluster runs in its own session, so stop it (and remove the temporary directories) here.
  const onSignal = (signal: NodeJS.Signals): void => {
    pg?.stopSync();
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`hoard demo: interrupted${pg ? '; stopped and removed the demo PostgreSQL cluster' : ''}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dump = await chooseDump((started) => (pg = started));
    pg = dump.source === 'postgresql' ? dump.pg : undefined;
    const repo = await Repository.init(await FsObjectStore.open(join(dir, 'repo'), { create: true }));
    const started = await MediaServer.start({ repo, catalogDir: join(dir, 'catalog'), port: 0, logLevel: 'silent' });
    server = started.server;
    const admin = new HoardClient({ url: server.url, token: started.adminToken! });
    const { token } = await admin.api.addAgent({ body: { name: 'kvm-01' } });
    // With PostgreSQL, the agent runs the pg_dump of the server's own version (first on its PATH).
    agent = new AgentDaemon({ server: server.url, token, env: pg?.agentEnv });
    await agent.start();
    const { vm, dump: generated } = demoSeries();
    const image = join(dir, 'web-01.img');
    const sql = join(dir, 'shop.sql');
    const dumpLabel = pg ? 'pg_dump shop' : 'cat shop.sql';
    const sources = [`file:${image}`, pg ? pg.sourceUrl : `cmd:cat ${sql}`];
    say(`hoard demo: media server ${server.url} (storage ${repo.location}), agent kvm-01 connected over HTTP`);
    if (pg) {
      say(
        `SQL dump: a real pg_dump (custom format) of database shop on a throwaway PostgreSQL ${pg.version} cluster at 127.0.0.1:${pg.port}, removed at the end`,
      );
      say(
        `backing up a ${mib(vm.dayBytes(0))} MiB VM image and database shop (20,000 customers, 2,000 products, 100,000 orders), twice; rows change in between\n`,
      );
    } else {
      say(`${dump.note}: using a generated SQL dump stream`);
      say(`backing up a ${mib(vm.dayBytes(0))} MiB VM image and a ~${mib(generated.dayBytes(0))} MiB SQL dump stream, twice\n`);
    }
    say('day  source                snapshot          read MiB  sent MiB  new MiB  stored MiB  seconds');
    const rows: NetworkDemoRow[] = [];
    const runs: RunView[] = [];
    const checksums: DatabaseChecksum[] = [];
    for (let day = 0; day < 2; day++) {
      await writeDay(vm, day, image);
      if (pg) {
        if (day > 0) await pg.change();
        checksums.push(await pg.checksum());
      } else {
        await writeDay(generated, day, sql);
      }
      let run = await admin.api.createRun({ body: { agent: 'kvm-01', job: 'web-01', sources } });
      while (run.state === 'queued' || run.state === 'running') run = await admin.api.getRun({ params: { id: run.id }, query: { wait: 10 } });
      if (run.state !== 'succeeded') throw new Error(`demo run ${run.id} ${run.state}: ${run.error}`);
      runs.push(run);
      for (const t of run.targets) {
        const row: NetworkDemoRow = {
          day,
          source: t.name === `file:${image}` || t.name === image ? 'web-01.img' : dumpLabel,
          snapshot: t.snapshot!.id,
          readBytes: t.totals!.bytesRead,
          sentBytes: t.totals!.bytesSent,
          newBytes: t.totals!.bytesNew,
          storedBytes: t.totals!.bytesStored,
          seconds: t.durationMs / 1000,
        };
        rows.push(row);
        say(
          `${String(day).padStart(3)}  ${row.source.padEnd(20)}  ${row.snapshot}  ${mib(row.readBytes).padStart(8)}  ${mib(row.sentBytes).padStart(8)}  ${mib(row.newBytes).padStart(7)}  ${mib(row.storedBytes).padStart(10)}  ${row.seconds.toFixed(2).padStart(7)}`,
        );
      }
    }
    // Point in time: both sources as they were when the first run started.
    const at = new Date(Date.parse(runs[0]!.targets[runs[0]!.targets.length - 1]!.snapshot!.startedAt) + 1).toISOString();
    const restores: NetworkDemoRestore[] = [];
    for (const [name, source] of [
      ['web-01.img', runs[0]!.targets[0]!.name],
      [dumpLabel, runs[0]!.targets[1]!.name],
    ] as const) {
      const res = await admin.request('GET', `/v1/jobs/web-01/restore?at=${encodeURIComponent(at)}&source=${encodeURIComponent(source)}`);
      const restore = { source: name, at, snapshot: res.headers.get('x-hoard-snapshot'), bytes: Number(res.headers.get('content-length')) };
      const body = Readable.fromWeb(res.body as never);
      if (pg && name === dumpLabel) {
        // The real check for a database: restore the dump into a fresh database and compare its rows with day 0's.
        await pg.restore('shop_restored', body);
        const got = await pg.checksum('shop_restored');
        restores.push({
          ...restore,
          check: 'pg_restore',
          identical: got.md5 === checksums[0]!.md5,
          tables: got.tables,
          rows: got.rows,
          day0Rows: checksums[0]!.rows,
          day1Rows: checksums[1]!.rows,
        });
      } else {
        const series = name === 'web-01.img' ? vm : generated;
        restores.push({
          ...restore,
          check: 'sha256',
          identical: (await hashOf(body)) === (await hashOf(series.day(0))),
          tables: null,
          rows: null,
          day0Rows: null,
          day1Rows: null,
        });
      }
    }
    const sent = rows.reduce((n, r) => n + r.sentBytes, 0);
    const read = rows.reduce((n, r) => n + r.readBytes, 0);
    const later = rows.filter((r) => r.day > 0);
    if (options.json) {
      options.out(
        JSON.stringify(
          {
            server: server.url,
            repository: options.keep ? repo.location : null,
            dumpSource: dump.source,
            dumpNote: dump.note,
            days: rows,
            restores,
            readBytes: read,
            sentBytes: sent,
          },
          null,
          2,
        ),
      );
    } else {
      say('');
      for (const r of restores) {
        const verdict =
          r.check === 'pg_restore'
            ? `pg_restore into a fresh database: ${r.tables} tables, ${r.rows!.toLocaleString('en-US')} rows, ${r.identical ? 'same rows as at day 0' : 'DIFFERENT from day 0'} (day 1 had ${r.day1Rows!.toLocaleString('en-US')})`
            : r.identical
              ? 'byte-identical to day 0'
              : 'DIFFERENT from day 0';
        say(`restore --at ${r.at} --source ${r.source}: snapshot ${r.snapshot}, ${mib(r.bytes)} MiB, ${verdict}`);
      }
      say(
        `\nover the network: ${mib(sent)} MiB sent for ${mib(read)} MiB read (${((100 * sent) / read).toFixed(1)}%); ` +
          `day 1 alone: ${mib(later.reduce((n, r) => n + r.sentBytes, 0))} MiB sent for ${mib(later.reduce((n, r) => n + r.readBytes, 0))} MiB read`,
      );
      if (options.keep) say(`\nkept in ${dir} (repository in repo/, catalog in catalog/)`);
    }
    if (restores.some((r) => !r.identical)) throw new Error('a point-in-time restore did not match the source');
    if (options.report !== undefined) await writeSampleReport(admin, options.report, say);
    if (options.keep && !options.json) {
      // The web console (docs/console.md) of the demo's server: it runs until Ctrl-C.
      say(`\nweb console: ${server.url}/ui/  (sign in with the admin token ${started.adminToken})`);
      say('the media server and agent keep running; press Ctrl-C to stop them (the directory stays)');
      await new Promise<never>(() => undefined);
    }
  } finally {
    await agent?.close();
    await server?.close();
    await pg?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `--report DIR`: a restore drill of every job, then the backup-validity report of the
 * demo's server as DIR/validity-report.html and .pdf (the PDF needs a headless chromium;
 * without one the HTML is still written and the reason printed).
 */
async function writeSampleReport(admin: HoardClient, dir: string, say: (line: string) => void): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { renderValidityHtml } = await import('@hoard/media-server');
  const { writePdf } = await import('../report/validity-pdf.js');
  await mkdir(dir, { recursive: true });
  await admin.api.runDrills({ body: {} });
  const html = renderValidityHtml(await admin.api.validityReport({ query: { since: '7d' } }));
  await writeFile(join(dir, 'validity-report.html'), html);
  say(`validity report: ${join(dir, 'validity-report.html')}`);
  try {
    await writePdf(html, join(dir, 'validity-report.pdf'));
    say(`validity report: ${join(dir, 'validity-report.pdf')}`);
  } catch (err) {
    say(`validity report: no PDF (${(err as Error).message})`);
  }
}
