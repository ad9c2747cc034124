/**
 * The restore wizard (operators and admins): job -> point in time (the snapshot that time
 * picks is shown as the picker moves, by the rule of `hoard restore --at`) -> source ->
 * target: a download in the browser, or a restore run onto an agent's path whose progress
 * and result (the snapshot, what was checked) are shown here.
 *
 * Database targets: a PostgreSQL/MySQL restore needs the database's own tools and a
 * network path to the database, so it runs on an agent as a restore run with `database`
 * (apps/agent/src/restore-into-database.ts), never on the server (docs/console.md).
 */
import './restore-pages.css';
import { useEffect, useState } from 'preact/hooks';
import type { PickedSnapshot } from '@hoard/protocol/api';
import { api, errorText, routeUrl } from '../api.js';
import type { PageProps } from '../app.js';
import { formatBytes, VIEWER_ZONE } from '../components/format.js';
import { ErrorNotice, Loading, Page, StateBadge } from '../components/page.js';
import { Time } from '../components/time.js';
import { useApi } from '../components/use-api.js';
import { Link, pagePath } from '../router.js';

type Target = 'download' | 'agent' | 'database';
type RunView = Awaited<ReturnType<typeof api.getRun>>;

export function RestorePage({ query }: PageProps) {
  const jobs = useApi((signal) => api.listJobs({ signal }), []);
  const [job, setJob] = useState(query.get('job') ?? '');
  const [when, setWhen] = useState('');
  const [source, setSource] = useState('');
  const [target, setTarget] = useState<Target>('download');
  const withSnapshots = (jobs.data?.jobs ?? []).filter((j) => j.snapshots > 0);

  useEffect(() => {
    if (!job && withSnapshots.length > 0) setJob(withSnapshots[0]!.job);
  }, [jobs.data]);

  const at = when === '' ? undefined : new Date(when).toISOString();
  const sources = useApi(async (signal) => (job ? api.listSnapshots({ query: { job }, signal }) : undefined), [job]);
  const sourceNames = [...new Set((sources.data?.snapshots ?? []).map((s) => s.source.name))];
  const pick = useApi(
    async (signal) => (job ? api.pickSnapshot({ params: { job }, query: { at, source: source || undefined }, signal }) : undefined),
    [job, at, source],
  );
  const snapshot = pick.error ? undefined : pick.data?.snapshot;

  return (
    <Page title="Restore">
      {jobs.loading && !jobs.data ? <Loading what="jobs" /> : null}
      <ErrorNotice error={jobs.error} />
      <form class="panel restore-wizard" onSubmit={(e) => e.preventDefault()}>
        <fieldset>
          <legend>1. Job</legend>
          <label for="restore-job">Job</label>
          <select
            id="restore-job"
            value={job}
            onChange={(e) => {
              setJob(e.currentTarget.value);
              setSource('');
            }}
          >
            {withSnapshots.map((j) => (
              <option key={j.job} value={j.job}>
                {j.job} ({j.snapshots} snapshot{j.snapshots === 1 ? '' : 's'})
              </option>
            ))}
          </select>
        </fieldset>
        <fieldset>
          <legend>2. Point in time</legend>
          <label for="restore-at">Restore the state as of ({VIEWER_ZONE}); empty: the newest</label>
          <input id="restore-at" type="datetime-local" step="1" value={when} onInput={(e) => setWhen(e.currentTarget.value)} />
          {when ? (
            <button type="button" class="secondary" onClick={() => setWhen('')}>
              Newest
            </button>
          ) : null}
          <div id="picked" aria-live="polite">
            {pick.error ? (
              <p class="notice error">{pick.error}</p>
            ) : snapshot ? (
              <PickedLine snapshot={snapshot} rule={pick.data!.rule} />
            ) : job ? (
              <p class="muted">Looking up the snapshot…</p>
            ) : null}
          </div>
        </fieldset>
        <fieldset>
          <legend>3. Source</legend>
          <label for="restore-source">Source</label>
          <select id="restore-source" value={source} onChange={(e) => setSource(e.currentTarget.value)}>
            <option value="">any (the snapshot the time picks)</option>
            {sourceNames.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </fieldset>
        <fieldset>
          <legend>4. Target</legend>
          {(
            [
              ['download', 'Download in this browser'],
              ['agent', "Onto an agent's path"],
              ['database', 'Into a PostgreSQL or MySQL database'],
            ] as const
          ).map(([value, label]) => (
            <label key={value} class="choice">
              <input type="radio" name="restore-target" value={value} checked={target === value} onChange={() => setTarget(value)} /> {label}
            </label>
          ))}
        </fieldset>
      </form>
      {snapshot ? (
        target === 'download' ? (
          <DownloadTarget snapshot={snapshot} />
        ) : target === 'agent' ? (
          <AgentTarget snapshot={snapshot} />
        ) : (
          <AgentTarget snapshot={snapshot} database />
        )
      ) : null}
    </Page>
  );
}

function PickedLine({ snapshot, rule }: { snapshot: PickedSnapshot; rule: string }) {
  return (
    <p class="notice ok">
      Picks snapshot <code class="snapshot-id">{snapshot.id}</code> of {snapshot.source.name} ({snapshot.source.kind}, {formatBytes(snapshot.logicalBytes)}),
      started <Time at={snapshot.startedAt} /> <span class="muted">— {rule}</span>
    </p>
  );
}

function DownloadTarget({ snapshot }: { snapshot: PickedSnapshot }) {
  const params = { job: snapshot.job, id: snapshot.id };
  if (snapshot.source.kind === 'directory')
    return (
      <section class="panel">
        <h2>Download</h2>
        <p>
          <a class="button" id="download-tar" href={routeUrl('downloadSnapshot', { params })} download>
            Download the whole tree (tar)
          </a>{' '}
          <Link class="button secondary" id="browse-link" href={`${pagePath('browse', snapshot.job, snapshot.id)}`}>
            Browse and pick files…
          </Link>
        </p>
        <p class="muted small">Every chunk and the whole-stream hash are checked as the tar streams; a failed check stops the download.</p>
      </section>
    );
  return (
    <section class="panel">
      <h2>Download</h2>
      <p>
        <a class="button" id="download-snapshot" href={routeUrl('downloadSnapshot', { params })} download>
          Download {formatBytes(snapshot.logicalBytes)}
        </a>
      </p>
      <p class="muted small">Every chunk and the whole-stream hash are checked as it streams; a failed check stops the download.</p>
    </section>
  );
}

/**
 * A restore run on an agent: onto a path, or (`database`) a dump into a database the agent
 * reaches; the run's progress, then its result.
 */
function AgentTarget({ snapshot, database = false }: { snapshot: PickedSnapshot; database?: boolean }) {
  const agents = useApi((signal) => api.listAgents({ signal }), []);
  const live = (agents.data?.agents ?? []).filter((a) => !a.revokedAt);
  const [agent, setAgent] = useState('');
  const [path, setPath] = useState('');
  const [url, setUrl] = useState('');
  const [file, setFile] = useState('');
  const [force, setForce] = useState(false);
  const [run, setRun] = useState<RunView | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const chosen = agent || live[0]?.name || '';

  const start = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const queued = await api.createRun({
        body: {
          agent: chosen,
          job: snapshot.job,
          restore: database
            ? { snapshot: snapshot.id, database: url }
            : { snapshot: snapshot.id, path, ...(force ? { force: true } : {}), ...(file ? { file } : {}) },
        },
      });
      setRun(queued);
      let current = queued;
      while (current.state === 'queued' || current.state === 'running') {
        current = await api.getRun({ params: { id: current.id }, query: { wait: 2 } });
        setRun(current);
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  if (database && snapshot.source.kind !== 'stream')
    return (
      <section class="panel">
        <p class="notice error">
          Snapshot {snapshot.id} is a {snapshot.source.kind} snapshot; only a database dump (a stream snapshot) goes into a database.
        </p>
      </section>
    );
  return (
    <section class="panel">
      <h2>{database ? 'Restore into a database' : 'Restore onto an agent'}</h2>
      <ErrorNotice error={agents.error} />
      <form onSubmit={start} class="restore-agent">
        <label for="restore-agent">Agent</label>
        <select id="restore-agent" value={chosen} onChange={(e) => setAgent(e.currentTarget.value)}>
          {live.map((a) => (
            <option key={a.name} value={a.name}>
              {a.name}
            </option>
          ))}
        </select>
        {database ? (
          <>
            <label for="restore-database">
              Database URL, as the agent reaches it (no password: the agent's ~/.pgpass, PGPASSWORD, ~/.my.cnf or MYSQL_PWD supply it)
            </label>
            <input
              id="restore-database"
              required
              placeholder="postgres://postgres@127.0.0.1:5432/shop_copy"
              value={url}
              onInput={(e) => setUrl(e.currentTarget.value)}
            />
            <p class="muted small">A custom-format dump goes through pg_restore, an SQL dump through psql in one transaction, a MySQL dump through mysql.</p>
          </>
        ) : (
          <>
            <label for="restore-path">
              {snapshot.source.kind === 'directory' && !file ? 'New directory on the agent (must not exist)' : 'File or device path on the agent'}
            </label>
            <input id="restore-path" required pattern="/.*" placeholder="/restore/here" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
          </>
        )}
        {!database && snapshot.source.kind === 'directory' ? (
          <>
            <label for="restore-file">Only this file of the snapshot (optional, e.g. etc/hosts)</label>
            <input id="restore-file" value={file} onInput={(e) => setFile(e.currentTarget.value)} />
          </>
        ) : null}
        {database ? null : (
          <label class="choice">
            <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> Replace an existing file
          </label>
        )}
        <button type="submit" id="restore-start" disabled={busy || !chosen || (database ? !url : !path)}>
          Restore snapshot {snapshot.id}
        </button>
      </form>
      <ErrorNotice error={error} />
      {run ? <RunOutcome run={run} /> : null}
    </section>
  );
}

/** A restore run's progress, then its result: the snapshot, where it went, what was checked. */
function RunOutcome({ run }: { run: RunView }) {
  const total = run.progress?.bytesTotal ?? run.restore?.logicalBytes;
  const done = run.progress?.bytesRead ?? 0;
  const restored = run.targets[0]?.restored;
  return (
    <div id="restore-run" aria-live="polite" data-state={run.state}>
      <p>
        Run <code>{run.id}</code> on agent {run.agent}: <StateBadge state={run.state} />
      </p>
      {run.state === 'running' && total ? (
        <p>
          <progress max={total} value={done} /> {formatBytes(done)} of {formatBytes(total)}
        </p>
      ) : null}
      {run.state === 'succeeded' && restored ? (
        <p class="notice ok" id="restore-result">
          Restored snapshot <code>{restored.snapshot}</code> to {restored.path} ({formatBytes(restored.bytes)}
          {restored.wrote === 'tree' ? `, ${restored.files ?? 0} files, ${restored.directories ?? 0} directories, ${restored.symlinks ?? 0} symlinks` : ''}).{' '}
          {checksDone(restored.wrote)}
        </p>
      ) : null}
      {run.state === 'failed' || run.state === 'cancelled' ? <p class="notice error">{run.error ?? run.targets[0]?.error ?? run.state}</p> : null}
    </div>
  );
}

/** What the restore path checked, by what the agent wrote (docs/console.md). */
function checksDone(wrote: 'stream' | 'tree' | 'file' | 'database'): string {
  if (wrote === 'database') return 'Checked: every chunk and the whole-stream hash, before the database tool was told the dump was complete.';
  if (wrote === 'file') return 'Checked: every chunk of the file against its fingerprint.';
  if (wrote === 'tree') return 'Checked: every chunk, the whole-stream hash, and the entry table read twice and compared.';
  return 'Checked: every chunk and the whole-stream hash; the file was synced and put in place only after that.';
}
