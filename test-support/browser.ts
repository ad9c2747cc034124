/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser: the test files that use this harness name DOM types.)
/**
 * Browser tests of the web console (apps/console/test): a headless Chromium from Debian's
 * `chromium` package (scripts/ensure-test-deps.sh installs it; HOARD_CHROMIUM names
 * another binary) driven by puppeteer-core, which downloads no browser of its own, and a
 * real media server on a temp repository serving the built console under /ui.
 *
 * One browser per test file (launchBrowser in beforeAll), a fresh incognito context per
 * test (newPage), so cookies never leak from one test's sign-in into another's.
 */
import { accessSync, constants, mkdirSync, mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { MediaServer, type MediaServerOptions } from '../apps/media-server/dist/index.js';
import { FsObjectStore, Repository } from '../packages/repository/dist/index.js';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome'];

/** The Chromium binary: HOARD_CHROMIUM, else the first candidate on PATH. */
export function findChromium(): string {
  if (process.env.HOARD_CHROMIUM) return process.env.HOARD_CHROMIUM;
  for (const name of CANDIDATES) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  throw new Error("the console tests need a headless Chromium: install Debian's chromium package (scripts/ensure-test-deps.sh does) or set HOARD_CHROMIUM");
}

/** A headless Chromium for one test file; close it in afterAll. */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'hoard-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: findChromium(),
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--lang=en-US'],
    env: { ...process.env, TZ: process.env.TZ ?? 'Europe/Berlin' },
  });
  // Chromium may still be writing its profile as it goes: retry, and never fail a test over a temp dir.
  browser.once('disconnected', () => void rm(profile, { recursive: true, force: true, maxRetries: 5 }).catch(() => undefined));
  return browser;
}

/** A page in a fresh browser context (no cookies from other tests), laptop-sized unless told. */
export async function newPage(browser: Browser, viewport = { width: 1366, height: 900 }): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport(viewport);
  page.setDefaultTimeout(30_000);
  // A page error fails loudly in the test output instead of leaving a blank page to puzzle over.
  page.on('pageerror', (err) => process.stderr.write(`console page error: ${err instanceof Error ? err.message : String(err)}\n`));
  return page;
}

/**
 * Where screenshots go: HOARD_SCREENSHOTS when set (e.g. docs/console to refresh the
 * documentation's pictures), else a temp directory, printed once.
 */
export class Screenshots {
  readonly dir: string;

  constructor(name: string) {
    const wanted = process.env.HOARD_SCREENSHOTS;
    if (wanted) {
      mkdirSync(wanted, { recursive: true });
      this.dir = wanted;
    } else this.dir = mkdtempSync(join(tmpdir(), `hoard-${name}-shots-`));
    process.stdout.write(`console screenshots: ${this.dir}\n`);
  }

  async save(page: Page, name: string): Promise<string> {
    const path = join(this.dir, `${name}.png`);
    await page.screenshot({ path: path as `${string}.png`, fullPage: true });
    return path;
  }
}

export interface ConsoleTestServer {
  server: MediaServer;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The first admin token. */
  admin: string;
  /** A new API token of `role`. */
  token(role: 'admin' | 'operator' | 'viewer', label?: string): Promise<string>;
  /** A new agent and its token. */
  agent(name: string): Promise<string>;
  /** One JSON call with a Bearer token; throws on an error status. */
  call<T = Record<string, unknown>>(method: string, path: string, token: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

/** A media server on a temp filesystem repository, scheduler off unless asked, serving the console. */
export async function startConsoleServer(options: Partial<Omit<MediaServerOptions, 'repo' | 'catalogDir'>> = {}): Promise<ConsoleTestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hoard-console-'));
  const objects = await FsObjectStore.open(join(dir, 'repo'), { create: true });
  const repo = await Repository.init(objects, { scryptCost: { N: 1024, r: 8, p: 1 } });
  const { server, adminToken } = await MediaServer.start({
    repo,
    catalogDir: join(dir, 'catalog'),
    port: 0,
    logLevel: 'silent',
    scheduler: false,
    ...options,
  });
  const url = server.url;
  const call = async <T>(method: string, path: string, token: string, body?: unknown): Promise<T> => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return (text === '' ? {} : JSON.parse(text)) as T;
  };
  const admin = adminToken!;
  return {
    server,
    url,
    admin,
    call,
    token: async (role, label = `${role} of the console test`) => (await call<{ token: string }>('POST', '/v1/tokens', admin, { role, label })).token,
    agent: async (name) => (await call<{ token: string }>('POST', '/v1/agents', admin, { name })).token,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens the console and signs in with `token`; resolves when the signed-in shell shows. */
export async function signIn(page: Page, url: string, token: string, path = '/ui/'): Promise<void> {
  await page.goto(url + path, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#token');
  await page.type('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('header.top nav');
}
