/**
 * `hoard login` / `hoard logout` against a real media server (its own process): the token
 * is checked before it is saved (0600 in a 0700 directory under XDG_CONFIG_HOME), commands
 * without --server use the saved connection, and flags and HOARD_SERVER/HOARD_TOKEN come
 * before it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOARD_MAIN, hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

let server: ServerProcess;
let dir: string;
let config: string;
let agentToken: string;
/** `hoard ARGS` with the test's XDG_CONFIG_HOME and no HOARD_SERVER/HOARD_TOKEN from outside. */
const hoard = (args: string[], options: { stdin?: Buffer; env?: Record<string, string> } = {}) =>
  hoardCli(args, { stdin: options.stdin, env: { HOARD_SERVER: '', HOARD_TOKEN: '', XDG_CONFIG_HOME: config, ...options.env } });
const saved = (): string => join(config, 'hoard', 'connection.json');

beforeAll(async () => {
  server = await startServerProcess();
  dir = await mkdtemp(join(tmpdir(), 'hoard-login-'));
  config = join(dir, 'config');
  const added = await server.cli(['agent', 'add', 'box1', '--json']);
  expect(added.code).toBe(0);
  agentToken = (JSON.parse(added.stdout) as { token: string }).token;
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('hoard login / logout', () => {
  it('refuses a token the server does not take, an agent token and an unreachable server, saving nothing', async () => {
    const wrong = await hoard(['login', '--server', server.url], { stdin: Buffer.from('admin-not-the-token\n') });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/the server refused the token; nothing was saved/);
    expect(wrong.stderr).not.toMatch(STACK_TRACE);
    const agent = await hoard(['login', '--server', server.url], { stdin: Buffer.from(`${agentToken}\n`) });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/log in with the admin token, not an agent token; nothing was saved/);
    const away = await hoard(['login', '--server', 'http://127.0.0.1:9'], { stdin: Buffer.from(`${server.adminToken}\n`) });
    expect(away.code).toBe(1);
    expect(away.stderr).toMatch(/cannot reach the media server at http:\/\/127\.0\.0\.1:9/);
    const empty = await hoard(['login', '--server', server.url], { stdin: Buffer.from('\n') });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/no token given/);
    expect(await stat(saved()).catch(() => undefined)).toBeUndefined();
  });

  it('saves {server, token} with mode 0600 in a 0700 directory; commands without --server use it; logout removes it', async () => {
    const tokenFile = join(dir, 'admin-token');
    await writeFile(tokenFile, `${server.adminToken}\nsecond line ignored\n`);
    const login = await hoard(['login', '--server', `${server.url}/`, '--token-file', tokenFile, '--json']);
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    expect(JSON.parse(login.stdout)).toEqual({ server: server.url, path: saved() });
    expect(JSON.parse(await readFile(saved(), 'utf8'))).toEqual({ server: server.url, token: server.adminToken });
    expect((await stat(saved())).mode & 0o777).toBe(0o600);
    expect((await stat(join(config, 'hoard'))).mode & 0o777).toBe(0o700);

    // No --server, no HOARD_SERVER: the saved connection.
    const agents = await hoard(['agent', 'list', '--json']);
    expect(agents.stderr).toBe('');
    expect((JSON.parse(agents.stdout) as { name: string }[]).map((a) => a.name)).toEqual(['box1']);
    const snapshots = await hoard(['snapshots', '--json']);
    expect(snapshots.code).toBe(0);
    expect(JSON.parse(snapshots.stdout)).toEqual([]);
    // --repo given: the repository, not the saved server.
    const local = await hoard(['snapshots', '--repo', join(dir, 'no-repo')]);
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/no hoard repository at/);

    // Flags first, then HOARD_SERVER/HOARD_TOKEN, then the saved connection.
    const flagToken = await hoard(['agent', 'list', '--token', 'admin-wrong']);
    expect(flagToken.code).toBe(1);
    expect(flagToken.stderr).toMatch(/^hoard: server: /);
    const envToken = await hoard(['agent', 'list'], { env: { HOARD_TOKEN: 'admin-wrong' } });
    expect(envToken.code).toBe(1);
    const fileBeatsEnv = await hoard(['agent', 'list', '--json', '--token-file', tokenFile], { env: { HOARD_TOKEN: 'admin-wrong' } });
    expect(fileBeatsEnv.code).toBe(0);
    const envServer = await hoard(['agent', 'list'], { env: { HOARD_SERVER: 'http://127.0.0.1:9', HOARD_TOKEN: 'admin-x' } });
    expect(envServer.code).toBe(1);
    expect(envServer.stderr).toMatch(/cannot reach the media server at http:\/\/127\.0\.0\.1:9/);
    // The saved token goes to its own server only: HOARD_SERVER naming it (another spelling) gets it.
    const sameServer = await hoard(['agent', 'list', '--json'], { env: { HOARD_SERVER: `${server.url}/` } });
    expect(sameServer.code).toBe(0);
    const otherServer = await hoard(['agent', 'list', '--server', 'http://127.0.0.1:9']);
    expect(otherServer.code).toBe(2);
    expect(otherServer.stderr).toMatch(/a token is required/);
    // `agent start` needs the agent's own token: never the saved admin token.
    const agentStart = await hoard(['agent', 'start']);
    expect(agentStart.code).toBe(2);
    expect(agentStart.stderr).toMatch(/--server is required/);

    const logout = await hoard(['logout']);
    expect(logout).toMatchObject({ code: 0, stdout: `removed the saved connection to ${server.url} (${saved()})\n` });
    expect(await stat(saved()).catch(() => undefined)).toBeUndefined();
    const after = await hoard(['agent', 'list']);
    expect(after.code).toBe(2);
    expect(after.stderr).toMatch(/--server is required \(or HOARD_SERVER, or a connection saved by `hoard login`\)/);
    const again = await hoard(['logout', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ removed: false, server: null, path: saved() });
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v script']).status !== 0)('on a terminal the token is asked for without echo', async () => {
    // script(1) gives hoard a terminal; the token is typed once the prompt is there.
    const command = `'${process.execPath}' '${HOARD_MAIN}' login --server ${server.url}`;
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      env: { ...process.env, XDG_CONFIG_HOME: config, HOARD_SERVER: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('admin token for') && !child.stdin.writableEnded) child.stdin.end(`${server.adminToken}\r`);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(output).toMatch(new RegExp(`admin token for ${server.url.replace(/[.]/g, '\\.')}: `));
    expect(output).toMatch(/logged in to /);
    expect(output).not.toContain(server.adminToken);
    expect(code).toBe(0);
    expect(JSON.parse(await readFile(saved(), 'utf8'))).toEqual({ server: server.url, token: server.adminToken });
  });
});
