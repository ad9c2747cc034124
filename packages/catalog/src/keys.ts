/**
 * The key layout (docs/catalog.md describes it). Keys are ASCII strings, compared byte by
 * byte by LevelDB. Every name and id that appears in a key is validated to contain no
 * `/`, and timestamps are fixed width, so a prefix scan of `<prefix>/<name>/` covers
 * exactly one name and returns its entries in time order.
 */
import type { RunRecord, SessionRecord, SnapshotRecord, TaskRecord } from './records.js';

export const SCHEMA_KEY = 'schema';

/** Sorts after every byte that can appear in a key (all keys are ASCII). */
export const HIGH = '\xff';

/**
 * `2024-05-01T02:03:04.567Z` -> `20240501T020304.567Z`: fixed width (20 characters), so
 * byte order is time order; millisecond precision.
 */
export function timeKey(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

export const keys = {
  meta: (key: string) => `meta/${key}`,
  agent: (name: string) => `agent/${name}`,
  agentToken: (hash: string) => `agent-token/${hash}`,
  adminToken: (hash: string) => `admin-token/${hash}`,
  job: (name: string) => `job/${name}`,
  policy: (name: string) => `policy/${name}`,
  snapshot: (job: string, id: string) => `snapshot/${job}/${id}`,
  session: (id: string) => `session/${id}`,
  run: (id: string) => `run/${id}`,
  task: (id: string) => `task/${id}`,
  notifyTarget: (name: string) => `notify-target/${name}`,
  notifyCondition: (key: string) => `notify-condition/${key}`,
  outbox: (target: string, id: string) => `notify-outbox/${target}/${id}`,
};

/** Key prefixes, each ending in `/`. */
export const prefixes = {
  meta: 'meta/',
  agent: 'agent/',
  agentToken: 'agent-token/',
  adminToken: 'admin-token/',
  job: 'job/',
  policy: 'policy/',
  snapshot: 'snapshot/',
  snapshotJob: (job: string) => `snapshot/${job}/`,
  snapshotAt: 'snapshot-at/',
  snapshotJobAt: (job: string) => `snapshot-job-at/${job}/`,
  session: 'session/',
  sessionAt: 'session-at/',
  sessionJob: (job: string) => `session-job/${job}/`,
  sessionAgent: (agent: string) => `session-agent/${agent}/`,
  run: 'run/',
  runAt: 'run-at/',
  runAgent: (agent: string) => `run-agent/${agent}/`,
  runState: (state: string) => `run-state/${state}/`,
  runAgentState: (agent: string, state: string) => `run-agent-state/${agent}/${state}/`,
  task: 'task/',
  taskAt: 'task-at/',
  taskJob: (job: string) => `task-job/${job}/`,
  notifyTarget: 'notify-target/',
  notifyCondition: 'notify-condition/',
  outbox: 'notify-outbox/',
  outboxTarget: (target: string) => `notify-outbox/${target}/`,
};

/** Every prefix under which index entries (value = the primary key they point at) live. */
export const INDEX_PREFIXES = [
  'snapshot-at/',
  'snapshot-job-at/',
  'session-at/',
  'session-job/',
  'session-agent/',
  'run-at/',
  'run-agent/',
  'run-state/',
  'run-agent-state/',
  'task-at/',
  'task-job/',
] as const;

export function snapshotIndexKeys(r: SnapshotRecord): string[] {
  const ts = timeKey(Date.parse(r.startedAt));
  return [`snapshot-at/${ts}/${r.job}/${r.id}`, `${prefixes.snapshotJobAt(r.job)}${ts}/${r.id}`];
}

export function sessionIndexKeys(r: SessionRecord): string[] {
  const ts = timeKey(Date.parse(r.startedAt));
  return [`session-at/${ts}/${r.id}`, `${prefixes.sessionJob(r.job)}${ts}/${r.id}`, `${prefixes.sessionAgent(r.agent)}${ts}/${r.id}`];
}

export function runIndexKeys(r: RunRecord): string[] {
  const ts = timeKey(Date.parse(r.createdAt));
  return [
    `run-at/${ts}/${r.id}`,
    `${prefixes.runAgent(r.agent)}${ts}/${r.id}`,
    `${prefixes.runState(r.state)}${ts}/${r.id}`,
    `${prefixes.runAgentState(r.agent, r.state)}${ts}/${r.id}`,
  ];
}

export function taskIndexKeys(r: TaskRecord): string[] {
  const ts = timeKey(Date.parse(r.startedAt));
  return [`task-at/${ts}/${r.id}`, ...(r.job !== undefined ? [`${prefixes.taskJob(r.job)}${ts}/${r.id}`] : [])];
}
