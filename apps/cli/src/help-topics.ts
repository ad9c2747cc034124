/**
 * `hoard help [TOPIC | COMMAND...]`: short texts on what several commands share (exit
 * codes, times, sources, settings, the saved connection, --json), or a command's --help.
 * The long versions are in docs/cli.md.
 */
import type { Command } from 'commander';
import { UsageError } from './errors.js';

export const HELP_TOPICS: Record<string, { summary: string; text: string }> = {
  'exit-codes': {
    summary: 'what each exit status means',
    text: `Exit codes of every hoard command:
  0  success
  1  the work failed: an I/O error, storage or a server that cannot be reached or refuses,
     a wrong passphrase, a source that ended early, an interrupt, a database tool that failed
  2  usage error: an unknown command or option, an invalid value, a repository, job,
     snapshot or store that does not exist; nothing was done
  3  damaged data: verify found problems, a restore's data failed its checks, damaged metadata

A mistake is one line on stderr ("hoard: ..."), never a stack trace. When the reader of a
pipe goes away (hoard snapshots --json | head), hoard stops quietly with exit 0.
Details: docs/cli.md, "Exit codes".`,
  },
  time: {
    summary: 'times for --at, --since and --until; durations and sizes',
    text: `Times (--at, --since, --until):
  2026-11-20T03:00:00Z       ISO-8601 in UTC
  2026-11-20T03:00+01:00     ISO-8601 with an offset
  2026-11-20                 a date: midnight UTC
  "2026-11-20 03:00[:SS]"    local wall-clock time (this machine's time zone)

Snapshots are placed by the time they started. --at picks the newest snapshot that
started at or before the time; --since is inclusive, --until exclusive.

Durations: prune --keep-within 36h, 14d, 3w, 2m (calendar months), 1y or 1y6m;
gc --grace 30s, 15m (minutes here), 24h, 7d.
Sizes: report --quota 10TB or 500GiB (kB..PB are powers of 1000, KiB..PiB of 1024).`,
  },
  sources: {
    summary: 'what can be backed up, and how to name it',
    text: `Sources of hoard run --source and of policies (through a media server):
  file:/path                    a file or a block device
  dir:/path                     a directory tree; later runs do not read unchanged files again
  vm:/dir/*.qcow2               raw or qcow2 images, read as the guest sees them
  libvirt:PATTERN[?uri=...]     the disks of the matching libvirt domains
  postgres://user@host:port/db  pg_dump (?format=custom or plain)
  mysql://user@host:port/db     mysqldump
  cmd:COMMAND                   its stdout; a non-zero exit fails the backup

hoard backup --repo takes a file, a block device, or - for stdin:
  pg_dump -Fc shop | hoard backup --repo /srv/hoard --job shop-db -
Details: docs/sources.md.`,
  },
  config: {
    summary: 'where settings come from: flags, environment, saved files',
    text: `Settings, strongest first: the command line, then the environment, then saved files.
  --repo, HOARD_REPO                     the repository: a directory or s3://bucket/prefix
  HOARD_PASSPHRASE, --passphrase-file    an encrypted repository's passphrase (else a prompt)
  AWS_ENDPOINT_URL or HOARD_S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY                  S3 (or the shared AWS config files)
  --server, HOARD_SERVER                 a media server
  --token, --token-file, HOARD_TOKEN     its token
  $XDG_CONFIG_HOME/hoard/connection.json the connection hoard login saved
                                         (default ~/.config/hoard/connection.json)

The media server's own settings: hoard server start --help and docs/operations.md.
See also: hoard help connection.`,
  },
  connection: {
    summary: 'hoard login, and how --server and its token are found',
    text: `hoard login --server URL checks the admin token with the server (GET /v1/health, then
GET /v1/jobs) and saves {server, token} in $XDG_CONFIG_HOME/hoard/connection.json
(default ~/.config/hoard/connection.json; the file 0600, its directory 0700). The token is
read from a prompt without echo on a terminal, else from stdin, or from --token-file.
hoard logout removes the file.

Commands that take --server find the server and its token in this order:
  1. --server, --token, --token-file on the command line
  2. HOARD_SERVER, HOARD_TOKEN
  3. the saved connection (its token goes only to its own server)
hoard agent start never uses the saved connection: it needs the agent's own token.

Commands that take --repo as well (snapshots, restore, prune, gc, verify) work on the
repository when --repo or HOARD_REPO is given. --repo with --server is refused (exit 2),
and so are HOARD_REPO and HOARD_SERVER both set, unless a flag chooses one.`,
  },
  json: {
    summary: 'the shape of --json output',
    text: `--json, for every command that has it:
  - one JSON value on stdout (an object, or an array for a list); messages and progress
    go to stderr
  - keys are camelCase (startedAt, logicalBytes, dryRun)
  - a value that does not apply or is not known is null, never left out
  - times are ISO-8601 strings in UTC; sizes are whole bytes; durations are seconds
    (seconds) or milliseconds (names ending in Ms)
  - snapshot ids are the 16 hex digits hoard snapshots prints; key is the manifest's key

The fields of each command: docs/cli.md, "JSON output".
  hoard snapshots --repo /srv/hoard --json | jq -r '.[] | "\\(.id) \\(.startedAt) \\(.logicalBytes)"'`,
  },
};

/** The command a path of names leads to (`agent add`), if any. */
function findCommand(program: Command, names: string[]): Command | undefined {
  let command: Command | undefined = program;
  for (const name of names) {
    command = command.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (!command) return undefined;
  }
  return command;
}

export function topicList(): string {
  const width = Math.max(...Object.keys(HELP_TOPICS).map((t) => t.length));
  return Object.entries(HELP_TOPICS)
    .map(([name, t]) => `  ${name.padEnd(width)}  ${t.summary}`)
    .join('\n');
}

export function runHelp(program: Command, words: string[], out: (line: string) => void): void {
  if (words.length === 0) {
    program.outputHelp();
    out(`\nHelp topics (hoard help TOPIC):\n${topicList()}`);
    return;
  }
  const topic = HELP_TOPICS[words.join(' ')];
  if (topic) {
    out(topic.text);
    return;
  }
  const command = findCommand(program, words);
  if (command) {
    command.outputHelp();
    return;
  }
  throw new UsageError(
    `no help topic or command ${JSON.stringify(words.join(' '))}; topics: ${Object.keys(HELP_TOPICS).join(', ')}; commands: ${program.commands.map((c) => c.name()).join(', ')}`,
  );
}
