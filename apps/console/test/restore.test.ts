/// <reference lib="dom" />
/**
 * The restore pages of the web console in a real browser (test-support/browser.ts) against
 * a real media server and a real agent (in-process AgentDaemon, backing up real files):
 * the wizard's point-in-time preview picks the snapshot `hoard restore --at` would, a file
 * downloaded from a directory snapshot through Chromium's own download is byte-identical,
 * an image restored onto the agent through the wizard is byte-identical, a policy with an
 * error shows the message at its line, and a viewer is offered none of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, Screenshots, signIn, startConsoleServer, type ConsoleTestServer } from '../../../test-support/browser.js';
import { startPostgres, type RunningPostgres } from '../../../test-support/postgres.js';
import { AgentDaemon } from '../../agent/dist/index.js';

let t: ConsoleTestServer;
let browser: Browser;
let shots: Screenshots;
let agent: AgentDaemon;
let work: string;
let operator: string;
let viewer: string;
/** What the agent's clock says: each backup is stamped with the time the test sets. */
let now = Date.parse('2026-03-01T10:00:00Z');
const images: { id: string; bytes: Buffer }[] = [];
let dirSnapshot: string;
let dataBin: Buffer;
let pg: RunningPostgres;

interface Run {
  id: string;
  state: string;
  error?: string;
  targets: { ok: boolean; error?: string; snapshot?: { id: string } }[];
}

/** Queues a backup run on the agent and waits for its end; returns the snapshot id. */
async function backup(job: string, source: string): Promise<string> {
  let run = await t.call<Run>('POST', '/v1/runs', t.admin, { agent: 'files1', job, sources: [source] });
  while (run.state === 'queued' || run.state === 'running') run = await t.call<Run>('GET', `/v1/runs/${run.id}?wait=10`, t.admin);
  expect(run.state, run.error ?? run.targets[0]?.error).toBe('succeeded');
  return run.targets[0]!.snapshot!.id;
}

beforeAll(async () => {
  [t, browser, pg] = await Promise.all([startConsoleServer(), launchBrowser(), startPostgres()]);
  shots = new Screenshots('console-restore');
  work = await mkdtemp(join(tmpdir(), 'hoard-console-restore-'));
  operator = await t.token('operator');
  viewer = await t.token('viewer');
  // The agent's host knows the database password; no URL the server sees carries it.
  const env = { ...process.env, PGPASSWORD: pg.password };
  agent = new AgentDaemon({ server: t.url, token: await t.agent('files1'), workers: 0, clock: () => now, env });
  await agent.start();

  // Two snapshots of an image, two days apart (by the agent's clock).
  const image = join(work, 'disk.img');
  for (const stamp of ['2026-03-01T10:00:00Z', '2026-03-03T10:00:00Z']) {
    now = Date.parse(stamp);
    const bytes = randomBytes(300_000);
    await writeFile(image, bytes);
    images.push({ id: await backup('vm-disk', `file:${image}`), bytes });
  }
  // A directory tree.
  const tree = join(work, 'www');
  await mkdir(join(tree, 'assets'), { recursive: true });
  dataBin = randomBytes(200_000);
  await writeFile(join(tree, 'assets', 'data.bin'), dataBin);
  await writeFile(join(tree, 'index.html'), '<h1>hello</h1>\n');
  now = Date.parse('2026-03-04T10:00:00Z');
  dirSnapshot = await backup('www', `dir:${tree}`);
  // A PostgreSQL database and its dump.
  await pg.createDatabase('shop');
  await pg.psql("CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 500) g;", 'shop');
  now = Date.parse('2026-03-05T10:00:00Z');
  await backup('shop', `postgres://postgres@127.0.0.1:${pg.port}/shop`);
});

afterAll(async () => {
  await browser?.close();
  await agent?.close();
  await t?.close();
  await pg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Sets a datetime-local input (the browser's zone, Europe/Berlin in these tests). */
async function setTime(page: Page, selector: string, local: string): Promise<void> {
  await page.$eval(
    selector,
    (el, value) => {
      const input = el as HTMLInputElement;
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    local,
  );
}

const pickedText = (page: Page): Promise<string> => page.$eval('#picked', (e) => e.textContent ?? '');

describe('the restore pages', () => {
  it('the wizard shows which snapshot a time between two snapshots picks, as --at would', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, operator, '/ui/restore?job=vm-disk');
    await page.waitForFunction(() => document.querySelector('#picked')?.textContent?.includes('Picks snapshot'));
    // Newest by default.
    expect(await pickedText(page)).toContain(images[1]!.id);
    // 2026-03-02 12:00 in Berlin: after the first snapshot, before the second.
    await setTime(page, '#restore-at', '2026-03-02T12:00:00');
    await page.waitForFunction((id) => document.querySelector('#picked')?.textContent?.includes(id), {}, images[0]!.id);
    expect(await pickedText(page)).toMatch(/newest snapshot that started at or before 2026-03-02T11:00:00.000Z/);
    await shots.save(page, 'restore-wizard');
    // Before the first: the server's message, not a snapshot.
    await setTime(page, '#restore-at', '2026-02-01T00:00:00');
    await page.waitForFunction(() => document.querySelector('#picked')?.textContent?.includes('no snapshot at or before'));
    await page.close();
  });

  it('Browse lists a directory snapshot and downloads one file through the browser, byte-identical', async () => {
    const downloads = join(work, 'downloads');
    await mkdir(downloads);
    // Chromium's own download (no fetch from the test): a context that saves downloads here.
    const context = await browser.createBrowserContext({ downloadBehavior: { policy: 'allow', downloadPath: downloads } });
    const page = await context.newPage();
    await page.setViewport({ width: 1366, height: 900 });
    await signIn(page, t.url, operator, `/ui/browse/www/${dirSnapshot}`);
    await page.waitForSelector('tr[data-path="assets"] a');
    await page.click('tr[data-path="assets"] a');
    await page.waitForSelector('tr[data-path="assets/data.bin"] a.download-file');
    await shots.save(page, 'browse');
    await page.click('tr[data-path="assets/data.bin"] a.download-file');
    let got: Buffer | undefined;
    for (let i = 0; i < 300 && !got; i++) {
      const names = await readdir(downloads);
      if (names.includes('data.bin')) got = await readFile(join(downloads, 'data.bin'));
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(got, 'the browser saved data.bin').toBeDefined();
    expect(got!.equals(dataBin)).toBe(true);
    await context.close();
  });

  it('the wizard restores an image onto the agent and names the snapshot and the checks', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, operator, '/ui/restore?job=vm-disk');
    await setTime(page, '#restore-at', '2026-03-02T12:00:00');
    await page.waitForFunction((id) => document.querySelector('#picked')?.textContent?.includes(id), {}, images[0]!.id);
    await page.click('input[name=restore-target][value=agent]');
    await page.waitForSelector('#restore-agent option[value=files1]');
    const target = join(work, 'restored.img');
    await page.type('#restore-path', target);
    await page.click('#restore-start');
    await page.waitForSelector('#restore-result', { timeout: 60_000 });
    const result = await page.$eval('#restore-result', (e) => e.textContent ?? '');
    expect(result).toContain(`Restored snapshot ${images[0]!.id} to ${target}`);
    expect(result).toContain('whole-stream hash');
    expect((await readFile(target)).equals(images[0]!.bytes)).toBe(true);
    await shots.save(page, 'restore-onto-agent');
    await page.close();
  });

  it('the wizard restores a PostgreSQL dump into a new database through a restore run on the agent', async () => {
    await pg.createDatabase('shop_copy');
    const page = await newPage(browser);
    await signIn(page, t.url, operator, '/ui/restore?job=shop');
    await page.waitForFunction(() => document.querySelector('#picked')?.textContent?.includes('Picks snapshot'));
    await page.click('input[name=restore-target][value=database]');
    await page.waitForSelector('#restore-agent option[value=files1]');
    await page.type('#restore-database', `postgres://postgres@127.0.0.1:${pg.port}/shop_copy`);
    await page.click('#restore-start');
    await page.waitForSelector('#restore-result', { timeout: 60_000 });
    expect(await page.$eval('#restore-result', (e) => e.textContent ?? '')).toMatch(
      new RegExp(`Restored snapshot [0-9a-f]{16} to postgres://127\\.0\\.0\\.1:${pg.port}/shop_copy .*before the database tool was told the dump was complete`),
    );
    expect(await pg.psql('SELECT count(*), sum(id) FROM orders', 'shop_copy')).toBe('500|125250');
    await shots.save(page, 'restore-into-database');
    // A password in the URL is refused: run records are shown to every reader.
    const refused = await fetch(`${t.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent: 'files1', job: 'shop', restore: { database: `postgres://postgres:${pg.password}@127.0.0.1:${pg.port}/shop_copy` } }),
    });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(/must not carry a password/);
    await page.close();
  });

  it('the policy editor shows a message at the line of the offending key, and the diff of a valid change', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, t.admin, '/ui/policies');
    const bad = [
      'name: web',
      'sources:',
      '  - agents: [files1]',
      '    specs: ["cmd:true"]',
      'schedule: {timezone: UTC, full: "0 1 * * 0"}',
      'retention:',
      '  keep-dayly: 7',
      '',
    ].join('\n');
    await page.waitForSelector('#policy-text');
    await page.$eval(
      '#policy-text',
      (el, value) => {
        const area = el as HTMLTextAreaElement;
        area.value = value;
        area.dispatchEvent(new Event('input', { bubbles: true }));
      },
      bad,
    );
    await page.click('#policy-check');
    await page.waitForSelector('#problem-line-7');
    expect(await page.$eval('#problem-line-7', (e) => e.textContent ?? '')).toMatch(/\^ unknown key "keep-dayly"; did you mean "keep-daily"\?/);
    expect(await page.$$eval('tr.problem', (rows) => rows.map((r) => r.getAttribute('data-line')))).toEqual(['7']);
    await shots.save(page, 'policy-editor');
    // The fix checks clean, shows the new policy as added lines, and applies.
    await page.$eval(
      '#policy-text',
      (el, value) => {
        const area = el as HTMLTextAreaElement;
        area.value = value;
        area.dispatchEvent(new Event('input', { bubbles: true }));
      },
      bad.replace('keep-dayly', 'keep-daily'),
    );
    await page.click('#policy-check');
    await page.waitForSelector('#policy-ok');
    expect(await page.$eval('.policy-diff h2', (e) => e.textContent)).toBe('web: would be created');
    await page.click('#policy-apply');
    await page.waitForSelector('#policy-applied');
    expect(await page.$eval('#policy-applied', (e) => e.textContent)).toContain('policy web created');
    await page.close();
  });

  it('a viewer is offered no Restore, Browse or Policies page', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, viewer, '/ui/restore');
    const nav = await page.$eval('header.top nav', (e) => e.textContent ?? '');
    expect(nav).not.toMatch(/Restore|Policies/);
    expect(await page.$('#restore-job')).toBeNull();
    await page.goto(`${t.url}/ui/browse/www/${dirSnapshot}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('header.top nav');
    expect(await page.$('#browse-table')).toBeNull();
    await page.close();
  });
});
