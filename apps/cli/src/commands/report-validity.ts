/**
 * `hoard report validity [--since 90d] [--format text|json|html|pdf] [--out FILE] [--drill]`:
 * the backup-validity report (docs/cli.md, "report validity"). `--drill` first runs a
 * restore drill of every job on the server (its newest snapshot restored and checked,
 * nothing written), so the report shows today's drill.
 */
import { writeFile } from 'node:fs/promises';
import { formatBytes } from '@hoard/chunker';
import type { ValidityReport } from '@hoard/protocol';
import { UsageError } from '../errors.js';
import { renderValidityHtml } from '@hoard/media-server';
import { writePdf } from '../report/validity-pdf.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';

export interface ValidityOptions extends ServerOptions {
  since?: string;
  format?: 'text' | 'json' | 'html' | 'pdf';
  out?: string;
  drill?: boolean;
  job?: string[];
}

export async function runValidityReport(options: ValidityOptions, out: (line: string) => void): Promise<void> {
  const since = options.since ?? '90d';
  if (!/^[1-9][0-9]{0,3}d$/.test(since)) throw new UsageError(`--since ${since}: give a number of days, e.g. --since 90d (1d to 9999d)`);
  const format = options.format ?? 'text';
  if (format === 'pdf' && options.out === undefined) throw new UsageError('--format pdf needs --out FILE (a PDF is not written to a terminal)');
  const client = await serverClient(options);
  if (options.drill) {
    const { drills } = await client.api.runDrills({ body: options.job ? { jobs: options.job } : {} });
    for (const d of drills)
      process.stderr.write(
        `restore drill ${d.job}: ${d.ok ? `snapshot ${d.snapshot} restored and checked, ${d.bytes} bytes in ${((d.ms ?? 0) / 1000).toFixed(1)} s${d.database ? `, into ${d.database.database} on ${d.database.server}; the query returned ${d.database.rows} row(s)` : ''}` : `FAILED: ${d.error}`}\n`,
      );
  }
  const report = await client.api.validityReport({ query: { since } });
  if (options.job) report.jobs = report.jobs.filter((j) => options.job!.includes(j.job));
  const emit = async (text: string): Promise<void> => {
    if (options.out === undefined) return out(text.replace(/\n$/, ''));
    await writeFile(options.out, text);
    process.stderr.write(`report written to ${options.out}\n`);
  };
  if (format === 'json') return emit(`${JSON.stringify(report, null, 2)}\n`);
  if (format === 'html') return emit(renderValidityHtml(report));
  if (format === 'pdf') {
    await writePdf(renderValidityHtml(report), options.out!);
    process.stderr.write(`report written to ${options.out}\n`);
    return;
  }
  return emit(`${textReport(report)}\n`);
}

function textReport(r: ValidityReport): string {
  const lines = [
    `backup validity ${r.since.slice(0, 10)} to ${r.until.slice(0, 10)} (UTC), server ${r.server}: ${r.ok ? 'every job complies' : `${r.jobs.filter((j) => !j.ok).length} of ${r.jobs.length} job(s) need attention`}`,
    renderTable(
      ['job', 'policy', 'planned', 'runs', 'ok', 'last good (UTC)', 'retention', 'verify', 'drill', 'status'],
      r.jobs.map((j) => [
        j.job,
        j.policy ?? '-',
        String(j.planned),
        String(j.runs),
        String(j.succeeded),
        j.lastGood ? j.lastGood.at.slice(0, 16).replace('T', ' ') : 'none',
        j.retention.length === 0 ? '-' : j.retention.every((x) => x.ok) ? 'complies' : 'gaps',
        `${j.verify.runs} run(s), ${j.verify.findings} finding(s)`,
        j.drills.last ? (j.drills.last.ok ? 'passed' : 'FAILED') : 'none',
        j.ok ? 'ok' : 'ATTENTION',
      ]),
    ),
  ];
  for (const j of r.jobs) for (const p of j.problems) lines.push(`  ${j.job}: ${p}`);
  for (const s of r.storage.stores ?? []) {
    const growth = s.bytesPerDay === null ? 'no trend yet' : `${formatBytes(Math.max(0, s.bytesPerDay))} per day`;
    lines.push(`store ${s.name}: stored ${formatBytes(s.storedBytes)}, dedup ${s.dedupFactor}x, growth ${growth}`);
  }
  return lines.join('\n');
}
