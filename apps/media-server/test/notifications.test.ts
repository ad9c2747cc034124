/**
 * Notifications with real receivers: an SMTP server (the smtp-server package as the
 * receiving MTA, mails parsed by mailparser) and an HTTP server that checks webhook
 * bodies and signatures. Each problem gives exactly one notification and, when it clears,
 * one "resolved"; a target that is down gets every event later, in order, also across a
 * server restart; a backup's bookkeeping never waits on a target.
 */
import { createHmac } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { NotificationEvent, RunView } from '@hoard/protocol';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addAgent, backup, call, defineJob, randomData, startServer, uniqueName, type TestServer } from './helpers.js';

// --- receivers ------------------------------------------------------------------------------

interface Mail {
  envelopeTo: string[];
  parsed: ParsedMail;
}

class MailReceiver {
  readonly mails: Mail[] = [];
  private server!: SMTPServer;
  port = 0;

  async start(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, session, callback) => {
        simpleParser(stream)
          .then((parsed) => {
            this.mails.push({ envelopeTo: session.envelope.rcptTo.map((r) => r.address), parsed });
            callback();
          })
          .catch(callback);
      },
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Hook {
  headers: IncomingMessage['headers'];
  raw: string;
  event: NotificationEvent;
}

/** Answers 204 while `up`, 503 while down, and never answers while `hang`. */
class WebhookReceiver {
  readonly hooks: Hook[] = [];
  up = true;
  hang = false;
  refused = 0;
  private readonly held: ServerResponse[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        if (this.hang) return void this.held.push(res);
        if (!this.up) {
          this.refused++;
          return void res.writeHead(503).end('down for maintenance');
        }
        const raw = Buffer.concat(parts).toString('utf8');
        this.hooks.push({ headers: req.headers, raw, event: JSON.parse(raw) as NotificationEvent });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  release(): void {
    for (const res of this.held.splice(0)) res.destroy();
  }

  close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Lets deliveries that could still be under way arrive (used before asserting "nothing more"). */
const settle = () => new Promise((r) => setTimeout(r, 400));

// --- the server -------------------------------------------------------------------------------

const SECRET = 'a-webhook-secret-of-32-characters!';
const mail = new MailReceiver();
const hook = new WebhookReceiver();
let t: TestServer;
let now = Date.now();
const clock = { now: () => now };

beforeAll(async () => {
  await mail.start();
  await hook.start();
});
afterAll(async () => {
  await mail.close();
  await hook.close();
});

async function start(extra: { quotaBytes?: number; report?: { schedule: string; targets: string[]; days?: number } } = {}): Promise<void> {
  now = Date.now();
  mail.mails.length = 0;
  hook.hooks.length = 0;
  hook.up = true;
  hook.hang = false;
  t = await startServer({
    server: {
      scheduler: false,
      clock,
      ...(extra.quotaBytes !== undefined ? { quotaBytes: extra.quotaBytes } : {}),
      notifications: {
        ...(extra.report ? { report: extra.report } : {}),
        serverName: 'backup-test',
        targets: {
          'ops-mail': {
            kind: 'smtp',
            host: '127.0.0.1',
            port: mail.port,
            security: 'none',
            from: 'hoard <hoard@example.org>',
            to: ['ops@example.org', 'dba@example.org'],
            match: { minSeverity: 'warning' },
          },
        },
        retryBaseMs: 50,
        retryMaxMs: 200,
        // The timed checks are called by the tests.
        checkMs: 3_600_000,
        capacityCheckMs: 0,
        agentOfflineAfterMs: 10 * 60_000,
      },
    },
  });
  const added = await call(t.url, 'PUT', '/v1/notify/targets/hooks', { token: t.admin, json: { kind: 'webhook', url: hook.url, secret: SECRET } });
  expect(added.status, JSON.stringify(added.json)).toBe(200);
}
afterEach(async () => t?.close());

/** Claims the agent's next run and finishes it as the agent would. */
async function finishNext(token: string, state: 'succeeded' | 'failed', error = 'pg_dump: connection refused'): Promise<RunView> {
  const work = await call(t.url, 'GET', '/v1/agent/work?wait=0', { token });
  expect(work.status, JSON.stringify(work.json)).toBe(200);
  const run = work.json as unknown as RunView;
  const done = await call(t.url, 'POST', `/v1/runs/${run.id}/finish`, {
    token,
    json: { state, targets: [], ...(state === 'failed' ? { error } : {}) },
  });
  expect(done.status, JSON.stringify(done.json)).toBe(200);
  return done.json as unknown as RunView;
}

/** A policy of one agent running `cmd:true` on `cron`, with more keys after it. */
async function applyPolicy(name: string, agent: string, cron: string, extra: string): Promise<void> {
  const document = `name: ${name}\nsources:\n  - agent: ${agent}\n    specs: ["cmd:true"]\nschedule:\n  timezone: UTC\n  full: "${cron}"\n${extra}\n`;
  const applied = await call(t.url, 'POST', '/v1/policies', { token: t.admin, json: { document, mode: 'apply' } });
  expect(applied.status, JSON.stringify(applied.json)).toBe(200);
}

async function queueRun(agent: string, job: string): Promise<void> {
  const r = await call(t.url, 'POST', '/v1/runs', { token: t.admin, json: { agent, job, sources: ['cmd:true'] } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

describe('notifications', () => {
  it('a failing job: one mail and one webhook, repeats coalesced, one "resolved" when a run succeeds', async () => {
    await start();
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name, uniqueName('db'));
    await finishNext(agent.token, 'failed');
    await until('the first mail and webhook', () => mail.mails.length === 1 && hook.hooks.length === 1);

    const [m] = mail.mails;
    expect(m!.envelopeTo.sort()).toEqual(['dba@example.org', 'ops@example.org']);
    expect(m!.parsed.from?.text).toContain('hoard@example.org');
    expect(m!.parsed.subject).toBe(`[hoard] ERROR job ${job}: backup run ${(hook.hooks[0]!.event.run as string) ?? ''} failed`);
    expect(m!.parsed.text).toContain('pg_dump: connection refused');
    expect(m!.parsed.text).toContain('backup-test');
    expect(m!.parsed.headers.get('x-hoard-event')).toBe('run-failed');

    const [h] = hook.hooks;
    expect(h!.headers['x-hoard-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(h!.raw).digest('hex')}`);
    expect(h!.headers['content-type']).toBe('application/json');
    expect(h!.event).toMatchObject({
      version: 1,
      kind: 'run-failed',
      severity: 'error',
      status: 'firing',
      condition: `run-failed:${job}`,
      job,
      agent: agent.name,
    });
    expect(h!.event.detail).toContain('pg_dump: connection refused');

    // Two more failures of the same job: counted, not sent.
    for (let i = 0; i < 2; i++) {
      await queueRun(agent.name, job);
      await finishNext(agent.token, 'failed');
    }
    // Recorded after the agent's finish is answered (a backup never waits on notifications).
    let conditions: unknown[] = [];
    for (let i = 0; i < 200 && (conditions as { repeats?: number }[])[0]?.repeats !== 2; i++) {
      conditions = (await call(t.url, 'GET', '/v1/notify/conditions', { token: t.admin })).json.conditions as unknown[];
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(conditions).toMatchObject([{ condition: `run-failed:${job}`, repeats: 2 }]);
    await settle();
    expect(mail.mails).toHaveLength(1);
    expect(hook.hooks).toHaveLength(1);

    await queueRun(agent.name, job);
    await finishNext(agent.token, 'succeeded');
    await until('the resolved mail and webhook', () => mail.mails.length === 2 && hook.hooks.length === 2);
    expect(mail.mails[1]!.parsed.subject).toMatch(/^\[hoard\] RESOLVED job .*: backup run \S+ succeeded$/);
    expect(hook.hooks[1]!.event).toMatchObject({ kind: 'run-failed', status: 'resolved', condition: `run-failed:${job}`, repeats: 2 });
    expect((await call(t.url, 'GET', '/v1/notify/conditions', { token: t.admin })).json.conditions).toEqual([]);

    // A second success clears nothing more.
    await queueRun(agent.name, job);
    const last = await finishNext(agent.token, 'succeeded');
    await settle();
    expect(hook.hooks).toHaveLength(2);

    // What monitoring systems alert on: per job, per agent, the queue, deliveries.
    const metrics = (await call(t.url, 'GET', '/metrics')).bytes.toString('utf8');
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value(`hoard_job_last_run_status{job="${job}",status="succeeded"}`)).toBe(1);
    expect(value(`hoard_job_last_run_status{job="${job}",status="failed"}`)).toBe(0);
    expect(value(`hoard_job_last_success_timestamp_seconds{job="${job}"}`)).toBe(Date.parse(last.finishedAt!) / 1000);
    expect(value(`hoard_job_last_duration_seconds{job="${job}"}`)).toBeGreaterThanOrEqual(0);
    expect(value(`hoard_agent_last_seen_timestamp_seconds{agent="${agent.name}"}`)).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(value('hoard_runs{state="queued"}')).toBe(0);
    expect(value('hoard_notifications_total{target="hooks",result="delivered"}')).toBe(2);
    expect(value('hoard_notifications_total{target="ops-mail",result="delivered"}')).toBe(2);
  });

  it('a target that is down gets every event once it is back, in order; a hanging target never holds up a run', async () => {
    await start();
    const agent = await addAgent(t);
    hook.up = false;
    const jobs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await defineJob(t, agent.name, uniqueName(`down${i}`));
      jobs.push(job);
      await finishNext(agent.token, 'failed', `failure ${i}`);
    }
    await until('retries against the down target', () => hook.refused >= 2);
    type View = { name: string; pending: number; lastError?: string; settings: Record<string, unknown> };
    let view: View | undefined;
    for (let i = 0; i < 200 && view?.pending !== 3; i++) {
      const listed = await call(t.url, 'GET', '/v1/notify/targets', { token: t.admin });
      view = (listed.json.targets as View[]).find((x) => x.name === 'hooks');
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!view) throw new Error('the hooks target is not listed');
    expect(view.pending).toBe(3);
    expect(view.lastError).toContain('503');
    expect(view.settings.secret).toBe('(set)');
    hook.up = true;
    await until('the three events', () => hook.hooks.length === 3);
    expect(hook.hooks.map((h) => h.event.job)).toEqual(jobs);
    expect(hook.hooks.map((h) => h.event.detail)).toEqual(['failure 0', 'failure 1', 'failure 2']);

    // A receiver that never answers: the agent's finish is answered all the same.
    hook.hang = true;
    const job = await defineJob(t, agent.name, uniqueName('hang'));
    const finished = await finishNext(agent.token, 'failed');
    expect(finished.state).toBe('failed');
    expect(finished.job).toBe(job);
    hook.hang = false;
    hook.release();
  });

  it('what waits for a down target survives a server restart and is delivered after it', async () => {
    await start();
    const agent = await addAgent(t);
    hook.up = false;
    const job = await defineJob(t, agent.name, uniqueName('restart'));
    await finishNext(agent.token, 'failed');
    await until('a refused delivery', () => hook.refused >= 1);
    await t.restart();
    expect(hook.hooks).toHaveLength(0);
    hook.up = true;
    // The restarted server's outbox still holds the event (retried after its backoff).
    await until('the event after the restart', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'run-failed', job });
  });

  it("job-overdue after the policy's alert-after (simulated clock), once, and resolved by the next success", async () => {
    await start();
    const agent = await addAgent(t);
    const name = uniqueName('nightly');
    await applyPolicy(name, agent.name, '0 1 * * *', 'alert-after: 26h');
    await t.server.notificationSources.check();
    await settle();
    expect(hook.hooks).toHaveLength(0);

    now += 27 * 3_600_000;
    await t.server.notificationSources.check();
    await t.server.notificationSources.check();
    await until('job-overdue', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'job-overdue', status: 'firing', job: name, policy: name, severity: 'error' });
    expect(hook.hooks[0]!.event.summary).toContain('alert-after 26h');
    await until('the job-overdue mail', () => mail.mails.length === 1);

    await queueRun(agent.name, name);
    await finishNext(agent.token, 'succeeded');
    await until('job-overdue resolved', () => hook.hooks.length === 2);
    expect(hook.hooks[1]!.event).toMatchObject({ kind: 'job-overdue', status: 'resolved', job: name });
  });

  it('a scheduled run that cannot start is run-missed; a policy shows alert-after back as written', async () => {
    await start();
    const agent = await addAgent(t);
    const name = uniqueName('hourly');
    await applyPolicy(name, agent.name, '0 * * * *', 'alert-after: 1d12h');
    const shown = await call(t.url, 'GET', `/v1/policies/${name}`, { token: t.admin });
    expect(JSON.stringify(shown.json)).toContain('"alert-after":"1d12h"');
    now = Date.parse('2026-11-02T00:30:00Z');
    await t.server.scheduler.tick(); // first sight
    now = Date.parse('2026-11-02T01:00:00Z');
    const [first] = await t.server.scheduler.tick();
    expect(first?.run?.state).toBe('queued');
    now = Date.parse('2026-11-02T02:00:00Z'); // the 01:00 run is still queued
    const [second] = await t.server.scheduler.tick();
    expect(second?.skipped).toContain('still queued');
    await until('run-missed', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'run-missed', severity: 'warning', job: name, policy: name });
  });

  it('an agent that goes away: agent-offline once, resolved when it is back', async () => {
    await start();
    const agent = await addAgent(t);
    expect((await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
    await t.server.notificationSources.check();
    now += 11 * 60_000;
    await t.server.notificationSources.check();
    await t.server.notificationSources.check();
    await until('agent-offline', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'agent-offline', severity: 'warning', agent: agent.name, status: 'firing' });
    now = Date.now();
    expect((await call(t.url, 'GET', '/v1/agent/work?wait=0', { token: agent.token })).status).toBe(204);
    await t.server.notificationSources.check();
    await until('agent-offline resolved', () => hook.hooks.length === 2);
    expect(hook.hooks[1]!.event).toMatchObject({ kind: 'agent-offline', status: 'resolved', agent: agent.name });
  });

  it('verify finding a flipped byte: verify-damage once; a clean verify resolves it', async () => {
    await start();
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name, uniqueName('verified'));
    await backup(t, { token: agent.token, job }, randomData(256 * 1024, 7));
    const { readdir } = await import('node:fs/promises');
    const packDir = join(t.repoDir, 'packs');
    const sub = (await readdir(packDir))[0]!;
    const packFile = join(packDir, sub, (await readdir(join(packDir, sub)))[0]!);
    const original = await readFile(packFile);
    const damaged = Buffer.from(original);
    damaged[100] ^= 0x40;
    const { chmod } = await import('node:fs/promises');
    await chmod(packFile, 0o644);
    await writeFile(packFile, damaged);
    const verify = () => call(t.url, 'POST', '/v1/verify', { token: t.admin, json: { job, readData: true } });
    const bad = await verify();
    expect(bad.status, JSON.stringify(bad.json)).toBe(200);
    await until('verify-damage', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'verify-damage', severity: 'error', job, status: 'firing' });
    expect(hook.hooks[0]!.event.detail).toContain(sub);
    expect((await verify()).status).toBe(200);
    await settle();
    expect(hook.hooks).toHaveLength(1);
    await writeFile(packFile, original);
    expect((await verify()).status).toBe(200);
    await until('verify-damage resolved', () => hook.hooks.length === 2);
    expect(hook.hooks[1]!.event).toMatchObject({ kind: 'verify-damage', status: 'resolved', job });
  });

  it('a repository past its quota threshold: store-capacity once, resolved when the quota grows', async () => {
    await start({ quotaBytes: 1024 * 1024 });
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name, uniqueName('big'));
    await t.server.notificationSources.check();
    await settle();
    expect(hook.hooks).toHaveLength(0);
    await backup(t, { token: agent.token, job }, randomData(1024 * 1024, 9));
    await t.server.notificationSources.check();
    await t.server.notificationSources.check();
    await until('store-capacity', () => hook.hooks.length === 1);
    expect(hook.hooks[0]!.event).toMatchObject({ kind: 'store-capacity', severity: 'warning', status: 'firing' });
    expect(hook.hooks[0]!.event.data).toMatchObject({ quotaBytes: 1024 * 1024 });
    // The admin raises the quota (a config change).
    (t.server.options as { quotaBytes?: number }).quotaBytes = 1024 ** 4;
    await t.server.notificationSources.check();
    await until('store-capacity resolved', () => hook.hooks.length === 2);
    expect(hook.hooks[1]!.event).toMatchObject({ kind: 'store-capacity', status: 'resolved' });
  });

  it('matchers: kinds, jobs and severity route events; a command target gets the event on stdin', async () => {
    await start();
    const out = join(t.dir, 'command-events.jsonl');
    const script = join(t.dir, 'append-event.sh');
    await writeFile(script, `#!/bin/sh\ncat >> ${out}\n`, { mode: 0o755 });
    const put = await call(t.url, 'PUT', '/v1/notify/targets/cmd', {
      token: t.admin,
      json: { kind: 'command', command: [script], match: { kinds: ['run-*'], jobs: ['db-*'] } },
    });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    const agent = await addAgent(t);
    const other = await defineJob(t, agent.name, uniqueName('web'));
    await finishNext(agent.token, 'failed');
    const db = await defineJob(t, agent.name, `db-${uniqueName('x')}`);
    await finishNext(agent.token, 'failed');
    await until('both webhooks', () => hook.hooks.length === 2);
    await until('the command event', () => mail.mails.length === 2);
    await settle();
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'run-failed', job: db });
    expect(hook.hooks.map((h) => h.event.job)).toEqual([other, db]);

    const tested = await call(t.url, 'POST', '/v1/notify/targets/cmd/test', { token: t.admin });
    expect(tested.json).toMatchObject({ name: 'cmd', delivered: true });
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('the periodic validity report: drills, then one mail with the report attached as HTML and one webhook with it as data', async () => {
    await start({ report: { schedule: '0 6 * * *', targets: ['ops-mail', 'hooks'], days: 30 } });
    const agent = await addAgent(t);
    const job = await defineJob(t, agent.name, uniqueName('reported'));
    await backup(t, { token: agent.token, job }, randomData(64 * 1024, 5));
    now = Date.parse('2026-12-01T05:00:00Z');
    await t.server.maintenanceScheduler.tick(); // first sight
    now = Date.parse('2026-12-01T06:00:00Z');
    const done = await t.server.maintenanceScheduler.tick();
    expect(done).toContainEqual({ kind: 'validity-report', ok: true });
    await until('the report mail and webhook', () => mail.mails.length === 1 && hook.hooks.length === 1);
    const [m] = mail.mails;
    expect(m!.parsed.subject).toBe('[hoard] INFO backup validity report 2026-11-01 to 2026-12-01: every job complies');
    const [attachment] = m!.parsed.attachments;
    expect(attachment!.filename).toBe('backup-validity-2026-12-01.html');
    const page = attachment!.content.toString('utf8');
    expect(page).toContain('<h1>Backup validity report</h1>');
    expect(page).toContain(`<td>${job}</td>`);
    const report = hook.hooks[0]!.event.data!.report as { jobs: { job: string; drills: { runs: number; last: { ok: boolean } } }[] };
    expect(hook.hooks[0]!.event.kind).toBe('validity-report');
    expect(report.jobs.find((j) => j.job === job)?.drills).toMatchObject({ runs: 1, last: { ok: true } });
    // Not again until the next fire time.
    expect(await t.server.maintenanceScheduler.tick()).toEqual([]);
  });

  it('the API: bad targets are refused with the field named; config targets cannot be changed; roles', async () => {
    await start();
    const badKind = await call(t.url, 'PUT', '/v1/notify/targets/x', { token: t.admin, json: { kind: 'pager', url: 'x' } });
    expect(badKind.status).toBe(400);
    const noTo = await call(t.url, 'PUT', '/v1/notify/targets/x', { token: t.admin, json: { kind: 'smtp', host: 'mail', from: 'a@b' } });
    expect(noTo.status).toBe(400);
    expect(String(noTo.json.message)).toMatch(/to/);
    const config = await call(t.url, 'DELETE', '/v1/notify/targets/ops-mail', { token: t.admin });
    expect(config.status).toBe(409);
    expect(String(config.json.message)).toContain('config file');
    const missing = await call(t.url, 'POST', '/v1/notify/targets/nope/test', { token: t.admin });
    expect(missing.status).toBe(404);
    const down = await call(t.url, 'PUT', '/v1/notify/targets/dead', { token: t.admin, json: { kind: 'webhook', url: 'http://127.0.0.1:1/x' } });
    expect(down.status).toBe(200);
    const tested = await call(t.url, 'POST', '/v1/notify/targets/dead/test', { token: t.admin });
    expect(tested.json).toMatchObject({ delivered: false });
    expect(String(tested.json.error)).toContain('127.0.0.1:1');
    const removed = await call(t.url, 'DELETE', '/v1/notify/targets/dead', { token: t.admin });
    expect(removed.json).toMatchObject({ name: 'dead', removed: true });
    const agent = await addAgent(t);
    expect((await call(t.url, 'GET', '/v1/notify/targets', { token: agent.token })).status).toBe(403);
  });
});
