#!/usr/bin/env node
/**
 * Benchmark entry point: `pnpm bench <name> [--json] [--quick]`.
 * Tables go to stdout; progress goes to stderr so `--json` output stays parseable.
 */
import { backupCommand } from './backup-bench.js';
import { fullRun, quickRun, renderChunkerReport, runChunkerBench } from './chunker-bench.js';
import { peakRss, runIndexBench } from './index-bench.js';
import { machine } from './machine.js';
import { networkCommand } from './network-bench.js';
import { renderTable } from './table.js';

const USAGE = `usage: pnpm bench <benchmark> [--json] [--quick] [--scale]

benchmarks:
  chunker   FastCDC/fixed throughput, BLAKE3 vs SHA-256, fingerprint index, dedup ratios
  index     the media server's fingerprint index alone (3 value words; 10M entries, 1M
            with --quick, 50M with --scale: ~1.6 GB of index plus as much again for the
            random-read floor, a few minutes), lookups against that floor
  backup    hoard vs restic vs borg end to end on the VM-image and dump series: backup time
            per day, repository size, peak RSS, restore (local, through a media server,
            from S3) and the machine's floors (installs borgbackup and Ceph with apt-get
            when missing, as root; restic comes from Debian unstable)
  network   agent and media server on loopback (separate processes): bytes on the wire per
            day vs new compressed bytes, throughput vs the embedded path, server RSS per
            million chunks indexed, N agents at once

options:
  --json    print one JSON object (figures + machine) instead of tables
  --quick   small data sizes (a smoke run, minutes -> seconds); figures are not comparable

backup options:
  --tools LIST  comma-separated subset of hoard,restic,borg (default: all three)
  --encrypt     encrypted repositories for hoard and borg too (restic always encrypts)
  --dir DIR     where the work directory goes (default: the OS temp dir; a full run
                needs ~15 GiB)
  --keep        keep the work directory (data, repositories) afterwards
  --restic PATH run this restic binary (e.g. /usr/bin/restic, Debian's 0.14) instead of
                Debian unstable's, which is fetched with apt-get download into
                ~/.cache/hoard-bench on first use
  --no-s3       skip the restores from a Ceph RGW (installed with apt-get when missing,
                as root)
  --series S    all (default), generated (the VM-image and dump series) or real (a tar of
                part of /usr and a pg_dump of a pgbench database changed by pgbench)

network options (default: 1 GiB image + 256 MiB dump x 5 days, 4 agents x 512 MiB;
--quick: 128 MiB + 32 MiB x 3 days, 4 agents x 64 MiB):
  --image-mib N        VM image size           --dump-mib N    dump size on day 0
  --days N             days of each series     --seed N        data seed (default 1)
  --agents N           agents at once (0: skip that phase)
  --agent-image-mib N  each concurrent agent's image size
  --dir DIR, --keep    as for backup
`;

/** The media server's StoreIndex: pack ordinal, offset, stored length | codec. */
const SERVER_INDEX_VALUE_WORDS = 3;
/** `bench index --scale`: the issue's scale run. */
const SCALE_INDEX_ENTRIES = 50_000_000;

async function main(argv: string[]): Promise<number> {
  const at = argv.findIndex((a) => !a.startsWith('--'));
  if (argv[at] === 'backup') return backupCommand([...argv.slice(0, at), ...argv.slice(at + 1)], USAGE);
  if (argv[at] === 'network') return networkCommand([...argv.slice(0, at), ...argv.slice(at + 1)], USAGE);
  const args = argv.filter((a) => !a.startsWith('--'));
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const unknown = [...flags].filter((f) => !['--json', '--quick', '--help', ...(args[0] === 'index' ? ['--scale'] : [])].includes(f));
  if (flags.has('--help') || args.length === 0) {
    process.stdout.write(USAGE);
    return args.length === 0 && !flags.has('--help') ? 2 : 0;
  }
  if (unknown.length > 0 || args.length !== 1 || !['chunker', 'index'].includes(args[0])) {
    process.stderr.write(`bench: unknown ${unknown.length > 0 ? `option ${unknown[0]}` : `benchmark "${args.join(' ')}"`}\n\n${USAGE}`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const preset = flags.has('--quick') ? quickRun : fullRun;
  if (args[0] === 'index') {
    const entries = flags.has('--scale') ? SCALE_INDEX_ENTRIES : preset.indexEntries;
    const started = Date.now();
    const figures = await runIndexBench({ entries, valueWords: SERVER_INDEX_VALUE_WORDS, log });
    const result = {
      benchmark: 'index',
      index_entries: entries,
      ...figures,
      peak_rss_bytes: peakRss() ?? null,
      seconds: Math.round((Date.now() - started) / 1000),
      machine: machine(),
    };
    if (flags.has('--json')) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        `${renderTable(
          ['measure', 'value'],
          Object.entries(result)
            .filter(([k]) => k !== 'machine' && k !== 'benchmark')
            .map(([k, v]) => [k, String(v)]),
        )}\n`,
      );
    return 0;
  }
  const started = Date.now();
  const result = await runChunkerBench({ ...preset, log });
  const seconds = Math.round((Date.now() - started) / 1000);
  const out = { benchmark: 'chunker', quick: flags.has('--quick'), ...result, machine: machine(), seconds };
  if (flags.has('--json')) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(`${renderChunkerReport(out)}\n\nmachine: ${JSON.stringify(out.machine)}; ${seconds} s\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
