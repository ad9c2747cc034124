/**
 * `hoard report validity` through the built CLI against a media server process: a real
 * run, a restore drill on the server (--drill), and the report as text, JSON, HTML and PDF.
 * The PDF (printed by Debian's headless chromium) is checked by rendering its first page
 * with pdftoppm and reading its text with pdftotext.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ValidityReport } from '@hoard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

const run = promisify(execFile);
let server: ServerProcess;
let dir: string;

const admin = (args: string[]) =>
  hoardCli([...args, '--server', server.url, '--token', server.adminToken], {
    env: { HOARD_SERVER: '', HOARD_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'no-config') },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-validity-cli-'));
  server = await startServerProcess();
  await server.addAgent('box1');
  const source = join(dir, 'source.bin');
  await writeFile(source, Buffer.alloc(200_000, 'validity report test data '));
  const done = await admin(['run', '--agent', 'box1', '--job', 'files', '--source', `file:${source}`, '--json']);
  expect(done.stderr).toBe('');
  expect(done.code).toBe(0);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('hoard report validity', () => {
  it('--drill then JSON: the run, the last good snapshot and a passed drill', async () => {
    const r = await admin(['report', 'validity', '--since', '7d', '--drill', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^restore drill files: snapshot [0-9a-f]{16} restored and checked, 200000 bytes in/m);
    const report = JSON.parse(r.stdout) as ValidityReport;
    const [job] = report.jobs;
    expect(job).toMatchObject({
      job: 'files',
      agent: 'box1',
      policy: null,
      runs: 1,
      succeeded: 1,
      failed: 0,
      drills: { runs: 1, failed: 0, last: { ok: true } },
    });
    expect(job!.lastGood?.snapshot).toBe(job!.drills.last?.snapshot);
    expect(job!.days).toHaveLength(7);
    expect(job!.days.at(-1)!.state).toBe('ok');
  });

  it('text and HTML name the job, its last good snapshot and the drill', async () => {
    const text = await admin(['report', 'validity', '--since', '7d']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^backup validity .* server http:\/\/127\.0\.0\.1:\d+: every job complies/);
    expect(text.stdout).toMatch(/files .* passed .* ok/);
    const out = join(dir, 'report.html');
    const html = await admin(['report', 'validity', '--since', '7d', '--format', 'html', '--out', out]);
    expect(html.code).toBe(0);
    const page = await readFile(out, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<td>files</td>');
    expect(page).toContain('Every job complies.');
    expect(page).toContain('aria-label="success timeline of files"');
    // Per store: stored bytes with its forecast line and dedup, day by day.
    expect(page).toContain('<h2>Stores</h2>');
    expect(page).toContain('aria-label="stored bytes and dedup of store global"');
    expect(page).toMatch(/<polyline class="stored" [^>]*points="[\d., ]+"/);
    expect(page).toMatch(/<polyline class="dedup" [^>]*points="[\d., ]+"/);
    expect(page).toContain('class="forecast"');
    expect(text.stdout).toMatch(/^store global: stored [\d.]+ (B|KiB|MiB), dedup [\d.]+x, growth /m);
    expect(page).toMatch(/Last restore drill .*: passed, snapshot [0-9a-f]{16} restored into nothing, every chunk checked\./);
  });

  it('JSON: each store stored bytes and dedup day by day, from its sessions', async () => {
    const r = await admin(['report', 'validity', '--since', '7d', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ValidityReport;
    const store = report.storage.stores?.find((s) => s.name === 'global');
    expect(store).toBeDefined();
    const today = store!.history.at(-1)!;
    expect(today.day).toBe(report.until.slice(0, 10));
    // One run of 200 000 bytes of repeated text: stored far less than read; dedup = read / new = 1 here or more.
    expect(today.storedBytes).toBeGreaterThan(0);
    expect(today.storedBytes).toBeLessThan(200_000);
    expect(today.dedupFactor).toBeGreaterThanOrEqual(1);
    expect(store!.storedBytes).toBeGreaterThan(0);
  });

  it('PDF: printed by headless chromium; its page renders and reads back', async () => {
    const pdf = join(dir, 'report.pdf');
    const r = await admin(['report', 'validity', '--since', '30d', '--format', 'pdf', '--out', pdf]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`report written to ${pdf}`);
    expect((await readFile(pdf)).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    await run('pdftoppm', ['-png', '-r', '40', '-f', '1', '-l', '1', pdf, join(dir, 'page')]);
    const png = join(dir, 'page-1.png');
    expect((await stat(png)).size).toBeGreaterThan(2000);
    const { stdout } = await run('pdftotext', ['-layout', pdf, '-']);
    expect(stdout).toContain('Backup validity report');
    expect(stdout).toContain('files');
    expect(stdout).toContain('Every job complies.');
    expect(stdout).toContain('Stores');
    expect(stdout).toMatch(/global: stored .* dedup/);
  });

  it('bad input is exit 2 in one line', async () => {
    for (const [args, message] of [
      [['report', 'validity', '--since', '3 months'], /--since 3 months: give a number of days, e.g. --since 90d/],
      [['report', 'validity', '--format', 'pdf'], /--format pdf needs --out FILE/],
      [['report', 'validity', '--format', 'docx'], /argument 'docx' is invalid/],
    ] as [string[], RegExp][]) {
      const r = await admin(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  });
});
