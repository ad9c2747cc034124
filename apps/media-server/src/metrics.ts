/**
 * Prometheus metrics (`GET /metrics`). One registry per server, so several servers in one
 * process (tests, the demo) do not share counters.
 */
import type { Catalog } from '@hoard/catalog';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { jobRuns, runEntry } from './job-history.js';
import type { StoreHub } from './store-hub.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly sessions: Counter<'result'>;
  readonly bytesReceived: Counter;
  readonly bytesNew: Counter;
  readonly blobs: Counter<'outcome'>;
  readonly httpErrors: Counter<'status'>;
  readonly clientDisconnects: Counter;
  readonly activeSessions: Gauge;
  readonly restoreFailures: Counter;
  readonly notifications: Counter<'target' | 'result'>;

  constructor(stores: StoreHub, activeSessions: () => number, catalog?: Catalog) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'hoard_server_' });
    this.sessions = new Counter({
      name: 'hoard_sessions_total',
      help: 'Backup sessions ended, by result (committed, failed, expired)',
      labelNames: ['result'],
      registers,
    });
    this.bytesReceived = new Counter({
      name: 'hoard_received_bytes_total',
      help: 'Request body bytes read on the data path (queries, references, blobs)',
      registers,
    });
    this.bytesNew = new Counter({ name: 'hoard_new_chunk_bytes_total', help: 'Raw bytes of chunks stored for the first time', registers });
    this.blobs = new Counter({ name: 'hoard_blobs_total', help: 'Uploaded blobs, by outcome (stored, duplicate)', labelNames: ['outcome'], registers });
    this.httpErrors = new Counter({ name: 'hoard_http_errors_total', help: 'Requests answered with an error status', labelNames: ['status'], registers });
    this.clientDisconnects = new Counter({
      name: 'hoard_http_client_disconnects_total',
      help: 'Requests whose client closed the connection before the answer (not counted as errors)',
      registers,
    });
    this.restoreFailures = new Counter({
      name: 'hoard_restore_failures_total',
      help: 'Framed restores that ended with an error frame (damaged data, unreadable store)',
      registers,
    });
    this.notifications = new Counter({
      name: 'hoard_notifications_total',
      help: 'Notification delivery attempts, by target and result (delivered, failed: retried later)',
      labelNames: ['target', 'result'],
      registers,
    });
    this.activeSessions = new Gauge({
      name: 'hoard_sessions_active',
      help: 'Backup sessions in progress',
      registers,
      collect: () => this.activeSessions.set(activeSessions()),
    });
    const storeGauge = (name: string, help: string, pick: (r: Awaited<ReturnType<StoreHub['reports']>>[number]) => number): void => {
      const gauge: Gauge<'store'> = new Gauge({
        name,
        help,
        labelNames: ['store'],
        registers,
        async collect() {
          for (const r of await stores.reports()) gauge.set({ store: r.name }, pick(r));
        },
      });
    };
    storeGauge('hoard_store_index_entries', 'Fingerprints in the store index', (r) => r.entries);
    storeGauge('hoard_store_index_memory_bytes', 'Memory the store index takes', (r) => r.memoryBytes);
    storeGauge('hoard_store_lookups_total', 'Fingerprint lookups since start', (r) => r.lookups);
    storeGauge('hoard_store_stored_bytes', 'Bytes written to packs since start', (r) => r.storedBytes);
    if (catalog) jobMetrics(catalog, registers);
  }
}

const RUN_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

/**
 * Per job, agent and the run queue, read from the catalog at each scrape: what monitoring
 * systems alert on (docs/operations.md, "Alerting with Prometheus"). A job's figures are
 * those of its last finished backup run.
 */
function jobMetrics(catalog: Catalog, registers: Registry[]): void {
  type JobGauge = Gauge<'job'>;
  // Every gauge's collect waits for one read of the catalog per scrape (the registry
  // collects all metrics at once, so they share the read in flight).
  let reading: Promise<void> | undefined;
  const collect = (): Promise<void> =>
    (reading ??= fill().finally(() => {
      reading = undefined;
    }));
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]) => new Gauge<L>({ name, help, labelNames, registers, collect });
  const lastSuccess: JobGauge = gauge('hoard_job_last_success_timestamp_seconds', 'When the last successful backup run of the job finished (Unix time)', [
    'job',
  ]);
  const lastStatus = gauge('hoard_job_last_run_status', 'Status of the last finished backup run of the job: 1 for its status, 0 for the others', [
    'job',
    'status',
  ]);
  const lastDuration: JobGauge = gauge('hoard_job_last_duration_seconds', 'Duration of the last finished backup run of the job', ['job']);
  const lastBytes = gauge('hoard_job_last_bytes', 'Bytes of the last finished backup run of the job: read from the source, new (not stored before), stored', [
    'job',
    'kind',
  ]);
  const snapshots: JobGauge = gauge('hoard_job_snapshots', 'Snapshots of the job kept in the repository', ['job']);
  const agentSeen = gauge('hoard_agent_last_seen_timestamp_seconds', 'When the agent last contacted the server (Unix time)', ['agent']);
  const runs = gauge('hoard_runs', 'Runs by state: queued is the scheduler backlog', ['state']);
  const fill = async (): Promise<void> => {
    for (const g of [lastSuccess, lastStatus, lastDuration, lastBytes, snapshots, agentSeen, runs] as Gauge<string>[]) g.reset();
    for (const job of await catalog.listJobs()) {
      const finished = (await jobRuns(catalog, job)).filter((r) => r.finishedAt !== undefined && (r.result as { restore?: unknown })?.restore === undefined);
      const success = finished.find((r) => r.state === 'succeeded');
      if (success) lastSuccess.set({ job: job.name }, Date.parse(success.finishedAt!) / 1000);
      const last = finished[0];
      if (last) {
        for (const status of RUN_STATUSES) lastStatus.set({ job: job.name, status }, last.state === status ? 1 : 0);
        const entry = runEntry(last);
        if (entry.durationMs !== null) lastDuration.set({ job: job.name }, entry.durationMs / 1000);
        for (const [kind, value] of [
          ['read', entry.bytesRead],
          ['new', entry.bytesNew],
          ['stored', entry.bytesStored],
        ] as const)
          if (value !== null) lastBytes.set({ job: job.name, kind }, value);
      }
      snapshots.set({ job: job.name }, (await catalog.listSnapshots({ job: job.name })).length);
    }
    for (const agent of await catalog.listAgents()) if (agent.lastSeenAt) agentSeen.set({ agent: agent.name }, Date.parse(agent.lastSeenAt) / 1000);
    for (const state of ['queued', 'running'] as const) runs.set({ state }, (await catalog.listRuns({ state })).length);
  };
}
