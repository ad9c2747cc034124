/**
 * Every job at a glance: last run, the age of the last good snapshot against the policy's
 * alert-after, the next run, live progress of running runs (server-sent events); agents
 * online or not, open alerts, and per store the used bytes, dedup, compression and the
 * capacity trend with the forecast fill date.
 */
import type { CapacityReport, JobSummary, PolicyView } from '@hoard/protocol';
import type { RunEvent } from '@hoard/protocol/api';
import { useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import type { PageProps } from '../app.js';
import { Chart } from '../components/chart.js';
import { parseDuration } from '../components/duration.js';
import { useEvents } from '../components/events.js';
import { formatAge, formatBytes, formatDuration, formatRatio, formatTime } from '../components/format.js';
import { ErrorNotice, Loading, Page, StateBadge } from '../components/page.js';
import { RunProgress } from '../components/progress.js';
import { Time } from '../components/time.js';
import { useApi } from '../components/use-api.js';
import { Link, pagePath } from '../router.js';

/** An agent seen this recently is online: agents long-poll the server at least every minute. */
const ONLINE_MS = 3 * 60_000;

export function DashboardPage(_: PageProps) {
  const jobs = useApi((signal) => api.listJobs({ signal }), []);
  const policies = useApi((signal) => api.listPolicies({ signal }), []);
  const agents = useApi((signal) => api.listAgents({ signal }), []);
  const alerts = useApi((signal) => api.listNotifyConditions({ signal }), []);
  const report = useApi((signal) => api.report({ signal }), []);
  const runs = useApi((signal) => api.listRuns({ signal }), []);
  const [live, setLive] = useState<Record<string, RunEvent>>({});

  const connected = useEvents({
    run(event) {
      setLive((all) => ({ ...all, [event.run.id]: event }));
      // A run that starts or ends changes the job's row.
      if (event.run.state !== 'running' || !event.run.progress) jobs.reload();
      if (event.run.state === 'failed') report.reload();
    },
    changed({ kinds }) {
      if (kinds.some((k) => k === 'snapshot' || k === 'job')) {
        jobs.reload();
        report.reload();
      }
      if (kinds.includes('policy')) policies.reload();
      if (kinds.includes('agent') || kinds.includes('agent-contact')) agents.reload();
      if (kinds.includes('notification')) alerts.reload();
    },
  });

  // Running runs: from the list at load, then as the events say.
  const running = useMemo(() => {
    const byJob = new Map<string, RunEvent>();
    for (const run of runs.data?.runs ?? []) if (run.state === 'running' && !run.restore) byJob.set(run.job, { run });
    for (const event of Object.values(live)) {
      if (event.run.restore) continue;
      if (event.run.state === 'running') byJob.set(event.run.job, event);
      else if (byJob.get(event.run.job)?.run.id === event.run.id) byJob.delete(event.run.job);
    }
    return byJob;
  }, [runs.data, live]);

  const policyOf = new Map((policies.data?.policies ?? []).map((p) => [p.name, p]));
  const failures = new Map((report.data?.jobs ?? []).map((j) => [j.job, j.lastFailure]));
  const now = Date.now();
  const agentList = (agents.data?.agents ?? []).filter((a) => !a.revokedAt);
  const online = agentList.filter((a) => a.lastSeenAt && now - new Date(a.lastSeenAt).getTime() < ONLINE_MS);

  return (
    <Page
      title="Dashboard"
      actions={
        <span class={`badge ${connected ? 'ok' : 'idle'}`} title="Live updates from the server (server-sent events)">
          {connected ? 'live' : 'not live'}
        </span>
      }
    >
      <div class="cards">
        <Card label="Jobs" value={jobs.data ? String(jobs.data.jobs.length) : '…'} detail={jobCounts(jobs.data?.jobs ?? [], running.size)} />
        <Card label="Agents online" value={agents.data ? `${online.length} of ${agentList.length}` : '…'} />
        <Card label="Open alerts" value={alerts.data ? String(alerts.data.conditions.length) : '…'} tone={alerts.data?.conditions.length ? 'bad' : 'ok'} />
        <Card
          label="Stored"
          value={report.data ? formatBytes(report.data.capacity.storedBytes) : '…'}
          detail={report.data ? `dedup ${formatRatio(report.data.capacity.dedupFactor)}` : undefined}
        />
      </div>

      <h2 id="jobs-title">Jobs</h2>
      <ErrorNotice error={jobs.error} />
      {!jobs.data && !jobs.error ? <Loading what="jobs" /> : null}
      {jobs.data ? (
        jobs.data.jobs.length === 0 ? (
          <p class="muted">No jobs yet: a policy (hoard policy apply) or `hoard run` creates them.</p>
        ) : (
          <div class="table-wrap">
            <table aria-labelledby="jobs-title" class="jobs">
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Last run</th>
                  <th scope="col">Last good snapshot</th>
                  <th scope="col">Next run</th>
                  <th scope="col">Now</th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.jobs.map((job) => (
                  <JobRow
                    key={job.job}
                    job={job}
                    policy={job.policy ? policyOf.get(job.policy) : undefined}
                    running={running.get(job.job)}
                    failure={failures.get(job.job) ?? null}
                    now={now}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )
      ) : null}

      <div class="grid">
        <section aria-labelledby="alerts-title">
          <h2 id="alerts-title">Open alerts</h2>
          <ErrorNotice error={alerts.error} />
          {alerts.data?.conditions.length === 0 ? <p class="muted">None: every check passes.</p> : null}
          <ul class="plain">
            {(alerts.data?.conditions ?? []).map((c) => (
              <li key={c.condition} class="panel">
                <StateBadge state={c.event.severity === 'info' ? 'idle' : 'failed'} label={c.event.severity} /> {c.event.summary}
                <div class="small muted">
                  since <Time at={c.openedAt} />
                  {c.repeats > 0 ? ` · seen ${c.repeats + 1} times` : ''}
                </div>
              </li>
            ))}
          </ul>
        </section>
        <section aria-labelledby="agents-title">
          <h2 id="agents-title">Agents</h2>
          <ErrorNotice error={agents.error} />
          {agents.data && agentList.length === 0 ? <p class="muted">No agents yet (hoard agent add NAME).</p> : null}
          <ul class="plain">
            {agentList.map((a) => {
              const isOnline = online.includes(a);
              return (
                <li key={a.name} class="agent">
                  <StateBadge state={isOnline ? 'online' : 'offline'} /> <strong>{a.name}</strong>
                  <span class="small muted">
                    {a.hostname ? ` ${a.hostname}` : ''} · {a.lastSeenAt ? `seen ${formatAge(a.lastSeenAt, now)}` : 'never seen'}
                  </span>
                </li>
              );
            })}
          </ul>
        </section>
      </div>

      <h2 id="stores-title">Storage</h2>
      <ErrorNotice error={report.error} />
      {report.data ? <Storage report={report.data} /> : report.error ? null : <Loading what="the capacity report" />}
    </Page>
  );
}

function jobCounts(jobs: JobSummary[], running: number): string {
  const failed = jobs.filter((j) => j.lastRun?.state === 'failed').length;
  return `${failed} failed · ${running} running`;
}

function Card({ label, value, detail, tone }: { label: string; value: string; detail?: string; tone?: 'ok' | 'bad' }) {
  return (
    <div class={`card ${tone ?? ''}`}>
      <div class="small muted">{label}</div>
      <div class="value">{value}</div>
      {detail ? <div class="small muted">{detail}</div> : null}
    </div>
  );
}

function JobRow({
  job,
  policy,
  running,
  failure,
  now,
}: {
  job: JobSummary;
  policy: PolicyView | undefined;
  running: RunEvent | undefined;
  failure: CapacityReport['jobs'][number]['lastFailure'];
  now: number;
}) {
  const alertAfter = policy?.document['alert-after'];
  const limit = parseDuration(alertAfter);
  const age = job.lastSuccess ? now - new Date(job.lastSuccess.at).getTime() : undefined;
  const overdue = limit !== undefined && (age === undefined || age > limit);
  const lastFailed = job.lastRun?.state === 'failed';
  return (
    <tr data-job={job.job}>
      <th scope="row">
        <Link href={pagePath('jobs', job.job)}>{job.job}</Link>
        <div class="small muted">
          {job.agent ?? 'no agent'}
          {job.policy ? ` · policy ${job.policy}` : ''}
        </div>
      </th>
      <td>
        {job.lastRun ? (
          <>
            <StateBadge state={job.lastRun.state} /> <Time at={job.lastRun.at} />
            {lastFailed && failure?.error && failure.run === job.lastRun.id ? <div class="error-text small">{failure.error}</div> : null}
          </>
        ) : (
          <span class="muted">never ran</span>
        )}
      </td>
      <td>
        {job.lastSuccess ? (
          <>
            <StateBadge state={overdue ? 'overdue' : 'ok'} label={age !== undefined ? formatDuration(age) + ' old' : ''} />
            <div class="small muted">
              {limit !== undefined ? `alert after ${alertAfter}` : 'no alert-after in its policy'}
              {job.snapshots ? ` · ${job.snapshots} kept` : ''}
            </div>
          </>
        ) : (
          <StateBadge state={overdue ? 'overdue' : 'idle'} label="none yet" />
        )}
      </td>
      <td>
        {job.nextRun ? (
          <>
            <Time at={job.nextRun.at} />
            <div class="small muted">{job.nextRun.kind}</div>
          </>
        ) : (
          <span class="muted">not scheduled</span>
        )}
      </td>
      <td>{running ? <RunProgress event={running} /> : <span class="muted">idle</span>}</td>
    </tr>
  );
}

const DAY_MS = 86_400_000;

function Storage({ report }: { report: CapacityReport }) {
  const { capacity } = report;
  const chart = useMemo(() => capacityChart(report), [report]);
  return (
    <>
      <div class="table-wrap">
        <table aria-labelledby="stores-title">
          <thead>
            <tr>
              <th scope="col">Store</th>
              <th scope="col" class="num">
                Snapshots
              </th>
              <th scope="col" class="num">
                Logical
              </th>
              <th scope="col" class="num">
                Used (stored)
              </th>
              <th scope="col" class="num">
                Dedup
              </th>
              <th scope="col" class="num">
                Compression
              </th>
              <th scope="col">Growth</th>
            </tr>
          </thead>
          <tbody>
            {report.stores.map((s) => (
              <tr key={s.id}>
                <th scope="row">
                  {s.name} <span class="small muted">{s.scope}</span>
                </th>
                <td class="num">{s.snapshots}</td>
                <td class="num">{formatBytes(s.logicalBytes)}</td>
                <td class="num">{formatBytes(s.storedBytes)}</td>
                <td class="num">{formatRatio(s.dedupFactor)}</td>
                <td class="num">{formatRatio(s.compressionRatio)}</td>
                <td>{s.trend ? `${formatBytes(s.trend.bytesPerDay)}/day` : <span class="muted">not enough history</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="panel">
        <p>
          <strong>Capacity:</strong> {formatBytes(capacity.storedBytes)} stored
          {capacity.quotaBytes ? ` of ${formatBytes(capacity.quotaBytes)}` : ''}; {fillText(capacity.fill)}
        </p>
        {chart ? (
          <Chart options={chart.options} data={chart.data} label={`Stored bytes over time with the forecast: ${fillText(capacity.fill)}`} />
        ) : (
          <p class="muted">No history yet to draw.</p>
        )}
      </div>
    </>
  );
}

function fillText(fill: CapacityReport['capacity']['fill']): string {
  switch (fill.status) {
    case 'full':
      return 'the quota is reached';
    case 'date':
      return `forecast full on ${formatTime(fill.at!)} (in ${formatDuration((fill.days ?? 0) * DAY_MS)})`;
    case 'never':
      return 'not growing: no fill date';
    case 'no-trend':
      return 'too little history for a trend';
    default:
      return 'no quota set (server quotaBytes), so no fill date';
  }
}

/** Measured bytes per day, then the trend line to the fill date (or 90 days), and the quota. */
function capacityChart(report: CapacityReport): { options: Omit<import('uplot').Options, 'width'>; data: import('uplot').AlignedData } | undefined {
  const { history, trend, quotaBytes, fill } = report.capacity;
  if (history.length === 0) return undefined;
  const xs = history.map((h) => h.at / 1000);
  const measured: (number | null)[] = history.map((h) => h.cumulative);
  const forecast: (number | null)[] = history.map(() => null);
  const last = history[history.length - 1]!;
  if (trend && trend.bytesPerDay > 0) {
    forecast[forecast.length - 1] = last.cumulative;
    const until = fill.status === 'date' && fill.at ? new Date(fill.at).getTime() : last.at + 90 * DAY_MS;
    xs.push(until / 1000);
    measured.push(null);
    forecast.push(last.cumulative + (trend.bytesPerDay * (until - last.at)) / DAY_MS);
  }
  const series: import('uplot').Series[] = [
    {},
    { label: 'stored', stroke: '#1f5fbf', width: 2, value: (_u, v) => formatBytes(v) },
    { label: 'forecast', stroke: '#8a5a00', width: 2, dash: [6, 4], value: (_u, v) => formatBytes(v) },
  ];
  const data: (number | null)[][] = [xs, measured, forecast];
  if (quotaBytes) {
    series.push({ label: 'quota', stroke: '#b3261e', width: 1, value: (_u, v) => formatBytes(v) });
    data.push(xs.map(() => quotaBytes));
  }
  return {
    options: {
      height: 240,
      series,
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => formatBytes(t)), size: 80 }],
      // A few days around the points at least, so one day of history is not stretched over years.
      scales: {
        x: { time: true, auto: false, min: Math.min(xs[0]!, xs[xs.length - 1]! - 3 * 86_400) - 86_400, max: xs[xs.length - 1]! + 86_400 },
        y: { range: (_u, _min, max) => [0, Math.max(max, 1024) * 1.15] },
      },
    },
    data: data as import('uplot').AlignedData,
  };
}
