/**
 * The CLI's conventions, through the built binary: --version, `hoard help TOPIC`, an
 * Examples section in every command's --help, completion scripts generated from the
 * command tree, quiet exit when a pipe's reader goes away, `--to -` refused on a
 * terminal, option mistakes that name the option (exit 2), and one naming convention
 * for every --json output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOARD_MAIN, hoardCli, NO_CONFIG_HOME, noise, STACK_TRACE } from './helpers.js';

const hasProgram = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
/** A shell word for sh -c. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const HOARD = `${sq(process.execPath)} ${sq(HOARD_MAIN)}`;

/** The subcommands a --help text lists under "Commands:". */
function listedCommands(help: string): string[] {
  const section = help.split(/\nCommands:\n/)[1];
  if (section === undefined) return [];
  const names: string[] = [];
  for (const line of section.split('\n')) {
    if (line.trim() === '') break;
    const m = /^ {2}([a-z][a-z-]*)\b/.exec(line);
    if (m) names.push(m[1]!);
  }
  return names;
}

let dir: string;
let repo: string;
let snapshotId: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-cli-usability-'));
  repo = join(dir, 'repo');
  expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
  const b = await hoardCli(['backup', '--repo', repo, '--job', 'db', '-', '--json'], { stdin: noise(1, 4 << 20) });
  expect(b.stderr).toBe('');
  snapshotId = (JSON.parse(b.stdout) as { snapshot: string }).snapshot;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hoard --version and hoard help', () => {
  it('--version prints "hoard X.Y.Z" from package.json; with --json an object', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const plain = await hoardCli(['--version']);
    expect(plain).toMatchObject({ code: 0, stdout: `hoard ${version}\n`, stderr: '' });
    expect((await hoardCli(['-V'])).stdout).toBe(`hoard ${version}\n`);
    for (const args of [
      ['--version', '--json'],
      ['--json', '--version'],
    ]) {
      const json = await hoardCli(args);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({ name: 'hoard', version, node: process.versions.node });
    }
  });

  it('help TOPIC prints a short text; help COMMAND its --help; an unknown topic is a usage error', async () => {
    const index = await hoardCli(['help']);
    expect(index.code).toBe(0);
    for (const [topic, text] of [
      ['exit-codes', /3 {2}damaged data/],
      ['time', /--since is inclusive, --until exclusive/],
      ['sources', /postgres:\/\/user@host:port\/db/],
      ['config', /HOARD_PASSPHRASE/],
      ['connection', /1\. --server, --token, --token-file on the command line\n {2}2\. HOARD_SERVER, HOARD_TOKEN\n {2}3\. the saved connection/],
      ['json', /keys are camelCase/],
    ] as const) {
      expect(index.stdout).toContain(`  ${topic} `);
      const r = await hoardCli(['help', topic]);
      expect(r.code, topic).toBe(0);
      expect(r.stdout).toMatch(text);
      expect(r.stdout.split('\n').length).toBeLessThan(30); // short: the long version is docs/cli.md
    }
    const command = await hoardCli(['help', 'agent', 'add']);
    expect(command.code).toBe(0);
    expect(command.stdout).toMatch(/^Usage: hoard agent add \[options\] <name>/);
    const unknown = await hoardCli(['help', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no help topic or command "frobnicate"; topics: exit-codes, time/);
  });

  it('every command, group and subcommand has an Examples section in its --help', async () => {
    const missing: string[] = [];
    const seen: string[] = [];
    const walk = async (path: string[]): Promise<void> => {
      const help = await hoardCli([...path, '--help']);
      expect(help.code, path.join(' ')).toBe(0);
      seen.push(path.join(' '));
      if (path.length > 0 && !/\nExamples:\n {2}\S/.test(help.stdout)) missing.push(path.join(' '));
      // A group's own `help [command]` (commander's) prints the group's help.
      const subcommands = listedCommands(help.stdout).filter((name) => path.length === 0 || name !== 'help');
      await Promise.all(subcommands.map((name) => walk([...path, name])));
    };
    await walk([]);
    expect(seen).toEqual(expect.arrayContaining(['restore', 'agent', 'agent add', 'job history', 'policy show', 'login', 'logout', 'completion', 'help']));
    expect(missing).toEqual([]);
  });
});

describe('hoard completion', () => {
  /** What bash completes for `words` (the last one being typed), with the generated script loaded. */
  function bashComplete(script: string, words: string[]): string[] {
    const program = `
      source ${sq(script)}
      COMP_WORDS=(${words.map(sq).join(' ')})
      COMP_CWORD=${words.length - 1}
      _hoard
      printf '%s\\n' "\${COMPREPLY[@]}"
      complete -p hoard >&2`;
    const r = spawnSync('bash', ['-c', program], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^complete .*-F _hoard hoard$/m);
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  it('bash: a valid script that completes commands, subcommands, options and argument values from the CLI itself', async () => {
    const r = await hoardCli(['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = join(dir, 'hoard.bash');
    await writeFile(script, r.stdout);
    const syntax = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);

    expect(bashComplete(script, ['hoard', 'rest'])).toEqual(['restore']);
    expect(bashComplete(script, ['hoard', 'ag'])).toEqual(['agent']);
    const agentCommands = listedCommands((await hoardCli(['agent', '--help'])).stdout).filter((name) => name !== 'help');
    expect(agentCommands).toEqual(expect.arrayContaining(['add', 'revoke', 'list', 'start']));
    expect(bashComplete(script, ['hoard', 'agent', ''])).toEqual(agentCommands);
    expect(bashComplete(script, ['hoard', '--version', 'agent', 'l'])).toEqual(['list']);
    expect(bashComplete(script, ['hoard', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(bashComplete(script, ['hoard', 'help', 'exit'])).toEqual(['exit-codes']);
    // an option's value is not a command: `--job snapshots` does not switch to `hoard snapshots`
    expect(bashComplete(script, ['hoard', 'restore', '--source', 'snapshots', '--ver'])).toEqual(['--verify-only']);

    // No drift: every command in `hoard --help`, every option in `hoard restore --help`.
    const top = listedCommands((await hoardCli(['--help'])).stdout);
    expect(top.length).toBeGreaterThan(15);
    expect(bashComplete(script, ['hoard', '']).sort()).toEqual([...top].sort());
    const restoreOptions = [...(await hoardCli(['restore', '--help'])).stdout.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!);
    expect(restoreOptions).toContain('--verify-only');
    expect(bashComplete(script, ['hoard', 'restore', '--']).sort()).toEqual([...restoreOptions].sort());
  });

  it('zsh and fish: valid scripts; fish completes subcommands with their descriptions', async () => {
    const bad = await hoardCli(['completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Allowed choices are bash, zsh, fish/);
    for (const shell of ['zsh', 'fish'] as const) {
      const r = await hoardCli(['completion', shell]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`hoard completion ${shell}`);
      const script = join(dir, `hoard.${shell}`);
      await writeFile(script, r.stdout);
      if (!hasProgram(shell)) continue; // checked where the shell is installed
      const syntax = spawnSync(shell, ['-n', script], { encoding: 'utf8' });
      expect(syntax.status, syntax.stderr).toBe(0);
    }
    if (hasProgram('fish')) {
      const r = spawnSync(
        'fish',
        ['--no-config', '-c', `source ${sq(join(dir, 'hoard.fish'))}; complete -C'hoard agent '; complete -C'hoard restore --verify'`],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^add\tcreate an agent/m);
      expect(r.stdout).toMatch(/^--verify-only\t/m);
    }
  });
});

describe('pipes and terminals', () => {
  it('the reader of stdout goes away (hoard ... | head): exit 0, nothing on stderr', async () => {
    // A reader that closes before hoard writes a byte.
    for (const args of [
      ['help', 'exit-codes'],
      ['completion', 'bash'],
      ['snapshots', '--repo', repo, '--json'],
    ]) {
      const child = spawn(process.execPath, [HOARD_MAIN, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, XDG_CONFIG_HOME: NO_CONFIG_HOME },
      });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect({ args, code, stderr }).toEqual({ args, code: 0, stderr: '' });
    }
    // 4 MiB of a restore into `head -c1`.
    const r = spawnSync(
      'bash',
      ['-c', `${HOARD} restore --repo ${sq(repo)} db --to - 2>${sq(join(dir, 'err'))} | head -c1 >/dev/null; echo "\${PIPESTATUS[0]}"`],
      { encoding: 'utf8' },
    );
    expect(r.stdout.trim()).toBe('0');
    expect(await readFile(join(dir, 'err'), 'utf8')).toBe('');
  });

  it.skipIf(!hasProgram('script'))('--to - on a terminal is refused (exit 2) naming --to -; into a pipe it writes', () => {
    // script(1) runs the command with a pseudo-terminal as its stdout.
    const onTerminal = spawnSync('script', ['-qec', `${HOARD} restore --repo ${sq(repo)} db --to -`, '/dev/null'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(onTerminal.status).toBe(2);
    expect(onTerminal.stdout).toMatch(
      /^hoard: --to - would write the snapshot's binary data to this terminal: give a file \(--to FILE\), or pipe it into a program/,
    );
    expect(onTerminal.stdout).not.toMatch(STACK_TRACE);
    const piped = spawnSync('script', ['-qec', `${HOARD} restore --repo ${sq(repo)} db --to - | wc -c`, '/dev/null'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toMatch(new RegExp(`^${4 << 20}\\r?\\n`, 'm'));
  });
});

describe('option mistakes name the option (exit 2, nothing done)', () => {
  const expectUsage = (r: { code: number; stderr: string }, message: RegExp): void => {
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code).toBe(2);
  };

  it('a snapshot id prefix needs 4 or more characters; --since/--until/--at errors start with the flag', async () => {
    expectUsage(
      await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', '9c', '--to', join(dir, 'x')]),
      /^hoard: --snapshot "9c": a snapshot id prefix needs 4 or more characters/,
    );
    expectUsage(
      await hoardCli(['restore', '--server', 'http://127.0.0.1:9', '--token', 't', 'db', '--snapshot', '9c', '--to', join(dir, 'x')]),
      /--snapshot "9c": a snapshot id prefix needs 4 or more/,
    );
    expectUsage(await hoardCli(['snapshots', '--repo', repo, '--job', 'db', '--protect', 'abc']), /--protect "abc": a snapshot id prefix needs 4 or more/);
    const four = await hoardCli(['restore', '--repo', repo, 'db', '--snapshot', snapshotId.slice(0, 4), '--verify-only']);
    expect(four.code).toBe(0);
    expectUsage(await hoardCli(['snapshots', '--repo', repo, '--since', 'last week']), /^hoard: --since: "last week" is not a time: use ISO-8601/);
    expectUsage(await hoardCli(['snapshots', '--repo', repo, '--until', '2026-13-01']), /^hoard: --until: "2026-13-01" is not a time/);
    expectUsage(await hoardCli(['snapshots', '--server', 'http://127.0.0.1:9', '--token', 't', '--since', 'soon']), /^hoard: --since: "soon" is not a time/);
    expectUsage(await hoardCli(['restore', '--repo', repo, 'db', '--at', 'noon', '--to', join(dir, 'x')]), /^hoard: --at: "noon" is not a time/);
  });

  it('--repo with --server is refused naming both; a flag beats the other from the environment', async () => {
    expectUsage(await hoardCli(['snapshots', '--repo', repo, '--server', 'http://127.0.0.1:9']), /--repo and --server were both given/);
    for (const command of [['restore', 'db', '--to', join(dir, 'x')], ['prune', '--job', 'db', '--keep-last', '1'], ['gc'], ['verify']]) {
      expectUsage(await hoardCli([...command, '--repo', repo, '--server', 'http://127.0.0.1:9']), /--repo and --server were both given/);
    }
    expectUsage(
      await hoardCli(['snapshots'], { env: { HOARD_REPO: repo, HOARD_SERVER: 'http://127.0.0.1:9' } }),
      /HOARD_REPO and HOARD_SERVER are both set: give --repo or --server to choose/,
    );
    // --repo on the command line, HOARD_SERVER in the environment: the repository.
    const local = await hoardCli(['snapshots', '--repo', repo, '--json'], { env: { HOARD_SERVER: 'http://127.0.0.1:9' } });
    expect(local.code).toBe(0);
    expect((JSON.parse(local.stdout) as { id: string }[]).map((s) => s.id)).toEqual([snapshotId]);
    // --server on the command line, HOARD_REPO in the environment: the server (none listens there).
    const remote = await hoardCli(['snapshots', '--server', 'http://127.0.0.1:9', '--token', 't'], { env: { HOARD_REPO: repo } });
    expect(remote.code).toBe(1);
    expect(remote.stderr).toMatch(/cannot reach the media server at http:\/\/127\.0\.0\.1:9/);
  });
});

describe('--json: one naming convention', () => {
  /** Every key, at any depth, of a JSON value. */
  function keysOf(value: unknown, out = new Set<string>()): Set<string> {
    if (Array.isArray(value)) for (const v of value) keysOf(v, out);
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        out.add(k);
        keysOf(v, out);
      }
    }
    return out;
  }

  it('the repository commands print camelCase keys, and absent values as null', async () => {
    const runs: Record<string, string[]> = {
      init: ['init', '--repo', join(dir, 'repo2')],
      backup: ['backup', '--repo', repo, '--job', 'files', join(dir, 'hoard.bash')],
      snapshots: ['snapshots', '--repo', repo],
      protect: ['snapshots', '--repo', repo, '--job', 'db', '--protect', snapshotId],
      prune: ['prune', '--repo', repo, '--job', 'db', '--keep-last', '1', '--dry-run'],
      restore: ['restore', '--repo', repo, 'db', '--to', join(dir, 'restored')],
      verifyOnly: ['restore', '--repo', repo, 'db', '--verify-only'],
      verify: ['verify', '--repo', repo],
      gc: ['gc', '--repo', repo, '--dry-run'],
      repair: ['repair', '--repo', repo, '--dry-run'],
      stats: ['stats', '--repo', repo],
    };
    const printed: Record<string, unknown> = {};
    for (const [name, args] of Object.entries(runs)) {
      const r = await hoardCli([...args, '--json']);
      expect(r.stderr, name).toBe('');
      expect(r.code, name).toBe(0);
      printed[name] = JSON.parse(r.stdout);
      const notCamel = [...keysOf(printed[name])].filter((k) => !/^[a-z][a-zA-Z0-9]*$/.test(k));
      expect({ name, notCamel }).toEqual({ name, notCamel: [] });
    }
    expect(printed.backup).toMatchObject({
      job: 'files',
      bytesRead: expect.any(Number),
      bytesNew: expect.any(Number),
      chunksNew: expect.any(Number),
      streamHash: expect.any(String),
    });
    const snapshots = printed.snapshots as Record<string, unknown>[];
    expect(snapshots.map((s) => Object.keys(s))).toEqual(
      snapshots.map(() => ['id', 'key', 'job', 'source', 'startedAt', 'finishedAt', 'logicalBytes', 'store', 'chunks', 'streamHash', 'parent', 'protected']),
    );
    expect(snapshots.find((s) => s.job === 'db')).toMatchObject({ id: snapshotId, parent: null, logicalBytes: 4 << 20, protected: false });
    expect(printed.prune).toMatchObject({ dryRun: true, snapshots: [{ id: snapshotId, startedAt: expect.any(String), keep: true }] });
    expect(printed.restore).toEqual({
      snapshot: snapshotId,
      job: 'db',
      startedAt: expect.any(String),
      to: join(dir, 'restored'),
      file: null,
      bytes: 4 << 20,
      seconds: expect.any(Number),
      streamHashChecked: true,
    });
    expect(printed.verifyOnly).toMatchObject({ snapshot: snapshotId, verified: true, streamHashChecked: true, entries: null });
    expect(printed.init).toMatchObject({ encrypted: false, packBytes: 16 << 20 });
    expect((printed.stats as { stores: { scope: unknown }[] }).stores[0]!.scope).toEqual({ kind: 'global', job: null });
  });
});
