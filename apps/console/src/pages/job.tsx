/**
 * One job: its snapshots on a time axis (kept-by-rule badges from the policy's retention,
 * protected markers), run history with errors, "run now" for roles that may, and its
 * policy as YAML with the next runs in the policy's time zone.
 */
import type { HistoryEntry, PolicyView, SnapshotRecord } from '@hoard/protocol';
import type { RunEvent } from '@hoard/protocol/api';
import { planRetention, type RetentionRules } from '@hoard/retention';
import { useMemo, useState } from 'preact/hooks';
import { api, errorText } from '../api.js';
import type { PageProps } from '../app.js';
import { useEvents } from '../components/events.js';
import { formatBytes, formatDuration, formatTime, VIEWER_ZONE } from '../components/format.js';
import { ErrorNotice, Loading, Page, StateBadge } from '../components/page.js';
import { RunProgress } from '../components/progress.js';
import { Time } from '../components/time.js';
import { useApi } from '../components/use-api.js';
import { useMay } from '../session.js';

export function JobPage({ params }: PageProps) {
  const job = params.job!;
  const may = useMay();
  const jobs = useApi((signal) => api.listJobs({ signal }), [job]);
  const summary = jobs.data?.jobs.find((j) => j.job === job);
  const snapshots = useApi((signal) => api.listSnapshots({ query: { job }, signal }), [job]);
  const history = useApi((signal) => api.jobHistory({ params: { job }, query: { limit: 50 }, signal }), [job]);
  const policyName = summary?.policy ?? undefined;
  const policy = useApi(
    (signal) => (policyName ? api.getPolicy({ params: { name: policyName }, query: { next: 5 }, signal }) : Promise.resolve(undefined)),
    [policyName],
  );
  const [running, setRunning] = useState<RunEvent | undefined>();
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | undefined>();

  useEvents({
    run(event) {
      if (event.run.job !== job || event.run.restore) return;
      setRunning(event.run.state === 'running' ? event : undefined);
      if (event.run.state !== 'running') {
        history.reload();
        jobs.reload();
      }
    },
    changed({ kinds }) {
      if (kinds.includes('snapshot')) snapshots.reload();
    },
  });

  const runNow = async (full: boolean) => {
    setNotice(undefined);
    try {
      const run = await api.runJob({ params: { job }, body: { full } });
      setNotice({ ok: true, text: `${full ? 'Full' : 'Incremental'} run ${run.id} queued for agent ${run.agent}.` });
      history.reload();
    } catch (err) {
      setNotice({ ok: false, text: errorText(err) });
    }
  };

  const notFound = jobs.data && !summary;
  return (
    <Page
      title={`Job ${job}`}
      actions={
        may('runJob') && summary ? (
          <>
            <button type="button" onClick={() => runNow(false)}>
              Run incremental now
            </button>
            <button type="button" class="secondary" onClick={() => runNow(true)}>
              Run full now
            </button>
          </>
        ) : null
      }
    >
      {notice ? (
        <p class={`notice ${notice.ok ? 'ok' : 'error'}`} role={notice.ok ? 'status' : 'alert'}>
          {notice.text}
        </p>
      ) : null}
      <ErrorNotice error={jobs.error} />
      {notFound ? <p class="notice error">No job {job} on this server.</p> : null}
      {summary ? (
        <div class="panel">
          <dl class="facts">
            <dt>Agent</dt>
            <dd>{summary.agent ?? '–'}</dd>
            <dt>Policy</dt>
            <dd>{summary.policy ?? 'none (runs by hand)'}</dd>
            <dt>Store</dt>
            <dd>{summary.store}</dd>
            <dt>Sources</dt>
            <dd>{summary.sources.join(', ') || '–'}</dd>
            <dt>Last run</dt>
            <dd>
              {summary.lastRun ? (
                <>
                  <StateBadge state={summary.lastRun.state} /> <Time at={summary.lastRun.at} age />
                </>
              ) : (
                'never'
              )}
            </dd>
            <dt>Last good</dt>
            <dd>
              <Time at={summary.lastSuccess?.at} age />
            </dd>
            <dt>Next run</dt>
            <dd>{summary.nextRun ? <Time at={summary.nextRun.at} /> : 'not scheduled'}</dd>
            {running ? (
              <>
                <dt>Running</dt>
                <dd>
                  <RunProgress event={running} />
                </dd>
              </>
            ) : null}
          </dl>
        </div>
      ) : null}

      <h2 id="snapshots-title">Snapshots</h2>
      <ErrorNotice error={snapshots.error} />
      {snapshots.data ? <Snapshots snapshots={snapshots.data.snapshots} policy={policy.data} /> : snapshots.error ? null : <Loading what="snapshots" />}

      <h2 id="history-title">Run history</h2>
      <ErrorNotice error={history.error} />
      {history.data ? <History entries={history.data.entries} /> : history.error ? null : <Loading what="the history" />}

      {policyName ? (
        <>
          <h2 id="policy-title">Policy {policyName}</h2>
          <ErrorNotice error={policy.error} />
          {policy.data ? <PolicyPanel policy={policy.data} /> : null}
        </>
      ) : null}
    </Page>
  );
}

interface Decision {
  keep: boolean;
  reasons: string[];
}

/** The policy's retention applied to the snapshots (per source, as prune does) for the badges. */
function retentionOf(snapshots: SnapshotRecord[], policy: PolicyView | undefined): Map<string, Decision> | undefined {
  const rules = policy?.document.retention;
  if (!rules || Object.keys(rules).length === 0) return undefined;
  const input = {
    keepLast: rules['keep-last'],
    keepHourly: rules['keep-hourly'],
    keepDaily: rules['keep-daily'],
    keepWeekly: rules['keep-weekly'],
    keepMonthly: rules['keep-monthly'],
    keepYearly: rules['keep-yearly'],
    keepWithin: rules['keep-within'],
    timeZone: policy.timeZone,
  } as unknown as RetentionRules;
  const out = new Map<string, Decision>();
  const bySource = new Map<string, SnapshotRecord[]>();
  for (const s of snapshots) bySource.set(s.source.name, [...(bySource.get(s.source.name) ?? []), s]);
  try {
    for (const group of bySource.values()) {
      for (const d of planRetention(
        group.map((s) => ({ id: s.id, time: s.startedAt, protected: s.protected === true })),
        input,
        { allowNoRules: true },
      ))
        out.set(d.id, { keep: d.keep, reasons: d.reasons });
    }
  } catch {
    return undefined;
  }
  return out;
}

function Snapshots({ snapshots, policy }: { snapshots: SnapshotRecord[]; policy: PolicyView | undefined }) {
  const decisions = useMemo(() => retentionOf(snapshots, policy), [snapshots, policy]);
  const [selected, setSelected] = useState<string | undefined>();
  if (snapshots.length === 0) return <p class="muted">No snapshots yet.</p>;
  const times = snapshots.map((s) => new Date(s.startedAt).getTime());
  const now = Date.now();
  const from = Math.min(...times);
  const span = Math.max(now - from, 3_600_000);
  const at = (t: number) => `${(((t - from) / span) * 96 + 2).toFixed(2)}%`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => from + f * span);
  return (
    <>
      <div class="legend" aria-hidden="true">
        <span>
          <span class="swatch" />
          kept
        </span>
        <span>
          <span class="swatch protected" />
          protected
        </span>
        {decisions ? (
          <span>
            <span class="swatch forgotten" />
            the next prune forgets it
          </span>
        ) : null}
      </div>
      <fieldset class="timeline">
        <legend class="sr-only">Snapshots on a time axis</legend>
        {snapshots.map((s) => {
          const d = decisions?.get(s.id);
          const cls = s.protected ? 'protected' : d && !d.keep ? 'forgotten' : '';
          return (
            <button
              type="button"
              key={s.id}
              class={`snap ${cls}`}
              style={{ left: at(new Date(s.startedAt).getTime()) }}
              aria-label={`snapshot ${s.id} at ${formatTime(s.startedAt)}${s.protected ? ', protected' : ''}`}
              aria-pressed={selected === s.id}
              title={`${s.id} ${formatTime(s.startedAt)}`}
              onClick={() => setSelected(selected === s.id ? undefined : s.id)}
            />
          );
        })}
        {ticks.map((t) => (
          <span class="tick" key={t} style={{ left: at(t), transform: t === from ? 'none' : t === from + span ? 'translateX(-100%)' : undefined }}>
            {formatTime(t).slice(0, 16)}
          </span>
        ))}
      </fieldset>
      <div class="table-wrap">
        <table aria-labelledby="snapshots-title" class="snapshots">
          <thead>
            <tr>
              <th scope="col">Taken</th>
              <th scope="col">Id</th>
              <th scope="col">Source</th>
              <th scope="col" class="num">
                Size
              </th>
              <th scope="col">Kept by</th>
            </tr>
          </thead>
          <tbody>
            {snapshots.map((s) => {
              const d = decisions?.get(s.id);
              return (
                <tr key={s.id} class={selected === s.id ? 'selected' : ''} data-snapshot={s.id}>
                  <td>
                    <Time at={s.startedAt} />
                  </td>
                  <td>
                    <code>{s.id}</code>
                  </td>
                  <td>
                    {s.source.name} <span class="small muted">{s.source.kind}</span>
                  </td>
                  <td class="num">{formatBytes(s.logicalBytes)}</td>
                  <td>
                    {s.protected ? <span class="badge busy">protected</span> : null}
                    {d
                      ? d.reasons
                          .filter((r) => r !== 'protected')
                          .map((r) => (
                            <span class="badge rule" key={r}>
                              {r}
                            </span>
                          ))
                      : null}
                    {d && !d.keep ? <span class="badge idle">forgotten at the next prune</span> : null}
                    {!d && !s.protected ? <span class="muted small">no retention rules</span> : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}

function History({ entries }: { entries: HistoryEntry[] }) {
  if (entries.length === 0) return <p class="muted">Nothing ran yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-labelledby="history-title" class="history">
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Kind</th>
            <th scope="col">State</th>
            <th scope="col" class="num">
              Took
            </th>
            <th scope="col" class="num">
              Read / new
            </th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={`${e.type}-${e.id}`} data-entry={e.id} data-state={e.state}>
              <td>
                <Time at={e.startedAt} />
              </td>
              <td>{e.kind}</td>
              <td>
                <StateBadge state={e.state} />
              </td>
              <td class="num">{e.durationMs !== null ? formatDuration(e.durationMs) : '–'}</td>
              <td class="num">
                {e.bytesRead !== null ? formatBytes(e.bytesRead) : '–'} / {e.bytesNew !== null ? formatBytes(e.bytesNew) : '–'}
              </td>
              <td>
                {e.error ? <div class="error-text">{e.error}</div> : null}
                {e.summary ? <div>{e.summary}</div> : null}
                {e.snapshots.length ? <div class="small muted">snapshot {e.snapshots.join(', ')}</div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function PolicyPanel({ policy }: { policy: PolicyView }) {
  return (
    <div class="grid">
      <div>
        <h3>Next runs</h3>
        <ul class="plain">
          {policy.nextRuns.map((r) => (
            <li key={r.at}>
              <strong>{formatTime(r.at, policy.timeZone)}</strong> <span class="muted">({policy.timeZone})</span> · {r.kind}
              {policy.timeZone !== VIEWER_ZONE ? <div class="small muted">your time: {formatTime(r.at)}</div> : null}
            </li>
          ))}
          {policy.nextRuns.length === 0 ? <li class="muted">none scheduled</li> : null}
        </ul>
      </div>
      <div>
        <h3>As YAML</h3>
        <pre>{policy.yaml ?? ''}</pre>
      </div>
    </div>
  );
}
