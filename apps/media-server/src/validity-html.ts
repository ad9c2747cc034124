/**
 * The backup-validity report as one self-contained HTML page (no scripts, no external
 * files): a summary table, a success timeline per job (one square per day), the
 * repository's stored bytes over the period with the capacity forecast, per store its
 * stored bytes and dedup over the period with its own forecast, and each job's findings. The PDF is this page printed by a headless Chromium (report-pdf.ts).
 */
import type { DayState, JobValidity, StoreHistory, ValidityReport } from '@hoard/protocol';

const COLORS: Record<DayState, string> = { ok: '#2e7d32', failed: '#c62828', mixed: '#f9a825', missed: '#6a1b9a', none: '#e0e0e0' };
const LABELS: Record<DayState, string> = {
  ok: 'all runs succeeded',
  failed: 'runs failed',
  mixed: 'some failed',
  missed: 'planned, not run',
  none: 'nothing planned or run',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

const day = (iso: string | null | undefined): string => (iso ? iso.slice(0, 16).replace('T', ' ') : '-');

function timeline(job: JobValidity): string {
  const size = 9;
  const gap = 2;
  const width = job.days.length * (size + gap);
  const cells = job.days
    .map(
      (d, i) =>
        `<rect x="${i * (size + gap)}" y="0" width="${size}" height="${size}" fill="${COLORS[d.state]}"><title>${d.day}: ${LABELS[d.state]}</title></rect>`,
    )
    .join('');
  return `<svg class="timeline" width="${width}" height="${size}" viewBox="0 0 ${width} ${size}" role="img" aria-label="success timeline of ${escapeHtml(job.job)}">${cells}</svg>`;
}

function storageChart(report: ValidityReport): string {
  const points = report.storage.history;
  if (points.length === 0) return '<p>No stored bytes recorded in the period.</p>';
  const w = 640;
  const h = 200;
  const pad = 40;
  const quota = report.storage.quotaBytes;
  const perDay = report.storage.bytesPerDay ?? 0;
  const forecastDays = 30;
  const last = points[points.length - 1]!.storedBytes;
  const forecastEnd = last + perDay * forecastDays;
  const max = Math.max(1, ...points.map((p) => p.storedBytes), forecastEnd, quota ?? 0);
  const n = points.length - 1 + forecastDays;
  const x = (i: number) => pad + (i / Math.max(1, n)) * (w - 2 * pad);
  const y = (v: number) => h - pad / 2 - (v / max) * (h - pad);
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.storedBytes).toFixed(1)}`).join(' ');
  const parts = [
    `<polyline fill="none" stroke="#1565c0" stroke-width="2" points="${line}"/>`,
    `<line x1="${x(points.length - 1).toFixed(1)}" y1="${y(last).toFixed(1)}" x2="${x(n).toFixed(1)}" y2="${y(forecastEnd).toFixed(1)}" stroke="#1565c0" stroke-dasharray="5,4"/>`,
    `<text x="4" y="${y(max) + 4}" font-size="10">${formatBytes(max)}</text>`,
    `<text x="4" y="${h - pad / 2}" font-size="10">0</text>`,
    `<text x="${pad}" y="${h - 4}" font-size="10">${points[0]!.day}</text>`,
    `<text x="${x(n) - 90}" y="${h - 4}" font-size="10">forecast +${forecastDays} d</text>`,
  ];
  if (quota !== null)
    parts.push(
      `<line x1="${pad}" y1="${y(quota)}" x2="${w - pad}" y2="${y(quota)}" stroke="#c62828" stroke-dasharray="2,2"/><text x="${w - pad - 80}" y="${y(quota) - 4}" font-size="10" fill="#c62828">quota ${formatBytes(quota)}</text>`,
    );
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="stored bytes over time">${parts.join('')}</svg>`;
}

const FORECAST_DAYS = 30;

/**
 * One store: stored bytes (left axis, blue, the dashed line the 30-day forecast at the
 * store's growth trend) and dedup (right axis, green) day by day.
 */
export function storeChart(store: StoreHistory): string {
  const points = store.history;
  if (points.length === 0) return `<p>${escapeHtml(store.name)}: no sessions in the period.</p>`;
  const w = 640;
  const h = 180;
  const pad = 48;
  const last = points[points.length - 1]!.storedBytes;
  const forecastEnd = last + Math.max(0, store.bytesPerDay ?? 0) * FORECAST_DAYS;
  const maxBytes = Math.max(1, ...points.map((p) => p.storedBytes), forecastEnd);
  const dedups = points.map((p) => p.dedupFactor).filter((d): d is number => d !== null);
  const maxDedup = Math.max(1, ...dedups);
  const n = points.length - 1 + FORECAST_DAYS;
  const x = (i: number) => pad + (i / Math.max(1, n)) * (w - 2 * pad);
  const yBytes = (v: number) => h - pad / 2 - (v / maxBytes) * (h - pad);
  const yDedup = (v: number) => h - pad / 2 - (v / maxDedup) * (h - pad);
  const stored = points.map((p, i) => `${x(i).toFixed(1)},${yBytes(p.storedBytes).toFixed(1)}`).join(' ');
  const dedup = points
    .map((p, i) => (p.dedupFactor === null ? null : `${x(i).toFixed(1)},${yDedup(p.dedupFactor).toFixed(1)}`))
    .filter((p) => p !== null)
    .join(' ');
  const parts = [
    `<polyline class="stored" fill="none" stroke="#1565c0" stroke-width="2" points="${stored}"/>`,
    `<line class="forecast" x1="${x(points.length - 1).toFixed(1)}" y1="${yBytes(last).toFixed(1)}" x2="${x(n).toFixed(1)}" y2="${yBytes(forecastEnd).toFixed(1)}" stroke="#1565c0" stroke-dasharray="5,4"/>`,
    dedup ? `<polyline class="dedup" fill="none" stroke="#2e7d32" stroke-width="1.5" points="${dedup}"/>` : '',
    `<text x="4" y="${yBytes(maxBytes) + 4}" font-size="10" fill="#1565c0">${formatBytes(maxBytes)}</text>`,
    `<text x="4" y="${h - pad / 2}" font-size="10">0</text>`,
    `<text x="${w - pad + 4}" y="${yDedup(maxDedup) + 4}" font-size="10" fill="#2e7d32">${maxDedup.toFixed(1)}x</text>`,
    `<text x="${pad}" y="${h - 4}" font-size="10">${points[0]!.day}</text>`,
    `<text x="${x(n) - 90}" y="${h - 4}" font-size="10">forecast +${FORECAST_DAYS} d</text>`,
  ];
  const growth = store.bytesPerDay === null ? 'no trend yet' : `${formatBytes(Math.max(0, store.bytesPerDay))} per day`;
  return `<figure class="store"><figcaption>${escapeHtml(store.name)}: stored ${formatBytes(store.storedBytes)}, dedup ${store.dedupFactor}x, growth ${growth}; <span style="color:#1565c0">stored bytes</span> (dashed: forecast), <span style="color:#2e7d32">dedup</span></figcaption><svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="stored bytes and dedup of store ${escapeHtml(store.name)}">${parts.join('')}</svg></figure>`;
}

function drillLine(j: JobValidity): string {
  const d = j.drills.last;
  if (!d) return '';
  const db = d.database;
  const into = db
    ? ` into scratch database ${escapeHtml(db.database)} on ${escapeHtml(db.server)} (${escapeHtml(db.tool)}); query <code>${escapeHtml(db.query)}</code> returned ${db.rows ?? '-'} row(s)${db.firstRow !== null ? `, first: ${escapeHtml(db.firstRow)}` : ''}`
    : ' into nothing, every chunk checked';
  return `<p>Last restore drill ${day(d.at)}: ${d.ok ? `passed, snapshot ${escapeHtml(d.snapshot ?? '-')} restored${into}` : `FAILED: ${escapeHtml(d.error ?? 'unknown error')}`}.</p>`;
}

export function renderValidityHtml(report: ValidityReport): string {
  const rows = report.jobs
    .map((j) => {
      const retention = j.retention.length === 0 ? '-' : j.retention.every((r) => r.ok) ? 'complies' : 'gaps';
      const drill = j.drills.last ? `${j.drills.last.ok ? 'passed' : 'FAILED'} ${day(j.drills.last.at)}` : 'none';
      return `<tr class="${j.ok ? 'ok' : 'bad'}"><td>${escapeHtml(j.job)}</td><td>${escapeHtml(j.policy ?? '-')}</td><td>${j.planned}</td><td>${j.runs}</td><td>${j.succeeded}</td><td>${j.successRate === null ? '-' : `${(j.successRate * 100).toFixed(1)} %`}</td><td>${j.lastGood ? `${day(j.lastGood.at)} (${j.lastGood.snapshot})` : 'none'}</td><td>${retention}</td><td>${j.verify.runs} run(s), ${j.verify.findings} finding(s)</td><td>${escapeHtml(drill)}</td><td>${j.ok ? 'OK' : 'ATTENTION'}</td></tr>`;
    })
    .join('\n');
  const details = report.jobs
    .map(
      (j) => `<section class="job"><h3>${escapeHtml(j.job)}</h3>
<p>${timeline(j)}</p>
${j.retention.length > 0 ? `<p>Retention (the snapshots the policy keeps): ${j.retention.map((r) => `${escapeHtml(r.rule)}: ${r.present} of ${r.expected} present${r.ok ? '' : ` (missing ${escapeHtml((r.missing ?? []).join(', '))})`}`).join('; ')}</p>` : ''}
${drillLine(j)}
${j.problems.length > 0 ? `<ul class="problems">${j.problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>` : '<p>No findings.</p>'}
</section>`,
    )
    .join('\n');
  const legend = (Object.keys(COLORS) as DayState[])
    .map((s) => `<span><svg width="10" height="10"><rect width="10" height="10" fill="${COLORS[s]}"/></svg> ${LABELS[s]}</span>`)
    .join(' ');
  const s = report.storage;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backup validity report ${escapeHtml(report.since.slice(0, 10))} to ${escapeHtml(report.until.slice(0, 10))}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #212121; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #bdbdbd; padding: 4px 6px; text-align: left; }
tr.bad td:last-child { color: #c62828; font-weight: bold; }
tr.ok td:last-child { color: #2e7d32; font-weight: bold; }
.verdict { font-size: 18px; font-weight: bold; }
.legend span { margin-right: 1em; font-size: 11px; }
section.job { page-break-inside: avoid; }
</style></head>
<body>
<h1>Backup validity report</h1>
<p>Server ${escapeHtml(report.server)}. Period ${day(report.since)} to ${day(report.until)} UTC (${report.jobs[0]?.days.length ?? 0} days). Generated ${day(report.generatedAt)} UTC.</p>
<p class="verdict">${report.ok ? 'Every job complies.' : `${report.jobs.filter((j) => !j.ok).length} of ${report.jobs.length} job(s) need attention.`}</p>
<h2>Jobs</h2>
<table><thead><tr><th>job</th><th>policy</th><th>planned</th><th>runs</th><th>succeeded</th><th>success</th><th>last good snapshot (UTC)</th><th>retention</th><th>verify</th><th>restore drill</th><th>status</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Success timeline</h2>
<p class="legend">${legend}</p>
${details}
<h2>Storage</h2>
<p>Stored ${formatBytes(s.storedBytes)} for ${formatBytes(s.logicalBytes)} of backups (dedup ${s.dedupFactor}x). ${s.bytesPerDay !== null ? `Growth ${formatBytes(Math.max(0, s.bytesPerDay))} per day.` : ''} ${s.quotaBytes !== null ? `Quota ${formatBytes(s.quotaBytes)}; ${s.fillAt ? `full by ${day(s.fillAt)} at this rate` : 'no fill date at this rate'}.` : 'No quota set.'}</p>
${storageChart(report)}
${(s.stores ?? []).length > 0 ? `<h2>Stores</h2>\n${(s.stores ?? []).map(storeChart).join('\n')}` : ''}
</body></html>
`;
}
