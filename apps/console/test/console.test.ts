/**
 * The web console in a real browser against a real media server (test-support/browser.ts):
 * sign-in, what each role is offered, the CSRF checks, sign-out, live progress.
 */
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, Screenshots, signIn, startConsoleServer, type ConsoleTestServer } from '../../../test-support/browser.js';

let t: ConsoleTestServer;
let browser: Browser;
let shots: Screenshots;

beforeAll(async () => {
  [t, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
  shots = new Screenshots('console');
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('the web console', () => {
  it('signs an admin in', async () => {
    const page = await newPage(browser);
    await signIn(page, t.url, t.admin);
    const header = await page.$eval('header.top', (e) => e.textContent ?? '');
    expect(header).toContain('admin');
    await shots.save(page, 'dashboard');
  });
});
