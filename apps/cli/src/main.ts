#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Argument, Command, CommanderError, Option } from 'commander';
import { EXIT_DAMAGED, EXIT_USAGE, UsageError } from './errors.js';
import { resolveTarget, serverOption, tokenFileOption, tokenOption } from './server-client.js';
import { registerNotifyCommands } from './notify-commands.js';
import { registerAgentRotate, registerTokenCommands } from './token-commands.js';
import { checkSnapshotId, checkStdoutTarget } from './option-checks.js';
import { setFlagsFromString } from 'node:v8';

/*
 * V8 grows the young generation to 16 MiB x 2 under a backup's allocation rate; holding it
 * saves 20-35 MiB of peak RSS at no CPU cost we could measure (benchmarks/README.md,
 * "Memory (issue 14, item 2)").
 * --max-semi-space-size is read only when a heap is made, the growth factor at each
 * collection: set here, before any command's modules load, it holds the young generation
 * at its starting size in this thread and in every worker. Each new isolate's heap setup
 * puts the factor back to 2 (V8's ConfigureHeap), so it is set again once a worker runs.
 * A young-generation option of the caller's own (NODE_OPTIONS=--max-semi-space-size=16) wins.
 */
if (!`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`.includes('semi-space')) {
  const holdYoungGeneration = () => setFlagsFromString('--semi-space-growth-factor=1');
  holdYoungGeneration();
  process.on('worker', (worker) => worker.once('online', holdYoungGeneration));
}

/*
 * Commands load their modules when they run, not at start: the restore path must not pay
 * for the media server, LevelDB, pino and prom-client (about half a second of start-up).
 */
type Loaded<M, K extends keyof M> = M[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
function lazy<M, K extends keyof M & string>(load: () => Promise<M>, name: K): Loaded<M, K> {
  return (async (...args: unknown[]) => ((await load())[name] as (...a: unknown[]) => unknown)(...args)) as Loaded<M, K>;
}
const runBackup = lazy(() => import('./commands/backup.js'), 'runBackup');
const runDemo = lazy(() => import('./commands/demo.js'), 'runDemo');
const runNetworkDemo = lazy(() => import('./commands/network-demo.js'), 'runNetworkDemo');
const runInit = lazy(() => import('./commands/init.js'), 'runInit');
const runRestore = lazy(() => import('./commands/restore.js'), 'runRestore');
const parseParallelRestore = lazy(() => import('./commands/restore-database.js'), 'parseParallelRestore');
const runSnapshots = lazy(() => import('./commands/snapshots.js'), 'runSnapshots');
const runStats = lazy(() => import('./commands/stats.js'), 'runStats');
const runVerify = lazy(() => import('./commands/verify.js'), 'runVerify');
const runRepair = lazy(() => import('./commands/repair.js'), 'runRepair');
const runSync = lazy(() => import('./commands/sync.js'), 'runSync');
const runProtect = lazy(() => import('./commands/prune.js'), 'runProtect');
const runPrune = lazy(() => import('./commands/prune.js'), 'runPrune');
const runGc = lazy(() => import('./commands/gc.js'), 'runGc');
const runServerGc = lazy(() => import('./commands/server-maintenance.js'), 'runServerGc');
const runServerPrune = lazy(() => import('./commands/server-maintenance.js'), 'runServerPrune');
const runServerVerify = lazy(() => import('./commands/server-maintenance.js'), 'runServerVerify');
const runPolicyDelete = lazy(() => import('./commands/policies.js'), 'runPolicyDelete');
const runPolicyList = lazy(() => import('./commands/policies.js'), 'runPolicyList');
const runPolicyShow = lazy(() => import('./commands/policies.js'), 'runPolicyShow');
const runPolicyWrite = lazy(() => import('./commands/policies.js'), 'runPolicyWrite');
const runAgentAdd = lazy(() => import('./commands/agents.js'), 'runAgentAdd');
const runAgentList = lazy(() => import('./commands/agents.js'), 'runAgentList');
const runAgentRevoke = lazy(() => import('./commands/agents.js'), 'runAgentRevoke');
const runAgentStart = lazy(() => import('./commands/agent-start.js'), 'runAgentStart');
const runRemoteRestore = lazy(() => import('./commands/remote.js'), 'runRemoteRestore');
const runRemoteSnapshots = lazy(() => import('./commands/remote.js'), 'runRemoteSnapshots');
const runRemoteProtect = lazy(() => import('./commands/remote.js'), 'runRemoteProtect');
const runRun = lazy(() => import('./commands/run.js'), 'runRun');
const runServerStart = lazy(() => import('./commands/server.js'), 'runServerStart');
const runJobCancel = lazy(() => import('./commands/jobs.js'), 'runJobCancel');
const runJobDelete = lazy(() => import('./commands/jobs.js'), 'runJobDelete');
const runJobRename = lazy(() => import('./commands/jobs.js'), 'runJobRename');
const runJobHistory = lazy(() => import('./commands/jobs.js'), 'runJobHistory');
const runJobList = lazy(() => import('./commands/jobs.js'), 'runJobList');
const runJobRun = lazy(() => import('./commands/jobs.js'), 'runJobRun');
const runReport = lazy(() => import('./commands/jobs.js'), 'runReport');
const runLogin = lazy(() => import('./commands/login.js'), 'runLogin');
const runLogout = lazy(() => import('./commands/login.js'), 'runLogout');
const runHelp = lazy(() => import('./help-topics.js'), 'runHelp');
const completionScript = lazy(() => import('./completion.js'), 'completionScript');

const out = (line: string) => process.stdout.write(`${line}\n`);
let exitCode = 0;

/** This CLI's version, from its package.json (next to dist/). */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The Examples section every command's --help ends with (a test checks that each has one). */
const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

const program = new Command();
program
  .name('hoard')
  .description('hoard: backup orchestration with content-defined deduplication')
  .version(`hoard ${VERSION}`, '-V, --version', 'print the version, "hoard X.Y.Z" (with --json: {"name", "version", "node"})')
  .helpCommand(false)
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Repositories (--repo) are a local directory or s3://bucket/prefix (endpoint and credentials
from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
Encrypted repositories take their passphrase from HOARD_PASSPHRASE, --passphrase-file, or
a prompt on a terminal.

Exit codes: 0 ok, 1 failed, 2 usage error (nothing done), 3 damaged data found.
More: hoard help exit-codes | time | sources | config | connection | json.

A first session:
  hoard init --repo /srv/hoard
  hoard backup --repo /srv/hoard --job web-vm /var/lib/libvirt/images/web.qcow2
  pg_dump shop | hoard backup --repo /srv/hoard --job shop-db -
  hoard snapshots --repo /srv/hoard
  hoard restore --repo /srv/hoard shop-db --at "2026-11-20 03:00" --to - | psql shop_copy`,
  );

/** Commands that take --server but not the saved connection (its token is the admin's). */
const noSavedConnection = new Set<Command>();
program.hook('preAction', async (_program, command) => {
  await resolveTarget(command, { saved: !noSavedConnection.has(command) });
  const opts = command.opts();
  for (const key of ['snapshot', 'protect', 'unprotect']) if (typeof opts[key] === 'string') checkSnapshotId(`--${key}`, opts[key]);
});

const repoOption = () => new Option('--repo <location>', 'repository: a directory or s3://bucket/prefix').env('HOARD_REPO');
const passphraseFile = () => new Option('--passphrase-file <file>', 'read the passphrase of an encrypted repository from the first line of this file');

program
  .command('init')
  .description('create a repository (a directory or an S3 bucket prefix)')
  .addOption(repoOption())
  .option('--encrypt', 'encrypt it: AES-256-GCM, a random key per fingerprint store wrapped by your passphrase (scrypt)')
  .addOption(passphraseFile())
  .option('--pack-size <MiB>', 'target pack object size, 4-128 MiB (default 16)')
  .option('--compression <codec>', 'how its stores compress new chunks: zstd[:LEVEL] (LEVEL 1-19), lz4 or none (default zstd:3)')
  .option(
    '--object-lock [days]',
    'S3 only: lock packs, index segments, chunk-list pages and manifests (S3 Object Lock) for DAYS after each write (default 30); creates the bucket with Object Lock, or checks an existing one has it',
  )
  .option('--object-lock-mode <mode>', 'compliance (default: nobody can delete a locked object early) or governance (a user with the bypass permission can)')
  .option(
    '--fingerprints-from <location>',
    "with --encrypt: share this encrypted repository's fingerprint key (not its data key), so copies from it (hoard sync, copy-to) read only what is missing",
  )
  .option('--from-passphrase-file <file>', 'passphrase of the --fingerprints-from repository (default: HOARD_PASSPHRASE)')
  .option('--from-endpoint <url>', 'S3 endpoint of --fingerprints-from, when it differs from the environment')
  .option('--json', 'print the result as JSON')
  .addHelpText(
    'after',
    '\nExamples:\n  hoard init --repo /srv/hoard\n  HOARD_PASSPHRASE=... hoard init --repo s3://backups/hoard --encrypt\n  hoard init --repo s3://immutable-backups/hoard --object-lock 45\n  hoard init --repo s3://offsite/hoard --encrypt --passphrase-file off.pass --fingerprints-from s3://backups/hoard --from-passphrase-file main.pass\n',
  )
  .action((opts) => runInit(opts, out));

program
  .command('backup')
  .description('back up a file, a block device, or stdin (-) as a new snapshot of a job')
  .argument('<source>', 'a file, a block device, or - for stdin')
  .addOption(repoOption())
  .requiredOption('--job <name>', 'the job this snapshot belongs to (letters, digits, . _ -)')
  .option('--store <name>', "fingerprint store to dedup against: 'global' (shared) or a store of this job's own, created on first use")
  .option('--name <name>', 'source name recorded in the snapshot (default: the path, or "stdin")')
  .option('--size <bytes>', 'exact size the source must have; a stream that ends early or runs long fails and commits nothing')
  .option('--chunking <preset>', 'vm-image (64 KiB chunks), db-dump (16 KiB) or file; default from the source: stdin -> db-dump, else vm-image')
  .addOption(passphraseFile())
  .option('--json', 'print the result as one JSON object')
  .addHelpText(
    'after',
    '\nOnly chunks the fingerprint store lacks are stored; all-zero chunks cost nothing.\nNothing is committed unless the whole source was read and stored.\n\nExamples:\n  hoard backup --repo /srv/hoard --job web-vm /var/lib/libvirt/images/web.img\n  pg_dump -Fc shop | hoard backup --repo /srv/hoard --job shop-db -\n',
  )
  .action((source: string, opts) => runBackup(source, opts, out));

program
  .command('snapshots')
  .description('list snapshots, newest first')
  .addOption(repoOption())
  .option('--job <name>', 'only this job')
  .addOption(passphraseFile())
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--source <name>', 'only snapshots of this source (its name, as in the source column)')
  .option('--since <time>', 'only snapshots that started at or after this time (ISO-8601, or local "YYYY-MM-DD HH:MM")')
  .option('--until <time>', 'only snapshots that started before this time (same forms as --since)')
  .option('--json', 'print a JSON array')
  .option('--protect <id>', 'with --job: exempt this snapshot from retention (prune keeps it)')
  .option('--unprotect <id>', 'with --job: make it subject to retention again (through a server: admin tokens only)')
  .addHelpText(
    'after',
    `
With --server the list comes from the media server (its catalog); otherwise from --repo.
--source, --since and --until work with both. The protected column says which snapshots
prune keeps whatever the rules say.
Protection is a marker in the repository (protected/<job>/<snapshot>), so every server and
CLI sees it. Through a server, operator tokens may protect; lifting a protection takes an
admin token (it lets prune forget the snapshot).

Examples:
  hoard snapshots --repo /srv/hoard --job shop-db --since 2026-11-01 --until "2026-11-20 12:00"
  hoard snapshots --repo /srv/hoard --job shop-db --protect 3fa2c1d0
  hoard snapshots --server http://backup:8420 --job shop-db --protect 3fa2c1d0
  hoard snapshots --server http://backup:8420 --job shop-db --unprotect 3fa2c1d0 --json
`,
  )
  .action(async (opts) => {
    if (opts.protect !== undefined || opts.unprotect !== undefined) return opts.server ? runRemoteProtect(opts, out) : runProtect(opts, out);
    if (opts.server) return runRemoteSnapshots(opts, out);
    if (!(await runSnapshots(opts, out))) exitCode = EXIT_DAMAGED;
  });

program
  .command('prune')
  .description('forget snapshots that a retention policy does not keep (then gc frees the space)')
  .addOption(repoOption())
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--job <name>', 'the job whose snapshots are pruned (required with --repo)')
  .option('--policy <name>', "with --server: only this policy's jobs")
  .option('--source <name>', 'only snapshots of this source (a job may back up several)')
  .option('--keep-last <n>', 'keep the n newest snapshots')
  .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one')
  .option('--keep-daily <n>', 'keep the newest snapshot of each of the last n days that have one')
  .option('--keep-weekly <n>', 'keep the newest snapshot of each of the last n ISO weeks that have one')
  .option('--keep-monthly <n>', 'keep the newest snapshot of each of the last n months that have one')
  .option('--keep-yearly <n>', 'keep the newest snapshot of each of the last n years that have one')
  .option('--keep-within <duration>', 'keep every snapshot taken within this long before the newest one: 36h, 14d, 3w, 2m (months), 1y')
  .option('--timezone <iana>', 'time zone for hour/day/week/month/year boundaries (default UTC), e.g. Europe/Berlin')
  .option('--dry-run', 'show what would be kept and forgotten, change nothing')
  .addOption(passphraseFile())
  .option('--json', 'print the plan as JSON')
  .addHelpText(
    'after',
    `
Rules add up: a snapshot is kept if any rule keeps it, and the output says which.
Calendar rules count only periods that have snapshots, from the newest back, and keep the
newest snapshot of each. Protected snapshots (snapshots --protect) are always kept and
take no slot. At least one rule is required. Forgetting deletes only the snapshot's
manifest; \`hoard gc\` frees the data nothing else references.

With --server, each job is pruned by the retention rules of its policy (no --keep-...
flags); the server also does this by itself after every successful scheduled run. Each
source of a job is planned on its own: keep-daily 7 keeps 7 days of every VM.

Examples:
  hoard prune --repo /srv/hoard --job shop-db --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  hoard prune --repo /srv/hoard --job web-vm --keep-last 3 --keep-within 2m --timezone Europe/Berlin
  hoard prune --server http://backup:8420 --dry-run            # every policy, nothing changed
  hoard prune --server http://backup:8420 --policy shop
`,
  )
  .action((opts) => {
    if (!opts.server) return runPrune(opts, out);
    const keepRules = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly', 'keepWithin', 'timezone', 'source']
      .filter((k) => opts[k] !== undefined)
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    return runServerPrune({ ...opts, keepRules }, out);
  });

program
  .command('gc')
  .description('garbage collection: delete packs and chunk lists no snapshot references, repack mostly dead packs')
  .addOption(repoOption())
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--dry-run', 'report what would be condemned, repacked and deleted; change nothing')
  .option('--repack-threshold <share>', 'repack a pack when more than this share of its stored bytes is dead (default 0.2)')
  .option('--grace <duration>', 'keep condemned objects this long before a later gc deletes them, and leave younger objects alone (default 24h): s, m, h, d')
  .option('--break-lock', 'remove the lock of a gc run that died')
  .addOption(passphraseFile())
  .option('--json', 'print the report as JSON')
  .addHelpText(
    'after',
    `
Safe to run while backups run. Nothing is deleted in the run that finds it dead: dead
objects are condemned (listed under gc/ and dropped from the index), and a later gc
deletes them once the grace period has passed, unless a snapshot uses them again. Run
it regularly (e.g. daily, after prune); the second run frees the space. Needs no
passphrase: blobs are copied as stored. Protocol: docs/gc.md.

With --server the media server collects (it also does so nightly by itself, see
docs/operations.md), and its backups keep running: each checks its packs at commit.

Examples:
  hoard gc --repo /srv/hoard --dry-run
  hoard gc --repo s3://backups/hoard --repack-threshold 0.3
  hoard gc --server http://backup:8420 --dry-run
`,
  )
  .action((opts) => (opts.server ? runServerGc(opts, out) : runGc(opts, out)));

program
  .command('restore')
  .description('restore a snapshot of a job, byte-identical, to a file, a block device, a directory or stdout')
  .argument('<job>', 'the job to restore from')
  .addOption(repoOption())
  .option('--at <time>', 'the newest snapshot that started at or before this time (ISO-8601, or local "YYYY-MM-DD HH:MM")')
  .option('--snapshot <id>', 'a snapshot id from `hoard snapshots` (a unique prefix of 4+ digits is enough)')
  .option(
    '--to <path>',
    "where to write: a file path, a block device, a new directory (directory snapshots), a database (postgres://user@host:port/db, mysql://user:pass@host:port/db), agent:NAME:/abs/path (with --server: on that agent's host), or - for stdout",
  )
  .option('--verify-only', "read and check the whole snapshot (every chunk, the stream hash, a directory archive's entry table) and write nothing; no --to")
  .option('--file <path>', 'with --server, directory snapshots: restore only this file (path relative to the backed-up directory)')
  .option('--force', 'replace an existing file')
  .option('--offset <bytes>', 'restore only from this byte on')
  .option('--length <bytes>', 'restore only this many bytes')
  .option('--source <name>', 'with --server: the snapshot of this source (a job may back up several)')
  .option(
    '--jobs <n>',
    'with --to postgres://... and a custom-format dump (pg_dump -Fc): run pg_restore --jobs n (1-64) on a temporary copy of the dump instead of streaming it',
  )
  .option('--temp-dir <dir>', `with --jobs: where the temporary copy goes; needs free space for the whole dump (default ${'$'}TMPDIR or /tmp)`)
  .addOption(passphraseFile())
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print the result as JSON (not with --to -)')
  .addHelpText(
    'after',
    '\nWithout --at or --snapshot the newest snapshot is restored. Every chunk is checked\nagainst its fingerprint and the whole stream against its recorded hash; a file is\nwritten as <path>.partial and renamed only when all checks passed.\nA database URL streams the dump into pg_restore (custom format) or psql (SQL), or into\nmysql/mariadb; the password goes to the tool in PGPASSWORD/MYSQL_PWD, never on its command line.\nWith --jobs N a custom-format dump is first restored (and checked) into a temporary file\nunder --temp-dir, which needs free space for the whole dump, then pg_restore --jobs N reads\nit; the file is removed afterwards, also on failure and Ctrl-C. Without --jobs it streams.\nA plain SQL dump or a MySQL target with --jobs is refused (exit 2).\n\nExamples:\n  hoard restore --repo /srv/hoard web-vm --to /tmp/web.img\n  hoard restore --repo /srv/hoard shop-db --at "2026-11-20 03:00" --to postgres://postgres@localhost:5432/shop_copy\n  hoard restore --repo /srv/hoard shop-db --to postgres://postgres@localhost:5432/shop_copy --jobs 4 --temp-dir /var/tmp\n  hoard restore --repo /srv/hoard crm-db --to mysql://root:secret@127.0.0.1:3306/crm_copy\n  hoard restore --repo /srv/hoard shop-db --verify-only       # exit 3 if anything is damaged\n  hoard restore --repo /srv/hoard shop-db --at "2026-11-20 03:00" --to - | pg_restore -d shop_copy\n  hoard restore --server http://backup:8420 www --to /srv/www.restored          # a dir: snapshot, as a tree\n  hoard restore --server http://backup:8420 www --file etc/nginx.conf --to -   # one file of it\n',
  )
  .action(async (job: string, opts) => {
    checkStdoutTarget(opts.to);
    const withJobs = { ...opts, parallel: opts.jobs !== undefined || opts.tempDir !== undefined ? await parseParallelRestore(opts) : undefined };
    return opts.server ? runRemoteRestore(job, withJobs, out) : runRestore(job, withJobs, out);
  });

program
  .command('verify')
  .description('check the repository: structure always, stored data with --read-data')
  .addOption(repoOption())
  .option('--read-data', 'also read every blob and check its checksum and fingerprint')
  .option('--subset <percent>', 'with --read-data: read only this share of the packs, e.g. 10%')
  .option('--job <name>', 'check only the snapshots of this job')
  .addOption(passphraseFile())
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print the report as JSON')
  .addHelpText(
    'after',
    "\nExit code 3 when problems are found; each names the snapshot, the object and the offset.\nWith --server the media server checks its repository and records the result in job history\n(it also runs each policy's verify schedule by itself).\n\nExamples:\n  hoard verify --repo /srv/hoard --read-data --subset 10%\n  hoard verify --server http://backup:8420 --job shop\n",
  )
  .action(async (opts) => {
    if (!(await (opts.server ? runServerVerify(opts, out) : runVerify(opts, out)))) exitCode = EXIT_DAMAGED;
  });

program
  .command('repair')
  .description('rebuild index segments from pack trailers, list snapshots whose data is gone, and optionally forget them')
  .addOption(repoOption())
  .option('--dry-run', 'report what would be done; write and delete nothing')
  .option('--forget-broken', 'forget the snapshots whose data is gone (protected ones are kept); gc then frees their data')
  .option('--undelete', 'S3 Object Lock: bring back objects hidden behind delete markers (deleted without their version id)')
  .option('--break-lock', 'remove a gc/lock left by a gc or repair that died')
  .addOption(passphraseFile())
  .option('--json', 'print the report as JSON')
  .addHelpText(
    'after',
    '\nPacks are never deleted. Damaged index segments are removed only after the segments that replace them\nare written. Holds the GC lock (gc/lock) while it changes anything. Exit 3 when damage is left\n(with --dry-run: when damage is found). Details: docs/repair.md.\n\nExamples:\n  hoard repair --repo /srv/hoard --dry-run\n  hoard repair --repo /srv/hoard --forget-broken\n',
  )
  .action(async (opts) => {
    if (!(await runRepair(opts, out))) exitCode = EXIT_DAMAGED;
  });

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

program
  .command('sync')
  .description('copy snapshots into a second repository (another directory, bucket or S3 server): only what it lacks')
  .option('--from <location>', 'the repository to copy from: a directory or s3://bucket/prefix')
  .option('--to <location>', 'the repository to copy into (create it first with hoard init)')
  .option('--job <name>', 'only this job (repeat for more; default: every job)', collect)
  .option('--snapshot <id>', 'only this snapshot: its id or a unique prefix (repeat for more)', collect)
  .option('--dry-run', 'list what would be copied; write nothing')
  .option('--verify-data', 'after copying, read every copied snapshot back from --to and check every chunk')
  .option('--from-passphrase-file <file>', 'passphrase of an encrypted --from repository (default: HOARD_PASSPHRASE)')
  .option('--to-passphrase-file <file>', 'passphrase of an encrypted --to repository (default: HOARD_PASSPHRASE)')
  .option('--from-endpoint <url>', 'S3 endpoint of --from, when it differs from the environment (AWS_ENDPOINT_URL)')
  .option('--to-endpoint <url>', 'S3 endpoint of --to, when it differs from the environment')
  .option('--allow-unencrypted-target', 'allow copying an encrypted repository into an unencrypted one (stored in the clear)')
  .option('--json', 'print the report as JSON')
  .addHelpText(
    'after',
    `
A snapshot already copied (by an earlier sync, or through another copy) is recognised by
the origin its copy records and not copied again. Blobs the target has are not written;
when the two repositories have different keys every chunk of a copied snapshot is read
and re-encrypted, and only the ones the target lacks are written. Each copy is committed
on its own, manifest last: a sync that is killed leaves the target consistent, and the
next sync continues. Every copy is checked in the target afterwards (every chunk indexed,
every pack there; with --verify-data every byte). The target keeps its own retention:
run hoard prune and hoard gc against it. Exit 3 when a copy or a source manifest is
damaged. Details: docs/sync.md.

Examples:
  hoard sync --from /srv/hoard --to s3://offsite/hoard --dry-run
  hoard sync --from /srv/hoard --to s3://offsite/hoard --job shop-db --verify-data
  hoard sync --from s3://backups/hoard --to /mnt/usb/hoard --to-passphrase-file /root/usb.pass
  hoard sync --from s3://backups/hoard --to s3://dr/hoard --to-endpoint https://s3.other.example
  hoard prune --repo s3://offsite/hoard --job shop-db --keep-daily 30 --keep-monthly 24
`,
  )
  .action(async (opts) => {
    if (!(await runSync(opts, out))) exitCode = EXIT_DAMAGED;
  });

program
  .command('stats')
  .description('logical and stored bytes, dedup and compression, per fingerprint store')
  .addOption(repoOption())
  .addOption(passphraseFile())
  .option('--json', 'print the figures as JSON')
  .addHelpText('after', examples('hoard stats --repo /srv/hoard', "hoard stats --repo s3://backups/hoard --json | jq '.stores[] | {name, dedupFactor}'"))
  .action((opts) => runStats(opts, out));

const server = program
  .command('server')
  .description('the media server: agents send it only the chunks it lacks')
  .addHelpText('after', examples('hoard server start --storage fs:/srv/hoard --data /var/lib/hoard/server'));
server
  .command('start')
  .description('run the media server until SIGINT/SIGTERM')
  .option('--config <file>', 'JSON settings (reference: docs/operations.md); flags override it')
  .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8420)')
  .option('--storage <location>', 'fs:/path/to/dir or s3://bucket/prefix (created with a repository if empty)')
  .option('--data <dir>', 'catalog and admin token directory (default /var/lib/hoard/server)')
  .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
  .option('--tls-key <file>', 'and this key (PEM)')
  .option('--encrypt', 'when creating the repository: encrypt it (passphrase from HOARD_PASSPHRASE or --passphrase-file)')
  .addOption(passphraseFile())
  .option('--log-level <level>', 'debug, info, warn or error (default info); logs are JSON lines on stdout')
  .option(
    '--adopt-state',
    'an empty data directory takes over the server state in the bucket (agents, tokens, jobs, policies, history); without it such a start is refused',
  )
  .addHelpText(
    'after',
    '\nThe first start prints the admin token and writes it to <data>/admin-token.\n\nExamples:\n  hoard server start --storage fs:/srv/hoard --data /var/lib/hoard/server --listen 0.0.0.0:8420\n',
  )
  .action((opts) => runServerStart(opts, out));

const agent = program
  .command('agent')
  .description('agents: add and revoke them (admin), or run one on this host')
  .addHelpText(
    'after',
    examples('hoard agent add kvm-01', 'hoard agent list', 'hoard agent start --server https://backup:8420 --token-file /etc/hoard/agent-token'),
  );
for (const [name, description] of [
  ['add', 'create an agent and print its token (shown once)'],
  ['revoke', "revoke an agent's token"],
] as const) {
  agent
    .command(name)
    .description(description)
    .argument('<name>', 'agent name: lower-case letters, digits, . _ -')
    .addOption(serverOption())
    .addOption(tokenOption())
    .addOption(tokenFileOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      examples(`hoard agent ${name} kvm-01`, `hoard agent ${name} kvm-01 --server http://backup:8420 --token-file /etc/hoard/admin-token --json`),
    )
    .action((agentName: string, opts) => (name === 'add' ? runAgentAdd(agentName, opts, out) : runAgentRevoke(agentName, opts, out)));
}
agent
  .command('list')
  .description('list agents, when they were last seen, and from which host')
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print a JSON array')
  .addHelpText('after', examples('hoard agent list', "hoard agent list --json | jq -r '.[] | select(.revokedAt == null) | .name'"))
  .action((opts) => runAgentList(opts, out));
registerAgentRotate(agent, out);
const agentStart = agent
  .command('start')
  .description('run the agent daemon: take runs from the server and send only what it lacks')
  .addOption(serverOption())
  .addOption(new Option('--token <token>', "this agent's token (from `hoard agent add`)").env('HOARD_TOKEN'))
  .addOption(tokenFileOption())
  .option('--log-level <level>', 'info, warn or error (default info); JSON lines on stderr')
  .addOption(new Option('--nice <n>', 'CPU nice level 0-19 of the agent and the programs it starts').env('HOARD_AGENT_NICE'))
  .addOption(new Option('--io-class <class>', 'I/O class of the agent and its programs: idle or best-effort:0-7').env('HOARD_AGENT_IO_CLASS'))
  .addOption(new Option('--workers <n>', 'chunker and encode worker threads, 1-64 (1 on a busy host)').env('HOARD_AGENT_WORKERS'))
  .addOption(new Option('--read-limit <rate>', 'cap on the bytes read from sources, e.g. 100MB/s').env('HOARD_AGENT_READ_LIMIT'))
  .addHelpText(
    'after',
    '\nThe agent only connects out to the server (it may sit behind NAT) and runs until SIGINT/SIGTERM.\nFootprint settings: docs/operations.md, "Agent footprint".\n\nExamples:\n  hoard agent start --server https://backup:8420 --token-file /etc/hoard/agent-token\n  hoard agent start --server https://backup:8420 --token-file /etc/hoard/agent-token --nice 10 --io-class idle --workers 1 --read-limit 200MB/s\n',
  )
  .action((opts) => runAgentStart(opts, out));
noSavedConnection.add(agentStart);

registerTokenCommands(program, out);
registerNotifyCommands(program, out);

const policy = program
  .command('policy')
  .description('backup policies on the server: sources, schedules, retention (docs/policies.md)')
  .addHelpText('after', examples('hoard policy apply -f /etc/hoard/policies/vms.yaml', 'hoard policy list', 'hoard policy show vms --next 10'));
for (const [mode, what] of [
  ['apply', 'create or update the policies in a file (YAML or JSON)'],
  ['create', 'create the policies in a file; fails if one exists'],
  ['update', 'update the policies in a file; fails if one does not exist'],
] as const) {
  policy
    .command(mode)
    .description(what)
    .option('-f, --file <file>', 'the policy file, or - for standard input')
    .addOption(serverOption())
    .addOption(tokenOption())
    .addOption(tokenFileOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `\nEvery field is checked; all problems are listed with their line, and nothing is stored\nunless the whole file is valid.\n\nExamples:\n  hoard policy ${mode} -f /etc/hoard/policies/vms.yaml\n  render-policies | hoard policy ${mode} -f -\n`,
    )
    .option('--dry-run', 'check the file and print what would change (created, updated, unchanged); store nothing')
    .action((opts) => runPolicyWrite(mode, opts, out));
}
policy
  .command('list')
  .description('list policies, their jobs and next run')
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print as JSON')
  .addHelpText('after', examples('hoard policy list', 'hoard policy list --server http://backup:8420 --token-file /etc/hoard/admin-token --json'))
  .action((opts) => runPolicyList(opts, out));
policy
  .command('show')
  .description('print a policy as YAML (passwords masked) and its next run times')
  .argument('<name>', 'the policy')
  .option('--next <n>', 'how many upcoming runs to list (default 5)')
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print as JSON')
  .addHelpText('after', examples('hoard policy show vms', "hoard policy show vms --next 20 --json | jq -r '.nextRuns[].at'"))
  .action((name: string, opts) => runPolicyShow(name, opts, out));
policy
  .command('delete')
  .description('delete a policy (its jobs, snapshots and history stay)')
  .argument('<name>', 'the policy')
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .option('--json', 'print as JSON')
  .addHelpText('after', examples('hoard policy delete old-vms'))
  .action((name: string, opts) => runPolicyDelete(name, opts, out));

program
  .command('run')
  .description('run a job once on an agent, through the server, and wait for the result')
  .addOption(serverOption())
  .addOption(tokenOption())
  .addOption(tokenFileOption())
  .requiredOption('--agent <name>', 'the agent that reads the sources')
  .requiredOption('--job <name>', 'the job (created or updated, and bound to the agent)')
  .option(
    '--source <spec>',
    'what to back up (repeatable): file:PATH, dir:PATH, vm:GLOB, libvirt:PATTERN, postgres://..., mysql://..., cmd:COMMAND',
    (v: string, prev: string[] = []) => [...prev, v],
  )
  .option('--store <name>', "fingerprint store: 'global' or the job's own store")
  .option('--pre <command>', 'run on the agent before any source is read, e.g. "virsh domfsfreeze web"; failing fails the run')
  .option('--post <command>', 'run on the agent after the sources, whatever happened, e.g. "virsh domfsthaw web"')
  .option('--full', 'read everything again; by default unchanged files of dir: sources are referred to, not read')
  .option('--no-wait', 'queue the run and return')
  .option('--json', 'print the run as JSON')
  .addHelpText(
    'after',
    '\nPrints bytes read, sent over the network, new in the store, the dedup (logical / new bytes; `all known` when nothing was new) and the snapshot of each source.\n\nExamples:\n  hoard run --server http://backup:8420 --agent kvm1 --job vms --source "vm:/var/lib/libvirt/images/*.qcow2"\n  hoard run --server http://backup:8420 --agent db1 --job shop-db --source postgres://backup@localhost/shop\n',
  )
  .action((opts) => runRun(opts, out));

const job = program
  .command('job')
  .description('jobs on the server: list them, run one now, cancel a run, show their history, delete or rename one')
  .addHelpText('after', examples('hoard job list', 'hoard job run shop-db --wait', 'hoard job history shop-db --limit 50', 'hoard job rename web web-old'));
const serverCommand = (c: Command): Command => c.addOption(serverOption()).addOption(tokenOption()).addOption(tokenFileOption());
serverCommand(job.command('list').description('every job: agent, policy, store, last run, last success, next scheduled run, snapshots kept, newest size'))
  .option('--json', 'print a JSON array')
  .addHelpText('after', examples('hoard job list', 'hoard job list --json | jq -r \'.[] | select(.lastRun.state == "failed") | .job\''))
  .action((opts) => runJobList(opts, out));
serverCommand(job.command('run').description("queue a run of an existing job now, on its agent, with its sources and hooks (its policy's when it has one)"))
  .argument('<job>', 'the job (`hoard job list`)')
  .option('--full', 'read everything again; by default unchanged files of dir: sources are referred to, not read')
  .option('--wait', 'wait for the result and print it as `hoard run` does (exit 1 unless it succeeded)')
  .option('--json', 'print the run as JSON')
  .addHelpText('after', examples('hoard job run shop-db --wait', 'hoard job run www --full --wait --json'))
  .action((name: string, opts) => runJobRun(name, opts, out));
serverCommand(
  job
    .command('cancel')
    .description('cancel a run: a queued run at once; a running one stops at its next progress report, committing nothing of the source it was reading'),
)
  .argument('<run>', 'the run id (`hoard job history JOB`, `hoard run --json`)')
  .option('--wait', 'wait until the run has ended')
  .option('--json', 'print the run as JSON')
  .addHelpText('after', examples('hoard job cancel 20261122T030000-5f3fddbdb493', 'hoard job cancel 20261122T030000-5f3fddbdb493 --wait'))
  .action((id: string, opts) => runJobCancel(id, opts, out));
serverCommand(job.command('history').description("a job's backups and maintenance tasks (verify, prune, gc), newest first"))
  .argument('<job>', 'the job')
  .option('--limit <n>', 'at most this many entries (default 20)')
  .option('--json', 'print a JSON array')
  .addHelpText('after', examples('hoard job history shop-db', 'hoard job history shop-db --limit 100 --json'))
  .action((name: string, opts) => runJobHistory(name, opts, out));
serverCommand(job.command('delete').description("delete a job's definition (not a policy's job: change the policy); its snapshots stay, listed and restorable"))
  .argument('<job>', 'the job (`hoard job list`)')
  .option('--json', 'print the result as JSON')
  .addHelpText(
    'after',
    `
Only the job goes: its agent, sources and store binding. Its snapshots stay in the
repository under the job's name (\`hoard snapshots --job JOB\`, \`hoard restore JOB\`) until
\`hoard prune --repo R --job JOB\` forgets them. A job with a queued or running run is
refused (exit 2); admin tokens only.
${examples('hoard job delete old-web', 'hoard job delete old-web --json')}`,
  )
  .action((name: string, opts) => runJobDelete(name, opts, out));
serverCommand(job.command('rename').description("give a job (not a policy's job) a new name for its next runs; snapshots made before keep the old name"))
  .argument('<job>', 'the job (`hoard job list`)')
  .argument('<new-name>', 'its new name: letters, digits, . _ -')
  .option('--json', 'print the result as JSON')
  .addHelpText(
    'after',
    `
The job keeps its agent, sources and fingerprint store, so its next run dedups against
everything it stored. Snapshots are written once with their job's name: those made
before the rename stay listed and restorable under the old name (\`hoard restore OLD ...\`).
A job with a queued or running run, or a new name in use, is refused (exit 2); admin
tokens only.
${examples('hoard job rename web web-2026', 'hoard job rename web web-2026 --json')}`,
  )
  .action((name: string, newName: string, opts) => runJobRename(name, newName, opts, out));

serverCommand(
  program
    .command('report')
    .description(
      'per job: last success and failure, snapshots kept, logical kept over stored bytes; per store: dedup and compression; capacity: growth trend, fill date, the classic estimate next to what is stored',
    ),
)
  .option('--quota <size>', "repository quota for the fill date: bytes or 10TB, 500GiB (default: the server's quotaBytes setting)")
  .option('--growth-years <n>', 'planning horizon of the classic estimate in years (default 1)')
  .option('--json', 'print the report as JSON')
  .addHelpText(
    'after',
    '\nThe formula and each input: docs/cli.md, "report".\n\nExamples:\n  hoard report --quota 20TB --growth-years 3\n  hoard report --json | jq .capacity.fill\n',
  )
  .action((opts) => runReport(opts, out));

serverCommand(
  (program.commands.find((c) => c.name() === 'report') as Command)
    .command('validity')
    .description(
      'the backup-validity report: per job planned vs run vs succeeded, last good snapshot, retention, verify, restore drills; text, JSON, HTML or PDF',
    ),
)
  .option('--since <days>', 'the period: days back from now, e.g. 90d (default 90d)')
  .addOption(
    new Option('--format <format>', 'text (default), json, html, or pdf (needs --out and a headless Chromium)').choices(['text', 'json', 'html', 'pdf']),
  )
  .option('--out <file>', 'write the report to FILE instead of stdout')
  .option('--drill', 'first run a restore drill of each job on the server: its newest snapshot restored and checked, nothing written')
  .option('--job <name>', 'only this job (repeat for more; with --drill, drill only these)', (v: string, prev: string[] = []) => [...prev, v])
  .addHelpText(
    'after',
    '\nWhat each column means: docs/cli.md, "report validity". Exit 0 whatever the report finds: read its status column or .ok in JSON.\n\nExamples:\n  hoard report validity --since 90d\n  hoard report validity --since 90d --drill --format pdf --out /srv/reports/2026-Q4.pdf\n  hoard report validity --format json | jq \'.jobs[] | select(.ok | not) | .job\'\n',
  )
  // `report` has --server and --token too, and takes them wherever they are given: merged here.
  .action(async (_opts, command: Command) => (await import('./commands/report-validity.js')).runValidityReport(command.optsWithGlobals(), out));

program
  .command('demo')
  .description(
    'start a media server and an agent, back up a generated VM image and SQL dump twice over HTTP, restore a point in time, and print what crossed the network',
  )
  .option('--embedded', 'the embedded path instead: no server, 4 days of each into a temporary repository')
  .option('--json', 'print the figures as one JSON object')
  .option('--keep', 'keep the demo repository and print where it is')
  .addHelpText(
    'after',
    '\nExamples:\n  hoard demo              # server + agent on loopback: bytes read, sent, new, stored per source and day\n  hoard demo --embedded   # the embedded path (no server)\n  hoard demo --report /tmp/hoard-report   # also a sample validity report (HTML, PDF)\n',
  )
  .option('--report <dir>', 'also write a sample backup-validity report of the demo server (HTML and PDF) into DIR, after a restore drill')
  .action(async (opts: { json?: boolean; keep?: boolean; embedded?: boolean; report?: string }) => {
    if (opts.embedded && opts.report !== undefined) throw new UsageError('--report needs the server demo: drop --embedded');
    if (opts.embedded) return runDemo({ json: Boolean(opts.json), keep: Boolean(opts.keep), out });
    await runNetworkDemo({ json: Boolean(opts.json), keep: Boolean(opts.keep), report: opts.report, out });
  });

const login = program
  .command('login')
  .description("check a media server's admin token and save the connection, for commands run without --server")
  .addOption(serverOption())
  .addOption(tokenFileOption())
  .option('--json', 'print the result as JSON')
  .addHelpText(
    'after',
    `
The token is read from a prompt without echo on a terminal, else from stdin, or from
--token-file. It is checked (GET /v1/health, then GET /v1/jobs) before it is saved in
$XDG_CONFIG_HOME/hoard/connection.json (default ~/.config/hoard; file 0600, directory 0700).
Commands that take --server use --server/--token first, then HOARD_SERVER/HOARD_TOKEN,
then the saved connection (hoard help connection).
${examples('hoard login --server https://backup:8420', 'hoard login --server https://backup:8420 --token-file /etc/hoard/admin-token', 'hoard job list                     # through the saved connection')}`,
  )
  .action((opts) => runLogin(opts, out));
noSavedConnection.add(login);

program
  .command('logout')
  .description('remove the connection hoard login saved')
  .option('--json', 'print the result as JSON')
  .addHelpText('after', examples('hoard logout'))
  .action((opts) => runLogout(opts, out));

program
  .command('completion')
  .description('print a completion script for bash, zsh or fish (generated from these commands and options)')
  .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
  .addHelpText(
    'after',
    examples(
      'source <(hoard completion bash)                  # this shell only',
      'hoard completion bash > ~/.local/share/bash-completion/completions/hoard',
      `hoard completion zsh > "\${fpath[1]}/_hoard"      # then start a new zsh`,
      'hoard completion fish > ~/.config/fish/completions/hoard.fish',
    ),
  )
  .action(async (shell: string) => {
    out(await completionScript(shell, program, new Map([[helpCommand, await helpValues()]])));
  });

const helpValues = async (): Promise<string[]> => [...Object.keys((await import('./help-topics.js')).HELP_TOPICS), ...program.commands.map((c) => c.name())];
const helpCommand = program
  .command('help')
  .description('help on a topic (exit-codes, time, sources, config, connection, json) or a command')
  .argument('[topic...]', 'a topic, or a command (e.g. restore, agent add)')
  .addHelpText('after', examples('hoard help', 'hoard help exit-codes', 'hoard help time', 'hoard help agent add'))
  .action((words: string[]) => runHelp(program, words, out));

/**
 * `hoard ... | head`: when the reader of stdout (or stderr) goes away, stop quietly with
 * exit 0, as the pipe's reader asked for no more; no "write EPIPE" and no stack trace.
 */
const quietOnEpipe = (err: NodeJS.ErrnoException): void => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
};
process.stdout.on('error', quietOnEpipe);
process.stderr.on('error', quietOnEpipe);

/** The error is stdout's reader going away (a restore --to - into `head`), not a failure. */
function brokenStdout(err: unknown): boolean {
  if (!(process.stdout.destroyed || process.stdout.errored)) return false;
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++, e = (e as { cause?: unknown }).cause) {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return true;
  }
  return false;
}

/** `hoard --version --json` (commander's --version prints the plain line). */
function versionJson(args: string[]): boolean {
  if (!args.includes('--json') || !args.some((a) => a === '--version' || a === '-V') || !args.every((a) => ['--json', '--version', '-V'].includes(a)))
    return false;
  out(JSON.stringify({ name: 'hoard', version: VERSION, node: process.versions.node }));
  return true;
}

async function main(): Promise<number> {
  try {
    if (versionJson(process.argv.slice(2))) return 0;
    await program.parseAsync(process.argv);
    return exitCode;
  } catch (err) {
    if (brokenStdout(err)) return 0;
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help text)
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const { exitStatus } = await import('./exit-status.js');
    const status = exitStatus(err);
    process.stderr.write(`hoard: ${status.message}\n`);
    return status.code;
  }
}

main().then((code) => {
  process.exitCode = code;
  // Let stdout drain into a pipe; if an idle socket or timer still holds the loop, do not hang.
  setTimeout(() => process.exit(code), 2000).unref();
});
