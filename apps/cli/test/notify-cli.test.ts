/**
 * `hoard notify` through the built CLI against a media server process and a real HTTP
 * receiver: a webhook target with its secret from a file (never shown again), `test`
 * delivering a signed event (exit 0) or saying why not (exit 1, one line), bad input as
 * usage errors (exit 2), removal, and the open conditions.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

const SECRET = 'cli-test-secret-0123456789';
let server: ServerProcess;
let receiver: Server;
let hookUrl = '';
let dir: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];

const admin = (args: string[]) =>
  hoardCli([...args, '--server', server.url, '--token', server.adminToken], {
    env: { HOARD_SERVER: '', HOARD_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'no-config') },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-notify-cli-'));
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (text: string) => (body += text));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hoard`;
  server = await startServerProcess();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('hoard notify', () => {
  it('adds a signed webhook target, lists it without its secret, and tests it end to end', async () => {
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
    const added = await admin(['notify', 'target', 'add', 'chat', '--webhook', hookUrl, '--secret-file', secretFile, '--events', 'run-*,job-overdue']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('notification target chat saved (webhook, receives events run-*, job-overdue)');

    const listed = await admin(['notify', 'target', 'list', '--json']);
    expect(listed.code).toBe(0);
    const [target] = JSON.parse(listed.stdout) as { name: string; settings: Record<string, unknown>; pending: number }[];
    expect(target).toMatchObject({
      name: 'chat',
      pending: 0,
      settings: { kind: 'webhook', url: hookUrl, secret: '(set)', match: { kinds: ['run-*', 'job-overdue'] } },
    });
    expect(listed.stdout).not.toContain(SECRET);

    const tested = await admin(['notify', 'target', 'test', 'chat']);
    expect(tested.stderr).toBe('');
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/^test event [0-9a-f-]{36} delivered to chat in \d+ ms\n$/);
    expect(received).toHaveLength(1);
    const [hit] = received;
    expect(hit!.headers['x-hoard-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(hit!.body).digest('hex')}`);
    expect(JSON.parse(hit!.body)).toMatchObject({ version: 1, kind: 'test', status: 'firing', summary: 'test notification to target chat' });
  });

  it('a target that does not answer: test says why in one line, exit 1; remove drops it', async () => {
    const added = await admin(['notify', 'target', 'add', 'dead', '--webhook', 'http://127.0.0.1:1/nowhere']);
    expect(added.code).toBe(0);
    const tested = await admin(['notify', 'target', 'test', 'dead']);
    expect(tested.code).toBe(1);
    expect(tested.stdout).toBe('');
    expect(tested.stderr).toMatch(/^hoard: test event not delivered to dead: POST http:\/\/127\.0\.0\.1:1\/nowhere failed: .+\n$/);
    expect(tested.stderr).not.toMatch(STACK_TRACE);
    const removed = await admin(['notify', 'target', 'remove', 'dead']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe('notification target dead removed\n');
    const again = await admin(['notify', 'target', 'remove', 'dead']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('no notification target dead');
  });

  it('bad input is a usage error (exit 2) naming the flag and what would be right', async () => {
    const cases: [string[], RegExp][] = [
      [['notify', 'target', 'add', 'x'], /give the kind of target: --smtp-host HOST \(mail\), --webhook URL or --command PROGRAM/],
      [['notify', 'target', 'add', 'x', '--webhook', hookUrl, '--command', '/bin/true'], /give one kind of target, not --webhook and --command/],
      [['notify', 'target', 'add', 'x', '--smtp-host', 'mail', '--to', 'a@b'], /--from is required with --smtp-host/],
      [['notify', 'target', 'add', 'x', '--webhook', hookUrl, '--to', 'a@b'], /--to is for mail targets/],
      [['notify', 'target', 'add', 'x', '--webhook', hookUrl, '--events', 'run-failes'], /--events: run-failes is not an event kind; kinds: run-failed, /],
      [['notify', 'target', 'add', 'x', '--webhook', 'ftp://x'], /--webhook ftp:\/\/x: give an http:\/\/ or https:\/\/ URL/],
      [['notify', 'target', 'add', 'x', '--webhook', hookUrl, '--secret-file', join(dir, 'missing')], /cannot read --secret-file .*missing: ENOENT/],
    ];
    for (const [args, message] of cases) {
      const r = await admin(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  });

  it('conditions: none open on a quiet server', async () => {
    const r = await admin(['notify', 'conditions']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no open conditions: nothing notified is still wrong\n');
  });
});
