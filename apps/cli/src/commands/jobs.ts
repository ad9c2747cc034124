/**
 * `hoard job list|run|cancel|history` and `hoard report`, through a media server
 * (docs/cli.md, "job" and "report"):
 *   hoard job list [--json]
 *   hoard job run JOB [--full] [--wait] [--json]
 *   hoard job cancel RUN_ID [--wait] [--json]
 *   hoard job history JOB [--limit N] [--json]
 *   hoard job delete JOB [--json]
 *   hoard job rename JOB NEW [--json]
 *   hoard report [--quota SIZE] [--growth-years N] [--json]
 */
import { formatBytes } from '@hoard/chunker';
import { replySchemas } from '@hoard/protocol/api';
import { ServerError } from '@hoard/protocol/client';
import { validateJobName } from '@hoard/repository/manifest';
import { formatDedup, formatRatio } from '../dedup.js';
import { UsageError } from '../errors.js';
import { withNulls } from '../json-output.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';
import { followRun, runJson } from './run.js';
import { localTime, zonedTime } from '../time.js';

const bytes = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : formatBytes(n));

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export async function runJobList(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { jobs } = await client.api.listJobs();
  if (options.json) return out(JSON.stringify(jobs.map((j) => withNulls(replySchemas.JobSummary, j))));
  if (jobs.length === 0) return out('no jobs yet (`hoard run --agent A --job J --source ...` or `hoard policy apply -f FILE` defines them)');
  // Next runs are a policy's: shown on its clock (the job summary does not carry the zone).
  const zones = new Map<string, string>();
  if (jobs.some((j) => j.nextRun !== null && j.policy !== null)) {
    const { policies } = await client.api.listPolicies().catch((err: unknown) => {
      if (err instanceof ServerError) return { policies: [] }; // local time then, said so
      throw err;
    });
    for (const p of policies) zones.set(p.name, p.timeZone);
  }
  out(
    renderTable(
      ['job', 'agent', 'policy', 'store', 'last run (local)', 'last success (local)', 'next run', 'snapshots', 'newest size'],
      jobs.map((j) => [
        j.job,
        j.agent ?? '-',
        j.policy ?? '-',
        j.store,
        j.lastRun ? `${j.lastRun.state} ${localTime(j.lastRun.at)}` : '-',
        j.lastSuccess ? localTime(j.lastSuccess.at) : '-',
        j.nextRun ? `${zonedTime(j.nextRun.at, j.policy === null ? undefined : zones.get(j.policy))} ${j.nextRun.kind}` : '-',
        String(j.snapshots),
        bytes(j.newestSnapshot?.logicalBytes),
      ]),
    ),
  );
}

export async function runJobRun(
  job: string,
  options: ServerOptions & { full?: boolean; wait?: boolean; json?: boolean },
  out: (line: string) => void,
): Promise<void> {
  validateJobName(job);
  const client = await serverClient(options);
  const run = await client.api.runJob({ params: { job }, body: { full: options.full === true } });
  await followRun(client, run, { wait: options.wait === true, json: options.json }, out);
}

export async function runJobCancel(id: string, options: ServerOptions & { wait?: boolean; json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  let run = await client.api.cancelRun({ params: { id } });
  if (options.wait) while (run.state === 'queued' || run.state === 'running') run = await client.api.getRun({ params: { id }, query: { wait: 5 } });
  if (options.json) return out(runJson(run));
  if (run.state === 'running') {
    const gone = run.leaseExpiresAt ? `; if the agent is gone, the server ends the run when its lease passes (${run.leaseExpiresAt}, unless renewed)` : '';
    out(
      `run ${run.id} of job ${run.job}: asked agent ${run.agent} to stop; it abandons the source it is reading within seconds (nothing of it is committed) and the run ends cancelled${gone}`,
    );
  } else out(`run ${run.id} of job ${run.job}: ${run.state}${run.error ? ` (${run.error})` : ''}`);
}

export async function runJobHistory(job: string, options: ServerOptions & { limit?: string; json?: boolean }, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  const limit = options.limit === undefined ? 20 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit ${options.limit}: give a whole number from 1 to 10000`);
  const client = await serverClient(options);
  const { entries } = await client.api.jobHistory({ params: { job }, query: { limit } });
  if (options.json) return out(JSON.stringify(entries.map((e) => withNulls(replySchemas.HistoryEntry, e))));
  if (entries.length === 0) return out(`job ${job} has no runs or tasks yet`);
  out(
    renderTable(
      ['started (local)', 'kind', 'status', 'duration', 'read', 'new', 'dedup', 'snapshot', 'error / summary', 'id'],
      entries.map((e) => [
        localTime(e.startedAt),
        e.type === 'run' ? `${e.kind} backup` : e.kind,
        e.state,
        formatDuration(e.durationMs),
        bytes(e.bytesRead),
        bytes(e.bytesNew),
        // The entry has bytes read, not the snapshots' logical bytes: a run that referred to
        // an unchanged image read nothing, yet found everything known.
        e.bytesNew === 0 && e.snapshots.length > 0 ? 'all known' : formatDedup(e.bytesRead, e.bytesNew),
        e.snapshots.length === 0 ? '-' : e.snapshots.length === 1 ? e.snapshots[0]! : `${e.snapshots[0]} +${e.snapshots.length - 1}`,
        e.error ?? e.summary ?? '',
        e.id,
      ]),
    ),
  );
}

/** `hoard job delete JOB`: the job's definition goes; its snapshots stay under its name. */
export async function runJobDelete(job: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  const client = await serverClient(options);
  const deleted = await client.api.deleteJob({ params: { job } });
  if (options.json) return out(JSON.stringify(deleted));
  const kept = deleted.snapshotsKept === 1 ? 'its snapshot stays' : `its ${deleted.snapshotsKept} snapshots stay`;
  out(
    `job ${deleted.job} deleted: ${deleted.snapshotsKept === 0 ? 'it had no snapshots' : `${kept}, listed and restorable as job ${deleted.job} (\`hoard snapshots --job ${deleted.job}\`) until \`hoard prune --repo R --job ${deleted.job}\` forgets them`}`,
  );
}

/** `hoard job rename JOB NEW`: the next runs are NEW's; snapshots made before keep the name JOB. */
export async function runJobRename(job: string, name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  validateJobName(name);
  if (name === job) throw new UsageError(`job ${job} has that name already: give a new name`);
  const client = await serverClient(options);
  const renamed = await client.api.renameJob({ params: { job }, body: { name } });
  if (options.json) return out(JSON.stringify(renamed));
  const old = renamed.snapshotsUnderOldName;
  out(
    `job ${renamed.renamedFrom} renamed to ${renamed.job}: its next runs make snapshots of job ${renamed.job}` +
      (old === 0
        ? ''
        : `; ${old === 1 ? 'the snapshot made before keeps' : `the ${old} snapshots made before keep`} the old name: listed and restorable as job ${renamed.renamedFrom} (\`hoard restore ${renamed.renamedFrom} ...\`)`),
  );
}

// --- report -------------------------------------------------------------------------------

const UNITS: Record<string, number> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  PB: 1e15,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
  PiB: 2 ** 50,
};

/** `--quota`: bytes, or a number and a unit (`10TB`, `500 GiB`, `1.5TiB`); kB..PB are powers of 1000, KiB..PiB of 1024. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const factor = m ? (m[2] === '' ? 1 : UNITS[m[2]!]) : undefined;
  if (!m || factor === undefined)
    throw new UsageError(`--quota ${JSON.stringify(text)}: give bytes or a size such as 10TB, 500GiB (units ${Object.keys(UNITS).join(' ')})`);
  const n = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--quota ${JSON.stringify(text)}: must be more than 0 bytes`);
  return n;
}

export async function runReport(options: ServerOptions & { json?: boolean; quota?: string; growthYears?: string }, out: (line: string) => void): Promise<void> {
  const quota = options.quota !== undefined ? parseSize(options.quota) : undefined;
  let growthYears: number | undefined;
  if (options.growthYears !== undefined) {
    growthYears = Number(options.growthYears);
    if (!Number.isFinite(growthYears) || growthYears < 0 || growthYears > 100)
      throw new UsageError(`--growth-years ${options.growthYears}: give a number of years from 0 to 100`);
  }
  const client = await serverClient(options);
  const report = await client.api.report({ query: { quota, growthYears } });
  if (options.json) return out(JSON.stringify(withNulls(replySchemas.CapacityReport, report)));
  const c = report.capacity;
  out('jobs');
  out(
    renderTable(
      ['job', 'agent', 'policy', 'last success (local)', 'last failure (local)', 'kept', 'logical kept', 'newest', 'stored (written)', 'kept/stored'],
      report.jobs.map((j) => [
        j.job,
        j.agent ?? '-',
        j.policy ?? '-',
        j.lastSuccess ? localTime(j.lastSuccess.at) : '-',
        j.lastFailure ? localTime(j.lastFailure.at) : '-',
        String(j.snapshotsKept),
        formatBytes(j.logicalBytesKept),
        formatBytes(j.newestLogicalBytes),
        formatBytes(j.storedBytesWritten),
        formatRatio(j.logicalBytesKept, j.storedBytesWritten),
      ]),
    ),
  );
  out('');
  out('stores');
  out(
    renderTable(
      ['store', 'scope', 'snapshots', 'logical', 'stored', 'dedup', 'compression', 'growth/day'],
      report.stores.map((s) => [
        s.name,
        s.scope,
        String(s.snapshots),
        formatBytes(s.logicalBytes),
        formatBytes(s.storedBytes),
        formatDedup(s.logicalBytes, s.uniqueBytes),
        formatRatio(s.uniqueBytes, s.storedBytes),
        s.trend ? `${formatBytes(s.trend.bytesPerDay)}` : '-',
      ]),
    ),
  );
  out('');
  out('capacity');
  const uniqueBytes = report.stores.reduce((n, s) => n + s.uniqueBytes, 0);
  out(
    `  stored now (measured):  ${formatBytes(c.storedBytes)} for ${formatBytes(c.logicalBytes)} of snapshots: dedup ${formatDedup(c.logicalBytes, uniqueBytes)}`,
  );
  out(
    c.trend
      ? `  growth (last ${c.trendDays} days):  ${formatBytes(c.trend.bytesPerDay)}/day (least squares over ${c.trend.days} days, r² ${c.trend.r2})`
      : `  growth (last ${c.trendDays} days):  not enough history (needs sessions on 2 days or more)`,
  );
  const fill =
    c.quotaBytes === null
      ? 'no quota given (--quota SIZE)'
      : c.fill.status === 'full'
        ? `${formatBytes(c.quotaBytes)}: reached already`
        : c.fill.status === 'date'
          ? `${formatBytes(c.quotaBytes)}: full around ${localTime(c.fill.at!)} (in ${c.fill.days} days at this trend)`
          : c.fill.status === 'never'
            ? `${formatBytes(c.quotaBytes)}: not reached at this trend (flat or shrinking)`
            : `${formatBytes(c.quotaBytes)}: no trend yet to extrapolate`;
  out(`  quota:                  ${fill}`);
  out(
    `  classic estimate (${c.growthYears} y): ${formatBytes(c.classicBytes)}${c.classicOverMeasured === null ? '' : ` = ${c.classicOverMeasured}x the measured stored bytes`}`,
  );
  for (const j of report.jobs) {
    const i = j.classic.inputs;
    out(
      `    ${j.job}: (${formatBytes(i.base)} x ${i.fullsKept} + ${formatBytes(i.incremental)} x ${i.incrementalsPerFull} x ${i.fullsKept}) x (1 + ${i.growth})^${i.years} x ${i.compression} = ${formatBytes(j.classic.bytes)}`,
    );
  }
  out('  (base x fulls kept + incremental x incrementals per full x fulls kept) x (1 + growth)^years x compression; docs/cli.md#report');
}
