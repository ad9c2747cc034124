/**
 * API tokens with roles, agent token rotation and `policy apply --dry-run`, through the
 * built CLI against a real media server (its own process) with a real agent:
 *
 *   - `hoard token add` prints a token once; an operator token lists jobs and restores
 *     but may not apply policies; a viewer token lists but may not restore;
 *   - `hoard token revoke` makes the server refuse the token at once (exit 1); the last
 *     admin token cannot be revoked;
 *   - `hoard agent rotate` makes the old agent token refused and the new one work;
 *   - `hoard policy apply --dry-run` stores nothing; apply creates; applying the same file
 *     again leaves the policy unchanged (not rewritten).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

let server: ServerProcess;
let dir: string;
let sourceFile: string;
const SOURCE = Buffer.alloc(300_000, 'hoard tokens test data ');

/** `hoard ARGS --server URL --token TOKEN`, with nothing from the environment or a saved connection. */
const as = (token: string, args: string[]) =>
  hoardCli([...args, '--server', server.url, '--token', token], { env: { HOARD_SERVER: '', HOARD_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'no-config') } });
const admin = (args: string[]) => as(server.adminToken, args);

async function addToken(role: string, label: string): Promise<{ id: string; role: string; label: string; token: string }> {
  const added = await admin(['token', 'add', '--role', role, '--label', label, '--json']);
  expect(added.stderr).toBe('');
  expect(added.code).toBe(0);
  return JSON.parse(added.stdout) as { id: string; role: string; label: string; token: string };
}

async function whoami(token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  server = await startServerProcess();
  dir = await mkdtemp(join(tmpdir(), 'hoard-tokens-'));
  sourceFile = join(dir, 'source.bin');
  await writeFile(sourceFile, SOURCE);
  await server.addAgent('box1');
  const run = await admin(['run', '--agent', 'box1', '--job', 'files', '--source', `file:${sourceFile}`, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('hoard token', () => {
  it('add prints the token once with a warning; list shows id, role and label but never a token', async () => {
    const added = await admin(['token', 'add', '--role', 'viewer', '--label', 'grafana board']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const token = /^ {2}(hoard_viewer_\S+)$/m.exec(added.stdout)?.[1];
    expect(token).toBeDefined();
    expect(added.stdout).toMatch(/token [0-9a-f]{16} added: role viewer .*label "grafana board"/);
    expect(added.stdout).toMatch(/shown once; the server keeps only its SHA-256 hash/);
    expect(added.stdout).toMatch(/it cannot be shown again/);
    expect((await whoami(token!)).body).toEqual({ role: 'viewer' });

    const list = await admin(['token', 'list', '--json']);
    expect(list.code).toBe(0);
    const tokens = JSON.parse(list.stdout) as { id: string; role: string; label: string; createdAt: string }[];
    expect(tokens.find((t) => t.label === 'grafana board')).toMatchObject({ role: 'viewer', id: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(tokens.some((t) => t.role === 'admin')).toBe(true);
    expect(list.stdout).not.toContain(token!);
    const table = await admin(['token', 'list']);
    expect(table.stdout).toMatch(/^id +role +label +created \(local\)$/m);
    expect(table.stdout).toMatch(/ viewer +grafana board +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);
    expect(table.stdout).not.toContain(token!);
  });

  it('an operator token lists jobs and restores, but `policy apply` is forbidden (exit 1) and stores nothing', async () => {
    const operator = await addToken('operator', 'on-call');
    expect(operator.role).toBe('operator');
    expect(operator.token).toMatch(/^hoard_operator_/);

    const jobs = await as(operator.token, ['job', 'list', '--json']);
    expect(jobs.stderr).toBe('');
    expect(jobs.code).toBe(0);
    expect((JSON.parse(jobs.stdout) as { job: string }[]).map((j) => j.job)).toContain('files');

    const restored = join(dir, 'operator-restore.bin');
    const restore = await as(operator.token, ['restore', 'files', '--to', restored]);
    expect(restore.stderr).not.toMatch(/forbidden|may not/);
    expect(restore.code).toBe(0);
    expect((await readFile(restored)).equals(SOURCE)).toBe(true);

    const policyFile = join(dir, 'operator-policy.yaml');
    await writeFile(policyFile, 'name: by-operator\nsources:\n  - agent: box1\n    specs: ["cmd:true"]\nschedule: {incremental: daily}\n');
    const apply = await as(operator.token, ['policy', 'apply', '-f', policyFile]);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toMatch(/^hoard: server: a token of role operator may not call POST \/v1\/policies: it needs an admin token/m);
    expect(apply.stderr).not.toMatch(STACK_TRACE);
    const policies = await admin(['policy', 'list', '--json']);
    expect((JSON.parse(policies.stdout) as { name: string }[]).map((p) => p.name)).not.toContain('by-operator');

    // Nor may it hand out tokens.
    const escalate = await as(operator.token, ['token', 'add', '--role', 'admin', '--label', 'me']);
    expect(escalate.code).toBe(1);
    expect(escalate.stderr).toMatch(/a token of role operator may not call POST \/v1\/tokens/);
  });

  it('a viewer token lists jobs but may not restore (exit 1, nothing written)', async () => {
    const viewer = await addToken('viewer', 'dashboard');
    const jobs = await as(viewer.token, ['job', 'list']);
    expect(jobs.code).toBe(0);
    expect(jobs.stdout).toMatch(/\bfiles\b/);

    const target = join(dir, 'viewer-restore.bin');
    const restore = await as(viewer.token, ['restore', 'files', '--to', target]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(/a token of role viewer may not call GET \/v1\/jobs\/:job\/restore/);
    expect(restore.stderr).not.toMatch(STACK_TRACE);
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${target}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('revoke: the server refuses the token at once; unknown ids, malformed ids and the last admin token are refused', async () => {
    const script = await addToken('operator', 'nightly script');
    expect((await as(script.token, ['job', 'list'])).code).toBe(0);

    const revoked = await admin(['token', 'revoke', script.id]);
    expect(revoked.stderr).toBe('');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`token ${script.id} revoked: the server refuses it from now on\n`);

    const refused = await as(script.token, ['job', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^hoard: server: unknown or revoked token$/m);
    expect((await whoami(script.token)).status).toBe(401);
    const listed = JSON.parse((await admin(['token', 'list', '--json'])).stdout) as { id: string; role: string }[];
    expect(listed.map((t) => t.id)).not.toContain(script.id);

    const again = await admin(['token', 'revoke', script.id, '--json']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`no API token ${script.id}`));

    const malformed = await admin(['token', 'revoke', script.token]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/give the id `hoard token list` shows/);

    // The admin token the server printed at its first start is the only admin token.
    const admins = listed.filter((t) => t.role === 'admin');
    expect(admins).toHaveLength(1);
    const last = await admin(['token', 'revoke', admins[0]!.id]);
    expect(last.code).toBe(2);
    expect(last.stderr).toMatch(/this is the last admin token/);
    expect((await admin(['job', 'list'])).code).toBe(0);

    // With a second admin token, the first one can go.
    const second = await addToken('admin', 'second admin');
    const json = await as(second.token, ['token', 'revoke', admins[0]!.id, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ id: admins[0]!.id, revoked: true });
    expect((await admin(['job', 'list'])).code).toBe(1);
    server.adminToken = second.token;
    expect((await admin(['job', 'list'])).code).toBe(0);
  });
});

describe('hoard agent rotate', () => {
  it('gives the agent a new token: the old one is refused at once, the new one works', async () => {
    const added = await admin(['agent', 'add', 'box2', '--json']);
    expect(added.code).toBe(0);
    const oldToken = (JSON.parse(added.stdout) as { token: string }).token;
    expect(await whoami(oldToken)).toEqual({ status: 200, body: { role: 'agent', agent: 'box2' } });

    const rotated = await admin(['agent', 'rotate', 'box2']);
    expect(rotated.stderr).toBe('');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/agent box2 has a new token; the old one stopped working now/);
    const newToken = /^ {2}(hoard_agent_\S+)$/m.exec(rotated.stdout)?.[1];
    expect(newToken).toBeDefined();
    expect(newToken).not.toBe(oldToken);

    const old = await whoami(oldToken);
    expect(old.status).toBe(401);
    expect(old.body).toMatchObject({ code: 'unauthenticated' });
    expect(await whoami(newToken!)).toEqual({ status: 200, body: { role: 'agent', agent: 'box2' } });
    // An agent call: hello with the new token works, with the old one it does not.
    const hello = (token: string) =>
      fetch(`${server.url}/v1/agent/hello`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    expect((await hello(newToken!)).status).toBe(200);
    expect((await hello(oldToken)).status).toBe(401);

    // --json, and again: the previous new token is refused in turn.
    const json = await admin(['agent', 'rotate', 'box2', '--json']);
    expect(json.code).toBe(0);
    const third = JSON.parse(json.stdout) as { name: string; token: string };
    expect(third.name).toBe('box2');
    expect((await whoami(newToken!)).status).toBe(401);
    expect((await whoami(third.token)).body).toEqual({ role: 'agent', agent: 'box2' });
    const list = JSON.parse((await admin(['agent', 'list', '--json'])).stdout) as { name: string; revokedAt?: string | null }[];
    expect(list.find((a) => a.name === 'box2')?.revokedAt ?? null).toBeNull();
  });

  it('refuses an unknown agent (exit 2) and a caller that is not admin (exit 1)', async () => {
    const unknown = await admin(['agent', 'rotate', 'no-such-agent']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no-such-agent/);
    expect(unknown.stderr).not.toMatch(STACK_TRACE);
    const operator = await addToken('operator', 'rotator');
    const forbidden = await as(operator.token, ['agent', 'rotate', 'box1']);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/a token of role operator may not call POST \/v1\/agents\/:name\/rotate/);
  });
});

describe('hoard policy apply --dry-run', () => {
  const nightly = 'name: nightly\nsources:\n  - agent: box1\n    specs: ["cmd:true"]\nschedule:\n  timezone: UTC\n  full: "0 1 * * *"\n';
  const weekly = 'name: weekly\nsources:\n  - agent: box1\n    specs: ["cmd:true"]\nschedule:\n  timezone: UTC\n  full: "0 2 * * 0"\n';
  const policyNames = async (): Promise<{ name: string; updatedAt: string }[]> =>
    JSON.parse((await admin(['policy', 'list', '--json'])).stdout) as { name: string; updatedAt: string }[];

  it('dry run stores nothing; apply creates; the same file again is unchanged and not rewritten', async () => {
    const file = join(dir, 'policies.yaml');
    await writeFile(file, nightly);

    const dry = await admin(['policy', 'apply', '-f', file, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe('policy nightly would be created\ndry run: nothing was stored; 1 of 1 policy would change\n');
    expect((await policyNames()).map((p) => p.name)).not.toContain('nightly');

    const apply = await admin(['policy', 'apply', '-f', file]);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toBe('policy nightly created\n');
    const stored = (await policyNames()).find((p) => p.name === 'nightly');
    expect(stored).toBeDefined();

    const again = await admin(['policy', 'apply', '-f', file]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('policy nightly unchanged\nnothing changed: every policy in the file is as stored\n');
    expect((await policyNames()).find((p) => p.name === 'nightly')?.updatedAt).toBe(stored!.updatedAt);

    // A changed file: the dry run names what would be updated and created, and stores none of it.
    await writeFile(file, `${nightly.replace('0 1 * * *', '30 1 * * *')}---\n${weekly}`);
    const plan = await admin(['policy', 'apply', '-f', file, '--dry-run', '--json']);
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.stdout)).toEqual({
      dryRun: true,
      policies: [
        { name: 'nightly', action: 'updated' },
        { name: 'weekly', action: 'created' },
      ],
    });
    const after = await policyNames();
    expect(after.map((p) => p.name)).not.toContain('weekly');
    expect(after.find((p) => p.name === 'nightly')?.updatedAt).toBe(stored!.updatedAt);

    const applied = await admin(['policy', 'apply', '-f', file]);
    expect(applied.stdout).toBe('policy nightly updated\npolicy weekly created\n');
    const mixed = await admin(['policy', 'apply', '-f', file, '--dry-run']);
    expect(mixed.stdout).toBe('policy nightly unchanged\npolicy weekly unchanged\ndry run: nothing was stored; 0 of 2 policies would change\n');
  });

  it('a dry run of an invalid file lists the problems (exit 2), as apply does', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'name: broken\nsources:\n  - agent: box1\n    specs: ["cmd:true"]\nschedule:\n  full: "not a cron"\n');
    const dry = await admin(['policy', 'apply', '-f', file, '--dry-run']);
    expect(dry.code).toBe(2);
    expect(dry.stderr).toMatch(/problem.*nothing was stored/);
    expect(dry.stderr).not.toMatch(STACK_TRACE);
  });
});
