/**
 * The web console in a real browser (Debian's chromium through puppeteer-core) against a
 * real media server (test-support/browser.ts): an admin sees a job's failed run and its
 * error; a viewer is offered no run-now and the API refuses it with the viewer's cookie;
 * cookie-authenticated changes without the console header or from a foreign origin are
 * refused; sign-out ends the session; the dashboard shows a running backup's progress as
 * the server's events deliver it. Screenshots of each page go to the printed directory.
 *
 * The agent here is the HTTP protocol driven by hand (claim, progress, finish, a real
 * backup session), so each state the console shows is one the test put there.
 */
import type { Browser, Page } from 'puppeteer-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunView } from '@hoard/protocol';
import { launchBrowser, newPage, Screenshots, signIn, startConsoleServer, type ConsoleTestServer } from '../../../test-support/browser.js';
import { backup, randomData, type TestServer } from '../../media-server/test/helpers.js';

const JOB = 'nightly';
const AGENT = 'web1';
const FAILURE = 'pg_dump: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: Connection refused';

let t: ConsoleTestServer;
let browser: Browser;
let shots: Screenshots;
let agentToken: string;
let viewer: string;
let operator: string;
let failedRun: string;

const policy = [
  `name: ${JOB}`,
  'sources:',
  `  - agent: ${AGENT}`,
  '    specs: ["cmd:true"]',
  'schedule: {timezone: America/New_York, full: "0 1 * * 0", incremental: daily}',
  'retention: {keep-last: 1, keep-daily: 7}',
  'alert-after: 26h',
  '',
].join('\n');

/** The agent's side: claim the queued run of this agent. */
async function claim(): Promise<RunView> {
  const res = await fetch(`${t.url}/v1/agent/work?wait=5`, { headers: { authorization: `Bearer ${agentToken}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as RunView;
}

beforeAll(async () => {
  [t, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
  shots = new Screenshots('console');
  agentToken = await t.agent(AGENT);
  [viewer, operator] = await Promise.all([t.token('viewer', 'dana (viewer)'), t.token('operator', 'olaf (operator)')]);
  // A first run that succeeds with two real snapshots (backup sessions), the older one protected.
  await t.call('POST', '/v1/runs', t.admin, { agent: AGENT, job: JOB, sources: ['cmd:true'] });
  const good = await claim();
  const fake = { url: t.url, committed: [] } as unknown as TestServer;
  const first = await backup(fake, { token: agentToken, job: JOB }, randomData(60_000, 1));
  await backup(fake, { token: agentToken, job: JOB }, randomData(60_000, 2));
  await t.call('POST', `/v1/runs/${good.id}/finish`, agentToken, { state: 'succeeded', targets: [] });
  await t.call('PUT', `/v1/jobs/${JOB}/snapshots/${first.snapshot.id}/protection`, t.admin, { protected: true });
  await t.call('POST', '/v1/policies', t.admin, { document: policy });
  // Then a run that fails.
  await t.call('POST', `/v1/jobs/${JOB}/run`, t.admin, {});
  const run = await claim();
  failedRun = run.id;
  await t.call('POST', `/v1/runs/${run.id}/finish`, agentToken, { state: 'failed', targets: [], error: FAILURE });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** The page's session cookie value (HttpOnly: read through the browser, as a test may). */
async function sessionCookie(page: Page) {
  const cookies = await page.browserContext().cookies();
  const cookie = cookies.find((c) => c.name === 'hoard_session');
  expect(cookie, 'the session cookie').toBeDefined();
  return cookie!;
}

async function textOf(page: Page, selector: string): Promise<string> {
  await page.waitForSelector(selector);
  return page.$eval(selector, (e) => e.textContent ?? '');
}

describe('the web console', () => {
  it('an admin signs in and sees the failed run and its error on the dashboard and the job page', async () => {
    const page = await newPage(browser);
    await page.goto(`${t.url}/ui/`);
    await page.waitForSelector('#token');
    await shots.save(page, 'sign-in');
    await page.type('#token', t.admin);
    await page.click('button[type=submit]');
    await page.waitForSelector(`tr[data-job="${JOB}"] .badge.bad`);
    await page.waitForSelector(`tr[data-job="${JOB}"] .error-text`);
    const row = await textOf(page, `tr[data-job="${JOB}"]`);
    expect(row).toContain('failed');
    expect(row).toContain('Connection refused');
    expect(row).toContain('alert after 26h');
    expect(await textOf(page, 'header.top')).toMatch(/Times: Europe\/Berlin/);
    // The cookie: HttpOnly, SameSite=Strict, for the whole server, with an expiry.
    const cookie = await sessionCookie(page);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
    expect(cookie.expires).toBeGreaterThan(Date.now() / 1000 + 3600);
    await page.waitForSelector('.chart canvas, .panel p');
    await shots.save(page, 'dashboard');

    await page.click(`tr[data-job="${JOB}"] a`);
    await page.waitForSelector(`tr[data-entry="${failedRun}"]`);
    expect(await textOf(page, `tr[data-entry="${failedRun}"]`)).toContain(FAILURE);
    // Snapshots: both on the axis, the protected one marked, the newer kept by the rules.
    await page.waitForSelector('table.snapshots tbody tr:nth-child(2)');
    const snapshots = await textOf(page, 'table.snapshots');
    expect(snapshots).toContain('protected');
    expect(snapshots).toMatch(/last/);
    expect(await page.$$('.timeline .snap')).toHaveLength(2);
    // The policy as YAML, next runs in its own zone.
    await page.waitForSelector('pre');
    expect(await textOf(page, 'pre')).toContain('alert-after: 26h');
    expect(await textOf(page, 'main')).toContain('(America/New_York)');
    expect(await page.$('button ::-p-text(Run full now)')).not.toBeNull();
    await shots.save(page, 'job');
    await page.browserContext().close();
  });

  it('a viewer is offered no run-now, and the API refuses the call made with the viewer cookie', async () => {
    const page = await newPage(browser, { width: 820, height: 1100 });
    await signIn(page, t.url, viewer, `/ui/jobs/${JOB}`);
    await page.waitForSelector(`tr[data-entry="${failedRun}"]`);
    expect(await page.$('button ::-p-text(Run incremental now)')).toBeNull();
    expect(await page.$('button ::-p-text(Run full now)')).toBeNull();
    expect(await textOf(page, 'header.top')).toContain('viewer');
    await shots.save(page, 'job-viewer-tablet');
    // The same call the button would make, from the page, with its cookie and header.
    const answer = await page.evaluate(async (job) => {
      const res = await fetch(`/v1/jobs/${job}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hoard-console': '1' },
        body: '{}',
      });
      return { status: res.status, body: (await res.json()) as { code: string; error: string } };
    }, JOB);
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe('forbidden');
    expect(answer.body.error).toMatch(/viewer may not call POST \/v1\/jobs\/:job\/run/);
    await page.browserContext().close();
  });

  it('refuses a cookie-authenticated change without the console header or from a foreign origin, and agent tokens cannot sign in', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, operator);
    const cookie = `hoard_session=${(await sessionCookie(page)).value}`;
    const post = (headers: Record<string, string>) =>
      fetch(`${t.url}/v1/jobs/${JOB}/run`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{"full":false}' });
    const runsBefore = (await t.call<{ runs: RunView[] }>('GET', '/v1/runs', t.admin)).runs.length;

    const noHeader = await post({ origin: t.url });
    expect(noHeader.status).toBe(403);
    expect(((await noHeader.json()) as { error: string }).error).toMatch(/X-Hoard-Console: 1/);
    const foreign = await post({ origin: 'http://evil.example', 'x-hoard-console': '1' });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: string }).error).toMatch(/origin http:\/\/evil\.example refused/);
    // The page's own request shape is let through, so the refusals above were the checks'.
    const reads = await fetch(`${t.url}/v1/jobs`, { headers: { cookie } });
    expect(reads.status).toBe(200);
    expect((await t.call<{ runs: RunView[] }>('GET', '/v1/runs', t.admin)).runs.length).toBe(runsBefore);

    // The page's form with an agent's token: refused, with the reason shown.
    const other = await newPage(browser);
    await other.goto(`${t.url}/ui/`);
    await other.waitForSelector('#token');
    await other.type('#token', agentToken);
    await other.click('button[type=submit]');
    expect(await textOf(other, '.notice.error')).toMatch(/agent token cannot sign in/);
    await other.browserContext().close();
    await page.browserContext().close();
  });

  it('sign-out deletes the session: the old cookie no longer works', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, t.admin);
    const cookie = `hoard_session=${(await sessionCookie(page)).value}`;
    expect((await fetch(`${t.url}/v1/console/session`, { headers: { cookie } })).status).toBe(200);
    await page.click('button ::-p-text(Sign out)');
    await page.waitForSelector('#token');
    expect(await textOf(page, '.signin')).toContain('You are signed out');
    const after = await fetch(`${t.url}/v1/console/session`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: string }).error).toMatch(/session has ended/);
    expect((await page.browserContext().cookies()).find((c) => c.name === 'hoard_session')).toBeUndefined();
    await page.browserContext().close();
  });

  it('the dashboard shows a running backup’s progress, rate and time left as the server sends them', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, t.admin);
    await page.waitForSelector('.badge.ok ::-p-text(live)');
    await t.call('POST', `/v1/jobs/${JOB}/run`, t.admin, { full: true });
    const run = await claim();
    const report = (bytesRead: number) =>
      t.call('POST', `/v1/runs/${run.id}/progress`, agentToken, {
        target: 'dump',
        bytesRead,
        bytesTotal: 40 << 20,
        bytesSent: bytesRead,
        bytesNew: bytesRead >> 1,
      });
    await report(4 << 20);
    await page.waitForSelector(`.progress[data-run="${run.id}"]`);
    expect(await textOf(page, `.progress[data-run="${run.id}"]`)).toContain('4.00 MiB of 40.0 MiB read');
    await report(12 << 20);
    // The second report gives a rate, and with the total a time left.
    await page.waitForFunction(
      (id) => /12\.0 MiB of 40\.0 MiB read.*\/s · .* left/.test(document.querySelector(`.progress[data-run="${id}"]`)?.textContent ?? ''),
      {},
      run.id,
    );
    await shots.save(page, 'dashboard-running');
    await t.call('POST', `/v1/runs/${run.id}/finish`, agentToken, { state: 'cancelled', targets: [], error: 'stopped by the test' });
    await page.waitForFunction((id) => document.querySelector(`.progress[data-run="${id}"]`) === null, {}, run.id);
    await page.browserContext().close();
  });

  it('an admin adds an agent (its token shown once) and runs a GC dry run before the real one; a viewer is offered neither', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, t.admin, '/ui/agents');
    await page.waitForSelector(`tr[data-agent="${AGENT}"]`);
    await page.type('#agent-name', 'files2');
    await page.click('button ::-p-text(Add agent)');
    await page.waitForSelector('#issued-token');
    const token = await page.$eval('#issued-token', (e) => (e as HTMLInputElement).value);
    expect(token).toMatch(/^hoard_agent_/);
    // The token shown is the agent's: it says hello with it.
    const hello = await fetch(`${t.url}/v1/agent/hello`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(((await hello.json()) as { agent: string }).agent).toBe('files2');
    await shots.save(page, 'agents');
    await page.click('button ::-p-text(I have stored it)');
    expect(await page.$('#issued-token')).toBeNull();

    await page.click('nav a ::-p-text(Tasks)');
    await page.waitForSelector('button ::-p-text(Dry run)');
    expect(await page.$('button ::-p-text(Run GC now)')).toBeNull();
    await page.click('button ::-p-text(Dry run)');
    await page.waitForSelector('button ::-p-text(Run GC now)');
    expect(await textOf(page, '#gc-title + p + .actions + .notice')).toMatch(/^Dry run: would condemn \d+ pack/);
    // The real run (the default grace period keeps everything this young) is recorded as a task.
    await page.click('button ::-p-text(Run GC now)');
    await page.waitForSelector('tr[data-kind="gc"] .badge.ok');
    expect(await textOf(page, 'tr[data-kind="gc"]')).toMatch(/succeeded.*condemned 0 pack/);
    await shots.save(page, 'tasks');
    await page.browserContext().close();

    const seen = await newPage(browser);
    await signIn(seen, t.url, viewer, '/ui/tasks');
    await seen.waitForSelector('tr[data-kind="gc"]');
    expect(await seen.$('button ::-p-text(Dry run)')).toBeNull();
    expect(await seen.$('button ::-p-text(Verify now)')).toBeNull();
    await seen.click('nav a ::-p-text(Agents)');
    await seen.waitForSelector(`tr[data-agent="${AGENT}"]`);
    expect(await seen.$('#agent-name')).toBeNull();
    expect(await seen.$('button ::-p-text(Revoke)')).toBeNull();
    await seen.browserContext().close();
  });

  it('without a build, /ui says to run npm run build', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'hoard-no-console-'));
    const bare = await startConsoleServer({ consoleDir: empty });
    try {
      const res = await fetch(`${bare.url}/ui/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/not built.*run `npm run build`/);
    } finally {
      await bare.close();
      await rm(empty, { recursive: true, force: true });
    }
    // With the build: hashed assets cached for good, pages never, client routes answered with the app.
    const page = await fetch(`${t.url}/ui/jobs/${JOB}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(t.url + script);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${t.url}/ui/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${t.url}/ui/..%2f..%2fpackage.json`)).status).not.toBe(200);
  });
});
