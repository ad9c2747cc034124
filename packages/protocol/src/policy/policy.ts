/**
 * The Policy type and its validation. A policy document uses kebab-case keys (as admins
 * write restic/borg retention flags: `keep-daily`); the typed Policy uses camelCase.
 * validatePolicy checks every field and reports every problem at once (PolicyError).
 * The document format is described field by field in docs/policies.md.
 */

import { parseRetentionDuration, type RetentionRules as PlanRetentionRules } from '@hoard/retention';
import { checkAgentName, checkJobName, type RunHooks } from '../messages.js';
import { parseSourceSpec } from '../source-spec.js';
import { ScheduleError } from './cron.js';
import { formatPath, PolicyError, ProblemList, unknownKeyMessage, type PathSegment } from './errors.js';
import { parseSchedule, type Schedule } from './schedule.js';
import { checkTimeZone } from './timezone.js';
import { inRunWindowMinutes, parseBandwidth, parseElapsed, parsePercent, parseRunWindow, type Bandwidth, type Elapsed, type RunWindow } from './units.js';

export interface PolicySource {
  /** Agents that run these specs (each agent at most once per policy). */
  agents: string[];
  /** Source specs as written (validated with parseSourceSpec). */
  specs: string[];
  hooks?: RunHooks;
}

export interface PolicySchedule {
  timeZone: string;
  full: Schedule;
  incremental?: Schedule;
}

/**
 * A policy's retention block: @hoard/retention's rules without the time zone (a policy's
 * is its schedule's; policyRetentionRules adds it). Absent rules keep nothing on their
 * own; a snapshot is kept if any rule keeps it.
 */
export type RetentionRules = Omit<PlanRetentionRules, 'timeZone'>;

export type StoreScope = 'global' | 'job';
/** `zstd`, `zstd:LEVEL` (1-19), `lz4` or `none`: the repository's compression settings, as text. */
export type Compression = string;
const COMPRESSION = /^(zstd(:([1-9]|1[0-9]))?|lz4|none)$/;

export interface PolicyStore {
  /** `global`: the shared fingerprint store; `job`: a store of this policy's own (isolated dedup). */
  scope: StoreScope;
  compression: Compression;
  encryption: boolean;
}

export interface PolicyLimits {
  maxConcurrentJobsPerAgent?: number;
  bandwidth?: Bandwidth;
  runWindow?: RunWindow;
}

export interface VerifyPolicy {
  /** Structure check (manifests, indexes, pack headers); null when off. */
  structure: Schedule | null;
  /** Check with `--read-data --subset N%`; null when off. */
  readData: Schedule | null;
  /** Percent of pack data read by each read-data check. */
  subset: number;
}

export interface Policy {
  name: string;
  description?: string;
  sources: PolicySource[];
  schedule: PolicySchedule;
  /** Absent: keep every snapshot. */
  retention?: RetentionRules;
  store: PolicyStore;
  limits: PolicyLimits;
  verify: VerifyPolicy;
  /** No successful backup of a job for longer than this raises job-overdue (docs/notifications.md). */
  alertAfter?: Elapsed;
  /** A copy target of the server's config: each successful run's snapshots are copied there (docs/sync.md). */
  copyTo?: string;
  /** Retention of the copies in the copy target; absent: the copies are kept. */
  copyKeep?: RetentionRules;
  /** The restore drill restores the job's newest PostgreSQL dump into a scratch database there and runs the query (docs/policies.md, drill). */
  drill?: DrillPolicy;
}

/** `drill:` of a policy: a restore into a scratch PostgreSQL database and a query that must succeed. */
export interface DrillPolicy {
  /** postgres://user[:password]@host:port/db: the server the scratch database is created on, connecting to `db` (default postgres) to create and drop it. */
  postgresUrl: string;
  /** Run in the restored scratch database; must succeed and return at least one row. */
  query: string;
}

export const POLICY_DEFAULTS = Object.freeze({
  store: Object.freeze({ scope: 'global', compression: 'zstd:3', encryption: false } as const),
  verify: Object.freeze({ structure: 'daily', readData: 'weekly', subset: 10 } as const),
});

export const POLICY_KEYS = [
  'name',
  'description',
  'sources',
  'schedule',
  'retention',
  'store',
  'limits',
  'verify',
  'alert-after',
  'copy-to',
  'copy-keep',
  'drill',
] as const;
const SOURCE_KEYS = ['agent', 'agents', 'specs', 'hooks'] as const;
const HOOK_KEYS = ['pre', 'post'] as const;
const SCHEDULE_KEYS = ['timezone', 'full', 'incremental'] as const;
export const RETENTION_KEYS = ['keep-last', 'keep-hourly', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'keep-within'] as const;
const STORE_KEYS = ['scope', 'compression', 'encryption'] as const;
const LIMIT_KEYS = ['max-concurrent-jobs-per-agent', 'bandwidth', 'run-window'] as const;
const VERIFY_KEYS = ['structure', 'read-data', 'subset'] as const;
const DRILL_KEYS = ['postgres-url', 'query'] as const;

const MAX_SOURCES = 64;
const MAX_SPECS = 64;
const MAX_AGENTS = 256;
const MAX_COUNT = 1_000_000;
/** A copy target's name in the server config (`copyTargets`). */
export const COPY_TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Checks a mapping's keys; returns it, or undefined after reporting that it is not a mapping. */
function mapping(v: unknown, path: PathSegment[], known: readonly string[], problems: ProblemList, example: string): Obj | undefined {
  if (!isObject(v)) {
    problems.add(path, `must be a mapping (${example}); got ${describe(v)}`);
    return undefined;
  }
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) problems.add([...path, key], unknownKeyMessage(key, known));
  }
  return v;
}

function text(v: unknown, path: PathSegment[], problems: ProblemList, max = 4096): string | undefined {
  if (typeof v !== 'string' || v.trim() === '' || v.length > max || v.includes('\0')) {
    problems.add(path, `must be a non-empty string of at most ${max} characters without NUL bytes; got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function count(v: unknown, path: PathSegment[], problems: ProblemList, what: string): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_COUNT) {
    const hint = v === 0 ? '; omit it instead of writing 0' : typeof v === 'string' && /^\d+$/.test(v.trim()) ? ' (write the number without quotes)' : '';
    problems.add(path, `${what} must be a whole number from 1 to ${MAX_COUNT}; got ${describe(v)}${hint}`);
    return undefined;
  }
  return v;
}

function guard<T>(path: PathSegment[], problems: ProblemList, f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    problems.add(path, (err as Error).message);
    return undefined;
  }
}

function scheduleOf(v: unknown, timeZone: string | undefined, path: PathSegment[], problems: ProblemList): Schedule | undefined {
  if (typeof v !== 'string') {
    problems.add(path, `must be a cron expression in quotes (e.g. "0 1 * * 0") or one of hourly, daily, weekly, monthly, yearly; got ${describe(v)}`);
    return undefined;
  }
  // With a bad time zone, the expression is still checked (in UTC) so that both problems show.
  try {
    return parseSchedule(v, timeZone ?? 'UTC');
  } catch (err) {
    problems.add(path, err instanceof ScheduleError ? err.message : String(err));
    return undefined;
  }
}

function checkSources(v: unknown, path: PathSegment[], problems: ProblemList): PolicySource[] | undefined {
  const example = 'a list of {agents: [kvm-01], specs: ["vm:/var/lib/libvirt/images/*.qcow2"], hooks: {pre, post}}';
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SOURCES) {
    problems.add(path, `must be ${example}, 1-${MAX_SOURCES} entries; got ${Array.isArray(v) ? `${v.length} entries` : describe(v)}`);
    return undefined;
  }
  const seenAgents = new Map<string, number>();
  const out: PolicySource[] = [];
  let ok = true;
  v.forEach((entry, i) => {
    const here = [...path, i];
    const o = mapping(entry, here, SOURCE_KEYS, problems, 'agents, specs and optional hooks');
    if (!o) return void (ok = false);
    const before = problems.size;
    let agents: string[] = [];
    if (o.agent !== undefined && o.agents !== undefined) problems.add([...here, 'agent'], 'give either agent (one name) or agents (a list), not both');
    else if (o.agent === undefined && o.agents === undefined) problems.add(here, 'names no agent; add agents: [NAME] (the agents added with hoard agent add)');
    else if (o.agent !== undefined) {
      const name = guard([...here, 'agent'], problems, () => checkAgentName(o.agent, 'agent'));
      if (name !== undefined) agents = [name];
    } else if (!Array.isArray(o.agents) || o.agents.length === 0 || o.agents.length > MAX_AGENTS) {
      problems.add([...here, 'agents'], `must be a list of 1-${MAX_AGENTS} agent names; got ${describe(o.agents)}`);
    } else {
      o.agents.forEach((a, j) => {
        const name = guard([...here, 'agents', j], problems, () => checkAgentName(a, 'an agent name'));
        if (name !== undefined) agents.push(name);
      });
    }
    for (const [j, a] of agents.entries()) {
      const where = o.agent !== undefined ? [...here, 'agent'] : [...here, 'agents', j];
      const prev = seenAgents.get(a);
      if (prev === i) problems.add(where, `agent ${a} is listed twice`);
      else if (prev !== undefined)
        problems.add(where, `agent ${a} already appears in ${formatPath([...path, prev])}; put all of its specs in one entry (one job per agent)`);
      else seenAgents.set(a, i);
    }
    const specs: string[] = [];
    if (!Array.isArray(o.specs) || o.specs.length === 0 || o.specs.length > MAX_SPECS) {
      problems.add(
        [...here, 'specs'],
        `must be a list of 1-${MAX_SPECS} source specs (e.g. "vm:/var/lib/libvirt/images/*.qcow2", "postgres://backup@db1/shop", "libvirt:web-*"); got ${Array.isArray(o.specs) ? `${o.specs.length} entries` : describe(o.specs)}`,
      );
    } else {
      const seen = new Set<string>();
      o.specs.forEach((s, j) => {
        if (typeof s !== 'string') return problems.add([...here, 'specs', j], `must be a source spec string; got ${describe(s)}`);
        const spec = guard([...here, 'specs', j], problems, () => (parseSourceSpec(s), s.trim()));
        if (spec === undefined) return;
        if (seen.has(spec)) problems.add([...here, 'specs', j], `${JSON.stringify(spec)} is listed twice`);
        seen.add(spec);
        specs.push(spec);
      });
    }
    let hooks: RunHooks | undefined;
    if (o.hooks !== undefined) {
      const h = mapping(o.hooks, [...here, 'hooks'], HOOK_KEYS, problems, 'pre and/or post, each a shell command');
      if (h) {
        hooks = {};
        for (const key of HOOK_KEYS) {
          if (h[key] === undefined) continue;
          const cmd = text(h[key], [...here, 'hooks', key], problems);
          if (cmd !== undefined) hooks[key] = cmd;
        }
        if (h.pre === undefined && h.post === undefined && Object.keys(h).length === 0)
          problems.add([...here, 'hooks'], 'is empty; give pre and/or post, or omit hooks');
      }
    }
    if (problems.size !== before) return void (ok = false);
    out.push(hooks ? { agents, specs, hooks } : { agents, specs });
  });
  return ok ? out : undefined;
}

function checkRetention(v: unknown, path: PathSegment[], problems: ProblemList): RetentionRules | undefined {
  const o = mapping(v, path, RETENTION_KEYS, problems, 'keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly, keep-within');
  if (!o) return undefined;
  if (!RETENTION_KEYS.some((k) => o[k] !== undefined)) {
    if (Object.keys(o).length === 0)
      problems.add(path, `has no rules; give at least one of ${RETENTION_KEYS.join(', ')}, or omit retention to keep every snapshot`);
    return undefined;
  }
  const r: RetentionRules = {};
  const counts: [(typeof RETENTION_KEYS)[number], keyof RetentionRules][] = [
    ['keep-last', 'keepLast'],
    ['keep-hourly', 'keepHourly'],
    ['keep-daily', 'keepDaily'],
    ['keep-weekly', 'keepWeekly'],
    ['keep-monthly', 'keepMonthly'],
    ['keep-yearly', 'keepYearly'],
  ];
  for (const [key, field] of counts) {
    if (o[key] === undefined) continue;
    const n = count(o[key], [...path, key], problems, key);
    if (n !== undefined) (r as Record<string, number>)[field] = n;
  }
  if (o['keep-within'] !== undefined) {
    // The one keep-within parser (@hoard/retention); its message gets this field's path.
    const d = guard([...path, 'keep-within'], problems, () => parseRetentionDuration(o['keep-within']));
    if (d) r.keepWithin = d;
  }
  return r;
}

function checkStore(v: unknown, path: PathSegment[], problems: ProblemList): PolicyStore {
  const store: PolicyStore = { ...POLICY_DEFAULTS.store };
  if (v === undefined) return store;
  const o = mapping(v, path, STORE_KEYS, problems, 'scope: global|job, compression: zstd[:LEVEL]|lz4|none, encryption: true|false');
  if (!o) return store;
  if (o.scope !== undefined) {
    if (o.scope === 'global' || o.scope === 'job') store.scope = o.scope;
    else
      problems.add(
        [...path, 'scope'],
        `must be global (the shared fingerprint store: dedup across all jobs) or job (a store of this policy's own: no dedup with other jobs); got ${describe(o.scope)}`,
      );
  }
  if (o.compression !== undefined) {
    if (typeof o.compression === 'string' && COMPRESSION.test(o.compression)) store.compression = o.compression;
    else problems.add([...path, 'compression'], `must be zstd[:LEVEL] (LEVEL 1-19), lz4 or none; got ${describe(o.compression)}`);
  }
  if (o.encryption !== undefined) {
    if (typeof o.encryption === 'boolean') store.encryption = o.encryption;
    else problems.add([...path, 'encryption'], `must be true or false; got ${describe(o.encryption)}`);
  }
  return store;
}

function checkLimits(v: unknown, path: PathSegment[], problems: ProblemList): PolicyLimits {
  const limits: PolicyLimits = {};
  if (v === undefined) return limits;
  const o = mapping(v, path, LIMIT_KEYS, problems, 'max-concurrent-jobs-per-agent, bandwidth, run-window');
  if (!o) return limits;
  if (o['max-concurrent-jobs-per-agent'] !== undefined) {
    const n = count(o['max-concurrent-jobs-per-agent'], [...path, 'max-concurrent-jobs-per-agent'], problems, 'max-concurrent-jobs-per-agent');
    if (n !== undefined) limits.maxConcurrentJobsPerAgent = n;
  }
  if (o.bandwidth !== undefined) {
    const b = guard([...path, 'bandwidth'], problems, () => parseBandwidth(o.bandwidth));
    if (b) limits.bandwidth = b;
  }
  if (o['run-window'] !== undefined) {
    const w = guard([...path, 'run-window'], problems, () => parseRunWindow(o['run-window']));
    if (w) limits.runWindow = w;
  }
  return limits;
}

function checkVerify(v: unknown, timeZone: string | undefined, path: PathSegment[], problems: ProblemList): VerifyPolicy | undefined {
  const tz = timeZone ?? 'UTC';
  const d = POLICY_DEFAULTS.verify;
  const o = v === undefined ? {} : mapping(v, path, VERIFY_KEYS, problems, 'structure: daily, read-data: weekly, subset: 10%');
  if (!o) return undefined;
  const before = problems.size;
  const sched = (value: unknown, fallback: string, key: string): Schedule | null | undefined => {
    if (value === false || value === 'off') return null;
    return scheduleOf(value === undefined ? fallback : value, tz, [...path, key], problems);
  };
  const structure = sched(o.structure, d.structure, 'structure');
  const readData = sched(o['read-data'], d.readData, 'read-data');
  let subset: number = d.subset;
  if (o.subset !== undefined) {
    const n = guard([...path, 'subset'], problems, () => parsePercent(o.subset));
    if (n !== undefined) subset = n;
    if (readData === null) problems.add([...path, 'subset'], 'applies to read-data checks, which are off; remove subset or give read-data a schedule');
  }
  if (problems.size !== before || structure === undefined || readData === undefined) return undefined;
  return { structure, readData, subset };
}

function checkDrill(v: unknown, path: PathSegment[], problems: ProblemList): DrillPolicy | undefined {
  const o = mapping(v, path, DRILL_KEYS, problems, 'postgres-url: postgres://user@host:5432/postgres, query: "select count(*) from accounts"');
  if (!o) return undefined;
  const before = problems.size;
  let postgresUrl: string | undefined;
  if (o['postgres-url'] === undefined)
    problems.add(path, 'has no postgres-url; add postgres-url: postgres://user@host:5432/postgres (the server the scratch database is created on)');
  else if (typeof o['postgres-url'] !== 'string' || !/^postgres(ql)?:\/\//i.test(o['postgres-url'].trim()))
    problems.add([...path, 'postgres-url'], `must be a postgres:// URL such as postgres://hoard@db-scratch:5432/postgres; got ${describe(o['postgres-url'])}`);
  else {
    const url = o['postgres-url'].trim();
    if (guard([...path, 'postgres-url'], problems, () => parseSourceSpec(url)) !== undefined) postgresUrl = url;
  }
  let query: string | undefined;
  if (o.query === undefined)
    problems.add(path, 'has no query; add query: with SQL that must return a row in the restored database, e.g. "select count(*) from accounts"');
  else query = text(o.query, [...path, 'query'], problems);
  if (problems.size !== before || postgresUrl === undefined || query === undefined) return undefined;
  return { postgresUrl, query: query.trim() };
}

/** Whether some time of day the schedule fires at lies inside the window. */
function everInWindow(s: Schedule, window: RunWindow): boolean {
  return s.fields.hours.some((h) => s.fields.minutes.some((m) => inRunWindowMinutes(window, h * 60 + m)));
}

/** Checks one policy (as parsed from YAML/JSON, kebab-case keys), reporting problems under `path`. */
export function checkPolicy(value: unknown, path: PathSegment[], problems: ProblemList): Policy | undefined {
  const o = mapping(value, path, POLICY_KEYS, problems, 'name, sources, schedule, retention, store, limits, verify, alert-after, drill');
  if (!o) return undefined;
  const before = problems.size;
  const name =
    o.name === undefined
      ? (problems.add(path, 'the policy has no name; add name: (1-128 letters, digits, ".", "_" or "-")'), undefined)
      : guard([...path, 'name'], problems, () => checkJobName(o.name, 'name'));
  let description: string | undefined;
  if (o.description !== undefined) description = text(o.description, [...path, 'description'], problems, 1024);
  const sources =
    o.sources === undefined
      ? (problems.add(path, 'the policy has no sources; add sources: [{agents: [NAME], specs: [SPEC, ...]}]'), undefined)
      : checkSources(o.sources, [...path, 'sources'], problems);

  let schedule: PolicySchedule | undefined;
  let timeZone: string | undefined;
  const sp = [...path, 'schedule'];
  if (o.schedule === undefined)
    problems.add(path, 'the policy has no schedule; add schedule: {timezone: Europe/Berlin, full: "0 1 * * 0", incremental: "0 1 * * 1-6"}');
  else {
    const s = mapping(o.schedule, sp, SCHEDULE_KEYS, problems, 'timezone, full and optional incremental');
    if (s) {
      if (s.timezone === undefined) problems.add(sp, 'has no timezone; add timezone: with an IANA name such as Europe/Berlin, America/New_York or UTC');
      else {
        const tz = checkTimeZone(s.timezone);
        if (tz.ok) timeZone = tz.timeZone;
        else problems.add([...sp, 'timezone'], tz.message);
      }
      const full =
        s.full === undefined
          ? (problems.add(sp, 'has no full schedule; add full: with a cron expression such as "0 1 * * 0" (Sundays 01:00) or a word such as weekly'), undefined)
          : scheduleOf(s.full, timeZone, [...sp, 'full'], problems);
      const incremental = s.incremental === undefined ? undefined : scheduleOf(s.incremental, timeZone, [...sp, 'incremental'], problems);
      if (full && incremental && full.cron === incremental.cron) {
        problems.add(
          [...sp, 'incremental'],
          `fires exactly when full does (${JSON.stringify(full.cron)}), and full wins, so it would never run; give it other times or remove it`,
        );
      }
      if (timeZone !== undefined && full && (s.incremental === undefined || incremental))
        schedule = incremental ? { timeZone, full, incremental } : { timeZone, full };
    }
  }
  const retention = o.retention === undefined ? undefined : checkRetention(o.retention, [...path, 'retention'], problems);
  const store = checkStore(o.store, [...path, 'store'], problems);
  const limits = checkLimits(o.limits, [...path, 'limits'], problems);
  const verify = checkVerify(o.verify, timeZone, [...path, 'verify'], problems);
  let copyTo: string | undefined;
  if (o['copy-to'] !== undefined) {
    if (typeof o['copy-to'] === 'string' && COPY_TARGET_NAME.test(o['copy-to'])) copyTo = o['copy-to'];
    else
      problems.add(
        [...path, 'copy-to'],
        `must name a copy target of the server config (copyTargets), 1-64 letters, digits, '.', '_' or '-'; got ${describe(o['copy-to'])}`,
      );
  }
  const copyKeep = o['copy-keep'] === undefined ? undefined : checkRetention(o['copy-keep'], [...path, 'copy-keep'], problems);
  if (o['copy-keep'] !== undefined && o['copy-to'] === undefined)
    problems.add([...path, 'copy-keep'], 'applies to the copies of copy-to, which is not given; add copy-to: TARGET or remove copy-keep');
  const alertAfter = o['alert-after'] === undefined ? undefined : guard([...path, 'alert-after'], problems, () => parseElapsed(o['alert-after']));
  const drill = o.drill === undefined ? undefined : checkDrill(o.drill, [...path, 'drill'], problems);

  if (schedule && limits.runWindow) {
    for (const kind of ['full', 'incremental'] as const) {
      const s = schedule[kind];
      if (s && !everInWindow(s, limits.runWindow)) {
        problems.add(
          [...path, 'limits', 'run-window'],
          `schedule.${kind} (${JSON.stringify(s.expression)}) never fires inside run-window ${limits.runWindow.text}, so it would never run`,
        );
      }
    }
  }
  if (problems.size !== before || name === undefined || sources === undefined || schedule === undefined || verify === undefined) return undefined;
  const policy: Policy = { name, sources, schedule, store, limits, verify };
  if (description !== undefined) policy.description = description;
  if (retention !== undefined) policy.retention = retention;
  if (alertAfter !== undefined) policy.alertAfter = alertAfter;
  if (copyTo !== undefined) policy.copyTo = copyTo;
  if (copyKeep !== undefined) policy.copyKeep = copyKeep;
  if (drill !== undefined) policy.drill = drill;
  return reorder(policy);
}

/** Fixed key order, so that equal policies compare and print equal. */
function reorder(p: Policy): Policy {
  const out: Policy = { name: p.name } as Policy;
  if (p.description !== undefined) out.description = p.description;
  out.sources = p.sources;
  out.schedule = p.schedule;
  if (p.retention !== undefined) out.retention = p.retention;
  out.store = p.store;
  out.limits = p.limits;
  out.verify = p.verify;
  if (p.alertAfter !== undefined) out.alertAfter = p.alertAfter;
  if (p.copyTo !== undefined) out.copyTo = p.copyTo;
  if (p.copyKeep !== undefined) out.copyKeep = p.copyKeep;
  if (p.drill !== undefined) out.drill = p.drill;
  return out;
}

/**
 * The rules planRetention applies to a validated policy's snapshots: its retention block
 * in the time zone of its schedule (buckets and the keep-within calendar are that zone's).
 * Undefined when the policy has no retention block: every snapshot is kept.
 */
export function policyRetentionRules(policy: Policy): PlanRetentionRules | undefined {
  if (policy.retention === undefined) return undefined;
  return { ...policy.retention, timeZone: policy.schedule.timeZone };
}

/** Runs an agent may run at once when no policy says otherwise. */
export const DEFAULT_AGENT_RUN_LIMIT = 1;

/**
 * How many runs an agent may run at once: the smallest `max-concurrent-jobs-per-agent` of
 * the policies naming it (a policy without the limit counts as the default, 1), or 1 when
 * no policy names it. The server's claim enforces it and tells the agent.
 */
export function agentRunLimit(policies: readonly Policy[], agent: string): number {
  let limit: number | undefined;
  for (const p of policies) {
    if (!p.sources.some((s) => s.agents.includes(agent))) continue;
    const own = p.limits.maxConcurrentJobsPerAgent ?? DEFAULT_AGENT_RUN_LIMIT;
    limit = limit === undefined ? own : Math.min(limit, own);
  }
  return limit ?? DEFAULT_AGENT_RUN_LIMIT;
}

/** Validates one policy object (kebab-case keys, as in a policy file); throws PolicyError with every problem. */
export function validatePolicy(value: unknown): Policy {
  const problems = new ProblemList();
  const policy = checkPolicy(value, [], problems);
  if (problems.size > 0 || !policy) {
    throw new PolicyError(problems.items.map(({ path, message }) => ({ path: formatPath(path), message })));
  }
  return policy;
}
