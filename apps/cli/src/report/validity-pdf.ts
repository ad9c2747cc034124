/**
 * The validity report's PDF: its HTML page printed by a headless Chromium (Debian's
 * `chromium` package; HOARD_CHROMIUM names another binary). A real browser engine, so the
 * PDF looks like the page people check in a browser, charts included; no PDF library of
 * our own to keep in step with the HTML.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findOnPath } from '@hoard/agent';
import type { ErrorCode } from '@hoard/errors';

export class ChromiumMissingError extends Error {
  override readonly name = 'ChromiumMissingError';
  readonly code: ErrorCode = 'tool_missing';
}

export class PdfFailedError extends Error {
  override readonly name = 'PdfFailedError';
  readonly code: ErrorCode = 'work_failed';
}

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome'];

async function findChromium(): Promise<string> {
  if (process.env.HOARD_CHROMIUM) return process.env.HOARD_CHROMIUM;
  const found = CANDIDATES.find((name) => findOnPath(name, process.env));
  if (found) return found;
  throw new ChromiumMissingError(
    "a PDF needs a headless Chromium: install Debian's chromium package (apt-get install chromium) or set HOARD_CHROMIUM; --format html gives the same report without it",
  );
}

/** Prints `html` to the PDF file `out`. */
export async function writePdf(html: string, out: string): Promise<void> {
  const chromium = await findChromium();
  const dir = await mkdtemp(join(tmpdir(), 'hoard-report-'));
  try {
    const page = join(dir, 'report.html');
    await writeFile(page, html);
    const target = resolve(out);
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-pdf-header-footer',
      `--user-data-dir=${join(dir, 'profile')}`,
      `--print-to-pdf=${target}`,
      `file://${page}`,
    ];
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
      const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (t: string) => {
        err = (err + t).slice(-2000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        fail(new ChromiumMissingError(`${chromium} could not start: ${e.message}`));
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        done({ code: c, stderr: err });
      });
    });
    const written = await stat(target).then(
      (s) => s.size,
      () => 0,
    );
    if (code !== 0 || written === 0)
      throw new PdfFailedError(`${chromium} did not write ${target} (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
