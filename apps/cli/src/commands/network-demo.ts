/**
 * `hoard demo` (the default): the real deployment in one process. Starts a media server
 * (fs storage, LevelDB catalog) on a free loopback port and an agent that connects to it
 * over HTTP, then backs up a generated VM image (a `file:` source) and a generated SQL
 * dump (a `cmd:` source streaming it) twice, restores both as they were at the first
 * backup (`--at`), checks them byte for byte, and prints what crossed the network.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
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

const MiB = 1 << 20;
const mib = (n: number): string => (n / MiB).toFixed(1);

export interface NetworkDemoRow {
  day: number;
  source: string;
  snapshot: string;
  read_bytes: number;
  sent_bytes: number;
  new_bytes: number;
  stored_bytes: number;
  seconds: number;
}

async function writeDay(series: DataSeries, day: number, path: string): Promise<void> {
  await pipeline(Readable.from(series.day(day)), createWriteStream(path));
}

async function hashOf(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const piece of stream) h.update(piece);
  return h.digest('hex');
}

export async function runNetworkDemo(options: { json: boolean; keep?: boolean; out: (s: string) => void }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-demo-'));
  const say = (line: string): void => {
    if (!options.json) options.out(line);
  };
  let server: MediaServer | undefined;
  let agent: AgentDaemon | undefined;
  try {
    const repo = await Repository.init(await FsObjectStore.open(join(dir, 'repo'), { create: true }));
    const started = await MediaServer.start({ repo, catalogDir: join(dir, 'catalog'), port: 0, logLevel: 'silent' });
    server = started.server;
    const admin = new HoardClient({ url: server.url, token: started.adminToken! });
    const { token } = await admin.json<{ token: string }>('POST', '/v1/agents', { name: 'kvm-01' });
    agent = new AgentDaemon({ server: server.url, token });
    await agent.start();
    const { vm, dump } = demoSeries();
    const image = join(dir, 'web-01.img');
    const sql = join(dir, 'shop.sql');
    const sources = [`file:${image}`, `cmd:cat ${sql}`];
    say(`hoard demo: media server ${server.url} (storage ${repo.location}), agent kvm-01 connected over HTTP`);
    say(`backing up a ${mib(vm.dayBytes(0))} MiB VM image and a ~${mib(dump.dayBytes(0))} MiB SQL dump stream, twice\n`);
    say('day  source                snapshot          read MiB  sent MiB  new MiB  stored MiB  seconds');
    const rows: NetworkDemoRow[] = [];
    const runs: RunView[] = [];
    for (let day = 0; day < 2; day++) {
      await writeDay(vm, day, image);
      await writeDay(dump, day, sql);
      let run = await admin.json<RunView>('POST', '/v1/runs', { agent: 'kvm-01', job: 'web-01', sources });
      while (run.state === 'queued' || run.state === 'running') run = await admin.json<RunView>('GET', `/v1/runs/${run.id}?wait=10`);
      if (run.state !== 'succeeded') throw new Error(`demo run ${run.id} ${run.state}: ${run.error}`);
      runs.push(run);
      for (const t of run.targets) {
        const row: NetworkDemoRow = {
          day,
          source: t.name === `file:${image}` || t.name === image ? 'web-01.img' : 'cat shop.sql',
          snapshot: t.snapshot!.id,
          read_bytes: t.totals!.bytesRead,
          sent_bytes: t.totals!.bytesSent,
          new_bytes: t.totals!.bytesNew,
          stored_bytes: t.totals!.bytesStored,
          seconds: t.durationMs / 1000,
        };
        rows.push(row);
        say(
          `${String(day).padStart(3)}  ${row.source.padEnd(20)}  ${row.snapshot}  ${mib(row.read_bytes).padStart(8)}  ${mib(row.sent_bytes).padStart(8)}  ${mib(row.new_bytes).padStart(7)}  ${mib(row.stored_bytes).padStart(10)}  ${row.seconds.toFixed(2).padStart(7)}`,
        );
      }
    }
    // Point in time: both sources as they were when the first run started.
    const at = new Date(Date.parse(runs[0]!.targets[runs[0]!.targets.length - 1]!.snapshot!.startedAt) + 1).toISOString();
    const restores = [];
    for (const [series, name, source] of [
      [vm, 'web-01.img', runs[0]!.targets[0]!.name],
      [dump, 'cat shop.sql', runs[0]!.targets[1]!.name],
    ] as const) {
      const res = await admin.request('GET', `/v1/jobs/web-01/restore?at=${encodeURIComponent(at)}&source=${encodeURIComponent(source)}`);
      const restoredHash = await hashOf(Readable.fromWeb(res.body as never));
      const identical = restoredHash === (await hashOf(series.day(0)));
      restores.push({ source: name, at, snapshot: res.headers.get('x-hoard-snapshot'), bytes: Number(res.headers.get('content-length')), identical });
    }
    const sent = rows.reduce((n, r) => n + r.sent_bytes, 0);
    const read = rows.reduce((n, r) => n + r.read_bytes, 0);
    const later = rows.filter((r) => r.day > 0);
    if (options.json) {
      options.out(JSON.stringify({ server: server.url, repository: options.keep ? repo.location : undefined, days: rows, restores, read_bytes: read, sent_bytes: sent }, null, 2));
    } else {
      say('');
      for (const r of restores) {
        say(`restore --at ${r.at} --source ${r.source}: snapshot ${r.snapshot}, ${mib(r.bytes)} MiB, ${r.identical ? 'byte-identical to day 0' : 'DIFFERENT from day 0'}`);
      }
      say(
        `\nover the network: ${mib(sent)} MiB sent for ${mib(read)} MiB read (${((100 * sent) / read).toFixed(1)}%); ` +
          `day 1 alone: ${mib(later.reduce((n, r) => n + r.sent_bytes, 0))} MiB sent for ${mib(later.reduce((n, r) => n + r.read_bytes, 0))} MiB read`,
      );
      if (options.keep) say(`\nkept in ${dir} (repository in repo/, catalog in catalog/)`);
    }
    if (restores.some((r) => !r.identical)) throw new Error('a point-in-time restore did not match the source');
  } finally {
    await agent?.close();
    await server?.close();
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}
