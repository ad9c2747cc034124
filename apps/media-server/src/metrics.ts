/**
 * Prometheus metrics (`GET /metrics`). One registry per server, so several servers in one
 * process (tests, the demo) do not share counters.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
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

  constructor(stores: StoreHub, activeSessions: () => number) {
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
  }
}
