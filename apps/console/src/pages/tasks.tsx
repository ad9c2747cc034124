/**
 * Tasks: verify, prune, GC, copy and drill runs with their reports (GET /v1/tasks), live as
 * the server's events report them. Who may starts a verify, or a GC: the dry run first,
 * and the real GC is offered only after a dry run on this page showed what it would delete.
 */
import type { GcReport, VerifyReport } from '@hoard/protocol';
import type { TaskView } from '@hoard/protocol/api';
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.js';
import type { PageProps } from '../app.js';
import { useEvents } from '../components/events.js';
import { formatBytes, formatDuration } from '../components/format.js';
import { ErrorNotice, Loading, Page, StateBadge } from '../components/page.js';
import { Time } from '../components/time.js';
import { useApi } from '../components/use-api.js';
import { useMay } from '../session.js';

export function TasksPage(_: PageProps) {
  const may = useMay();
  const tasks = useApi((signal) => api.listTasks({ query: { limit: 100 }, signal }), []);
  useEvents({ task: () => tasks.reload() });
  return (
    <Page title="Tasks">
      <div class="grid">
        {may('verify') ? <VerifyForm onDone={tasks.reload} /> : null}
        {may('gc') ? <GcForm onDone={tasks.reload} /> : null}
      </div>
      <h2 id="tasks-title">Verify, prune, GC, copy and drill runs</h2>
      <ErrorNotice error={tasks.error} />
      {tasks.data ? <TaskTable tasks={tasks.data.tasks} /> : tasks.error ? null : <Loading what="tasks" />}
    </Page>
  );
}

function TaskTable({ tasks }: { tasks: TaskView[] }) {
  if (tasks.length === 0) return <p class="muted">No tasks yet: the server verifies, prunes and collects garbage on its schedules.</p>;
  return (
    <div class="table-wrap">
      <table aria-labelledby="tasks-title" class="tasks">
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Kind</th>
            <th scope="col">Job</th>
            <th scope="col">State</th>
            <th scope="col" class="num">
              Took
            </th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.id} data-task={t.id} data-kind={t.kind}>
              <td>
                <Time at={t.startedAt} />
              </td>
              <td>{t.kind}</td>
              <td>{t.job ?? <span class="muted">repository</span>}</td>
              <td>
                <StateBadge state={t.state} />
              </td>
              <td class="num">{t.finishedAt ? formatDuration(new Date(t.finishedAt).getTime() - new Date(t.startedAt).getTime()) : '–'}</td>
              <td>
                {t.error ? <div class="error-text">{t.error}</div> : null}
                {t.summary ? <div>{t.summary}</div> : null}
                {t.result !== undefined ? (
                  <details>
                    <summary>Report</summary>
                    <pre>{JSON.stringify(t.result, null, 2)}</pre>
                  </details>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function VerifyForm({ onDone }: { onDone: () => void }) {
  const [readData, setReadData] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ report?: VerifyReport; error?: string } | undefined>();
  const start = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult(undefined);
    try {
      setResult({ report: await api.verify({ body: { readData } }) });
    } catch (err) {
      setResult({ error: errorText(err) });
    }
    setBusy(false);
    onDone();
  };
  return (
    <form class="panel" onSubmit={start} aria-labelledby="verify-title">
      <h2 id="verify-title">Verify the repository</h2>
      <label class="check">
        <input type="checkbox" checked={readData} onChange={(e) => setReadData((e.target as HTMLInputElement).checked)} /> read and hash every pack (slow: reads
        all stored bytes)
      </label>
      <button type="submit" disabled={busy}>
        {busy ? 'Verifying…' : 'Verify now'}
      </button>
      {result?.error ? (
        <p class="notice error" role="alert">
          {result.error}
        </p>
      ) : null}
      {result?.report ? (
        <p class={`notice ${result.report.findings.length ? 'error' : 'ok'}`} role="status">
          {result.report.snapshots} snapshot(s), {result.report.packs} pack(s), {result.report.blobsChecked} blob(s) checked
          {result.report.bytesRead ? `, ${formatBytes(result.report.bytesRead)} read` : ''}:{' '}
          {result.report.findings.length ? `${result.report.findings.length} problem(s) found` : 'no problems'}.
        </p>
      ) : null}
    </form>
  );
}

function GcForm({ onDone }: { onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [dryRun, setDryRun] = useState<GcReport | undefined>();
  const [done, setDone] = useState<GcReport | undefined>();
  const [error, setError] = useState<string | undefined>();
  const run = async (dry: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      const report = await api.gc({ body: { dryRun: dry } });
      if (dry) {
        setDryRun(report);
        setDone(undefined);
      } else {
        setDone(report);
        setDryRun(undefined);
      }
    } catch (err) {
      setError(errorText(err));
    }
    setBusy(false);
    onDone();
  };
  return (
    <section class="panel" aria-labelledby="gc-title">
      <h2 id="gc-title">Collect garbage</h2>
      <p class="small muted">
        Deletes what no snapshot refers to, after the grace period. A dry run first shows what it would do; the real run is offered after it.
      </p>
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => run(true)}>
          {busy && !dryRun ? 'Working…' : 'Dry run'}
        </button>
        {dryRun ? (
          <button type="button" class="danger" disabled={busy} onClick={() => run(false)}>
            Run GC now
          </button>
        ) : null}
      </div>
      {error ? (
        <p class="notice error" role="alert">
          {error}
        </p>
      ) : null}
      {dryRun ? <GcSummary report={dryRun} /> : null}
      {done ? <GcSummary report={done} /> : null}
    </section>
  );
}

function GcSummary({ report }: { report: GcReport }) {
  return (
    <p class="notice" role="status">
      {report.dryRun ? 'Dry run: would condemn' : 'Condemned'} {report.packs.condemned} pack(s), {report.dryRun ? 'would delete' : 'deleted'}{' '}
      {report.packs.deleted} condemned earlier ({formatBytes(report.bytes.deleted)}); {report.packs.waiting} wait out the grace period of{' '}
      {formatDuration(report.graceMs)}. Stored: {formatBytes(report.bytes.before)} → {formatBytes(report.bytes.after)}.
    </p>
  );
}
