/**
 * The media server's config file (`hoard server start --config FILE`, reference in
 * docs/operations.md): its schema, written once with TypeBox; the type derived from it;
 * the defaults; and loadServerConfig, which checks every key when the file is read, so a
 * typo or a bad value stops the start with a message naming the file, the key, what was
 * given and what is allowed, instead of surfacing later (or never).
 *
 * JSON, or YAML when the file name ends in .yaml or .yml.
 *
 * Values that a type cannot express (HOST:PORT, a storage location, a cron expression, a
 * time zone) are string formats registered in TypeBox's FormatRegistry under `hoard-*`
 * names, each backed by a function that also says what is wrong for the message.
 */
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { FormatRegistry, KindGuard, Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CALENDAR_WORDS, TargetSettings, checkTimeZone, parseSchedule, type TargetSettings as TargetSettingsType } from '@hoard/protocol';
import { DEFAULT_GC_GRACE_MS, parseS3Url } from '@hoard/repository';
import { parseDocument } from 'yaml';
import { DEFAULT_RUN_LEASE_MS } from './run-board.js';
import type { CopyTargetConfig } from './copy-targets.js';

/** A config file (or a command-line setting) the server cannot start with. */
export class ServerConfigError extends Error {
  override name = 'ServerConfigError';
  readonly code = 'invalid_config';
  constructor(
    /** One line per problem; the message is these lines joined. */
    readonly problems: readonly string[],
  ) {
    super(problems.join('\n'));
  }
}

/** pino's levels, and `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The defaults of the optional settings: what a key that is left out means. The run lease
 * and GC grace come from the modules that use them; MediaServer's own fallbacks for
 * sessionIdleMs, gcSchedule and logLevel are the same values.
 */
export const SERVER_CONFIG_DEFAULTS = Object.freeze({
  listen: '127.0.0.1:8420',
  data: '/var/lib/hoard/server',
  encrypt: false,
  sessionIdleSeconds: 600,
  runLeaseSeconds: DEFAULT_RUN_LEASE_MS / 1000,
  verifyUploads: true,
  logLevel: 'info' as LogLevel,
  gcSchedule: '30 4 * * *',
  gcTimeZone: 'UTC',
  gcGraceHours: DEFAULT_GC_GRACE_MS / 3_600_000,
});

// --- string formats -------------------------------------------------------------------

const LISTEN = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/;

/** `HOST:PORT` (`[v6]:PORT`; an empty host is every interface). */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = LISTEN.exec(text);
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

function listenProblem(text: string): string | undefined {
  if (parseListen(text)) return undefined;
  const port = /:(\d+)$/.exec(text);
  if (!port) return 'no :PORT at the end';
  if (Number(port[1]) > 65535 || port[1].length > 5) return `port ${port[1]} is above 65535`;
  return 'an IPv6 address goes in brackets, e.g. [::1]:8420';
}

function storageProblem(text: string): string | undefined {
  if (text.startsWith('s3://')) {
    try {
      parseS3Url(text);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (text.startsWith('fs:')) return text.slice(3).trim() === '' ? 'fs: without a directory' : undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  if (scheme) return `unsupported scheme ${scheme[1]}:`;
  return text.trim() === '' ? 'empty' : undefined;
}

function scheduleProblem(text: string): string | undefined {
  if (text === 'off') return undefined;
  try {
    parseSchedule(text, 'UTC');
    return undefined;
  } catch (err) {
    // ScheduleError messages start with the expression, which the message gives already.
    return (err as Error).message.replace(/^"(?:[^"\\]|\\.)*": /, '');
  }
}

function timeZoneProblem(text: string): string | undefined {
  const zone = checkTimeZone(text);
  return zone.ok ? undefined : zone.message;
}

/** Why a string does not have the format, for the message; registered as TypeBox formats. */
const FORMATS: Readonly<Record<string, (text: string) => string | undefined>> = {
  'hoard-listen': listenProblem,
  'hoard-storage': storageProblem,
  'hoard-gc-schedule': scheduleProblem,
  'hoard-time-zone': timeZoneProblem,
};
for (const [name, problem] of Object.entries(FORMATS)) {
  if (!FormatRegistry.Has(name)) FormatRegistry.Set(name, (text) => problem(text) === undefined);
}

// --- the schema -----------------------------------------------------------------------

/**
 * `allowed` (not a JSON Schema keyword; TypeBox keeps it) is what the refusal message
 * says a key must be. `default` repeats SERVER_CONFIG_DEFAULTS for readers of the schema.
 */
const path = (allowed: string) => Type.String({ minLength: 1, allowed });
const seconds = (allowed: string, range: { minimum: number; maximum?: number }, dflt: number) => Type.Number({ ...range, allowed, default: dflt });

export const ServerConfigSchema = Type.Object(
  {
    listen: Type.Optional(
      Type.String({
        format: 'hoard-listen',
        default: SERVER_CONFIG_DEFAULTS.listen,
        allowed: 'HOST:PORT with a port from 0 to 65535, e.g. "0.0.0.0:8420", "127.0.0.1:8420" or "[::]:8420"',
      }),
    ),
    storage: Type.Optional(Type.String({ format: 'hoard-storage', allowed: 'fs:DIR (a directory) or s3://bucket/prefix' })),
    data: Type.Optional(Type.String({ minLength: 1, default: SERVER_CONFIG_DEFAULTS.data, allowed: 'a directory path' })),
    tls: Type.Optional(
      Type.Object(
        {
          cert: path('the path of the PEM certificate file'),
          key: path('the path of the PEM private key file'),
        },
        { additionalProperties: false, allowed: 'an object {"cert": FILE, "key": FILE} naming the PEM certificate and key files' },
      ),
    ),
    passphraseFile: Type.Optional(path('the path of a file whose first line is the repository passphrase')),
    encrypt: Type.Optional(Type.Boolean({ default: SERVER_CONFIG_DEFAULTS.encrypt, allowed: 'true or false' })),
    sessionIdleSeconds: Type.Optional(seconds('a number of seconds, 1 or more', { minimum: 1 }, SERVER_CONFIG_DEFAULTS.sessionIdleSeconds)),
    runLeaseSeconds: Type.Optional(seconds('a number of seconds from 1 to 86400', { minimum: 1, maximum: 86_400 }, SERVER_CONFIG_DEFAULTS.runLeaseSeconds)),
    quotaBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, allowed: 'a whole number of bytes above 0 (at most 2^53 - 1)' })),
    verifyUploads: Type.Optional(Type.Boolean({ default: SERVER_CONFIG_DEFAULTS.verifyUploads, allowed: 'true or false' })),
    logLevel: Type.Optional(
      Type.Union(
        LOG_LEVELS.map((level) => Type.Literal(level)),
        { default: SERVER_CONFIG_DEFAULTS.logLevel, allowed: `one of ${LOG_LEVELS.join(', ')}` },
      ),
    ),
    gcSchedule: Type.Optional(
      Type.String({
        format: 'hoard-gc-schedule',
        default: SERVER_CONFIG_DEFAULTS.gcSchedule,
        allowed: `a cron expression such as "30 4 * * *", a calendar word (${Object.keys(CALENDAR_WORDS).join(', ')}) or "off"`,
      }),
    ),
    gcTimeZone: Type.Optional(
      Type.String({
        format: 'hoard-time-zone',
        default: SERVER_CONFIG_DEFAULTS.gcTimeZone,
        allowed: 'an IANA time zone such as UTC, Europe/Berlin or America/New_York',
      }),
    ),
    gcGraceHours: Type.Optional(
      Type.Number({ minimum: 0, maximum: 24 * 365, default: SERVER_CONFIG_DEFAULTS.gcGraceHours, allowed: 'a number of hours from 0 to 8760' }),
    ),
    copyTargets: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object(
          {
            repository: Type.String({ format: 'hoard-storage', allowed: 'a directory or s3://bucket/prefix, created with hoard init' }),
            endpoint: Type.Optional(Type.String({ minLength: 1, allowed: "the S3 endpoint URL of the target, when it is not the environment's" })),
            passphraseFile: Type.Optional(path('the path of a file whose first line is the passphrase of the encrypted target')),
            gc: Type.Optional(
              Type.Boolean({
                allowed:
                  "true (default: the server collects the target's garbage on its gcSchedule, after its own) or false (another host runs hoard gc on it)",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        {
          allowed:
            'named copy targets for policies\' copy-to, e.g. {"offsite": {"repository": "s3://offsite/hoard", "passphraseFile": "/etc/hoard/offsite.pass"}}, each with repository and optional endpoint, passphraseFile and gc',
        },
      ),
    ),
    notifications: Type.Optional(
      Type.Object(
        {
          serverName: Type.Optional(Type.String({ minLength: 1, maxLength: 200, allowed: "the server's name in notifications (default its URL)" })),
          targets: Type.Optional(
            Type.Record(Type.String(), TargetSettings, {
              allowed:
                'named notification targets, e.g. {"ops-mail": {"kind": "smtp", "host": "mail.example.org", "from": "hoard@example.org", "to": ["ops@example.org"]}}',
            }),
          ),
          agentOfflineMinutes: Type.Optional(
            Type.Number({ minimum: 0, maximum: 100_000, allowed: 'minutes an agent may be unseen before agent-offline (0: never), default 15' }),
          ),
          usagePercent: Type.Optional(
            Type.Number({ minimum: 1, maximum: 100, allowed: 'the share of quotaBytes used that raises store-capacity (1-100), default 85' }),
          ),
          fillWithinDays: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 3650, allowed: 'days: store-capacity when the forecast fills quotaBytes within them, default 30' }),
          ),
          report: Type.Optional(
            Type.Object(
              {
                schedule: Type.String({ format: 'hoard-gc-schedule', allowed: 'a cron expression such as "0 6 1 * *" or a calendar word such as monthly' }),
                timeZone: Type.Optional(Type.String({ format: 'hoard-time-zone', allowed: 'an IANA time zone such as UTC or Europe/Berlin' })),
                days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, allowed: 'the days the report covers, 1 to 3650 (default 90)' })),
                drill: Type.Optional(Type.Boolean({ allowed: 'true (a restore drill of every job first, the default) or false' })),
                targets: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, allowed: 'the names of the notification targets that get the report' }),
              },
              { additionalProperties: false, allowed: 'an object {schedule, timeZone, days, drill, targets}: the periodic validity report' },
            ),
          ),
        },
        { additionalProperties: false, allowed: 'an object of notification settings (docs/notifications.md)' },
      ),
    ),
    objectLockDays: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 36_500, allowed: 'a whole number of days from 1 to 36500 (S3 storage whose bucket has Object Lock)' }),
    ),
    objectLockMode: Type.Optional(
      Type.Union([Type.Literal('compliance'), Type.Literal('governance')], { default: 'compliance', allowed: 'compliance or governance' }),
    ),
  },
  { additionalProperties: false },
);

export type ServerConfig = Static<typeof ServerConfigSchema>;

// --- checking -------------------------------------------------------------------------

const MAX_SHOWN = 80;

/** A value as the message shows it: JSON, shortened. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** What is wrong with `value` against the object schema, one line (without the source) per key. */
function objectProblems(schema: TObject, value: Record<string, unknown>, prefix: string): string[] {
  const problems: string[] = [];
  const known = Object.keys(schema.properties);
  for (const key of Object.keys(value)) {
    const name = `${prefix}${key}`;
    if (!Object.hasOwn(schema.properties, key)) {
      const close = known
        .map((k) => ({ k, d: distance(key, k) }))
        .filter(({ d }) => d <= Math.max(2, Math.floor(key.length / 4)))
        .sort((x, y) => x.d - y.d)[0];
      const hint = close ? `did you mean "${prefix}${close.k}"? ` : '';
      problems.push(`unknown setting ${shown(name)}; ${hint}known${prefix ? ` in ${prefix.slice(0, -1)}` : ''}: ${known.join(', ')}`);
      continue;
    }
    problems.push(...keyProblems(schema.properties[key], value[key], name));
  }
  for (const key of schema.required ?? []) {
    if (!Object.hasOwn(value, key)) problems.push(`${prefix}${key} is missing: it must be ${allowedOf(schema.properties[key] as TSchema)}`);
  }
  return problems;
}

function keyProblems(schema: TSchema, value: unknown, name: string): string[] {
  if (KindGuard.IsObject(schema) && isPlainObject(value)) return objectProblems(schema, value, `${name}.`);
  // A map of named entries (notification targets): each entry checked under its name.
  if (KindGuard.IsRecord(schema) && isPlainObject(value)) {
    const entry = Object.values(schema.patternProperties)[0] as TSchema;
    return Object.entries(value).flatMap(([key, v]) => keyProblems(entry, v, `${name}.${key}`));
  }
  // Objects told apart by their `kind` (smtp, webhook, command): checked as that kind.
  if (KindGuard.IsUnion(schema) && isPlainObject(value) && typeof value.kind === 'string') {
    const branch = schema.anyOf.find((s) => KindGuard.IsObject(s) && (s.properties.kind as TSchema | undefined)?.const === value.kind);
    if (branch) return objectProblems(branch as TObject, value, `${name}.`);
  }
  if (Value.Check(schema, value)) return [];
  const format = typeof value === 'string' && typeof schema.format === 'string' ? FORMATS[schema.format]?.(value) : undefined;
  return [`${name} must be ${allowedOf(schema)}; got ${shown(value)}${format ? ` (${format})` : ''}`];
}

/** What a key must be, for messages: its `allowed` words, else its schema's description. */
function allowedOf(schema: TSchema): string {
  if (typeof schema.allowed === 'string') return schema.allowed;
  if (KindGuard.IsUnion(schema) && schema.anyOf.every((s) => KindGuard.IsLiteral(s)))
    return `one of ${schema.anyOf.map((s) => JSON.stringify(s.const)).join(', ')}`;
  if (KindGuard.IsUnion(schema) && schema.anyOf.every((s) => KindGuard.IsObject(s) && KindGuard.IsLiteral(s.properties.kind)))
    return `an object whose kind is ${schema.anyOf.map((s) => JSON.stringify((s as TObject).properties.kind!.const)).join(', ')}`;
  return typeof schema.description === 'string' ? schema.description : `of the type ${schema.type ?? 'documented in docs/operations.md'}`;
}

/**
 * Checks a parsed config file; `source` starts every message (`--config FILE`). Throws
 * ServerConfigError naming every bad key.
 */
export function checkServerConfig(value: unknown, source: string, what = 'a JSON object'): ServerConfig {
  if (!isPlainObject(value)) throw new ServerConfigError([`${source} must hold ${what} of settings; got ${shown(value)}`]);
  const problems = objectProblems(ServerConfigSchema, value, '');
  // The per-key checks above and the schema agree; this keeps the type honest if they ever do not.
  if (problems.length === 0 && !Value.Check(ServerConfigSchema, value)) {
    for (const error of Value.Errors(ServerConfigSchema, value))
      problems.push(`${error.path.slice(1).replaceAll('/', '.') || 'the file'}: ${error.message}; got ${shown(error.value)}`);
  }
  if (problems.length > 0) throw new ServerConfigError(problems.map((p) => `${source}: ${p}`));
  return value as ServerConfig;
}

/** YAML's warnings (an unknown tag or directive) are refusals too: the value is not what was meant. */
function parseYamlConfig(text: string): unknown {
  const doc = parseDocument(text, { logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw problem;
  return doc.toJS();
}

/** Reads and checks the config file: JSON, or YAML when its name ends in .yaml or .yml. */
export async function loadServerConfig(file: string): Promise<ServerConfig> {
  const source = `--config ${file}`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ServerConfigError([`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  text = text.replace(/^\uFEFF/, '');
  const yaml = /\.ya?ml$/i.test(file);
  let value: unknown;
  try {
    value = yaml ? parseYamlConfig(text) : JSON.parse(text);
  } catch (err) {
    const reason = String((err as Error).message).split('\n')[0];
    const hint =
      yaml && /alias/i.test(reason) ? '; a value starting with * is read as a YAML alias: put cron expressions in quotes, e.g. gcSchedule: "*/30 * * * *"' : '';
    throw new ServerConfigError([`${source} is not valid ${yaml ? 'YAML' : 'JSON'}: ${reason}${hint}`]);
  }
  return checkServerConfig(value, source, yaml ? 'a YAML mapping' : 'a JSON object');
}

// --- config + command line -> MediaServer options -------------------------------------

/** Command-line settings; each wins over its config key. */
export interface ServerConfigOverrides {
  listen?: string;
  storage?: string;
  data?: string;
  tlsCert?: string;
  tlsKey?: string;
  passphraseFile?: string;
  encrypt?: boolean;
  logLevel?: string;
  /**
   * `--adopt-state`: an empty catalog takes over the server state in the bucket. Command
   * line only: a decision for one start, not a setting (a config key would adopt again
   * whenever the data directory is lost, without anyone deciding it).
   */
  adoptState?: boolean;
}

const FLAGS: ReadonlyArray<[keyof ServerConfigOverrides, string, TSchema]> = [
  ['listen', '--listen', ServerConfigSchema.properties.listen],
  ['storage', '--storage', ServerConfigSchema.properties.storage],
  ['data', '--data', ServerConfigSchema.properties.data],
  ['tlsCert', '--tls-cert', ServerConfigSchema.properties.tls.properties.cert],
  ['tlsKey', '--tls-key', ServerConfigSchema.properties.tls.properties.key],
  ['passphraseFile', '--passphrase-file', ServerConfigSchema.properties.passphraseFile],
  ['encrypt', '--encrypt', ServerConfigSchema.properties.encrypt],
  ['logLevel', '--log-level', ServerConfigSchema.properties.logLevel],
];

/** What `hoard server start` runs with: the config's settings, the command line's over them. */
export interface ServerSettings {
  /** Where the repository lives: an absolute directory or s3://bucket/prefix. */
  storage: string;
  /** The catalog (`catalog/`) and `admin-token`, absolute. */
  dataDir: string;
  /** Create the repository encrypted when the storage holds none. */
  encrypt: boolean;
  /** Create the repository with S3 Object Lock when the storage holds none (objectLockDays). */
  objectLock?: { mode: 'COMPLIANCE' | 'GOVERNANCE'; days: number };
  passphraseFile?: string;
  /** MediaServer.start's options but the repository, which the caller opens at `storage`. */
  server: ServerStartOptions;
}

/**
 * The part of MediaServer.start's options that comes from the settings (the same names
 * and units; written out here so that this module does not depend on the HTTP server's).
 */
export interface ServerStartOptions {
  catalogDir: string;
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  sessionIdleMs: number;
  runLeaseMs: number;
  verifyUploads: boolean;
  quotaBytes?: number;
  /** null: no scheduled GC. */
  gcSchedule: string | null;
  gcTimeZone: string;
  gcGraceMs: number;
  logLevel: string;
  /** `--adopt-state`; absent when not given. */
  adoptState?: boolean;
  /** Notification settings (config `notifications`, docs/notifications.md). */
  notifications?: {
    serverName?: string;
    targets?: Record<string, TargetSettingsType>;
    agentOfflineAfterMs?: number;
    usagePercent?: number;
    fillWithinDays?: number;
    report?: { schedule: string; timeZone?: string; days?: number; drill?: boolean; targets: string[] };
  };
  /** Second repositories a policy's copy-to names (docs/sync.md). */
  copyTargets?: Record<string, CopyTargetConfig>;
}

/**
 * Merges the config and the command line into the server's settings, with the defaults
 * filled in. Throws ServerConfigError for a bad config or command-line value, no storage,
 * or half of TLS. `source` names the config file in messages (`--config FILE`).
 */
export function resolveServerSettings(config: ServerConfig, overrides: ServerConfigOverrides = {}, source?: string): ServerSettings {
  checkServerConfig(config, source ?? 'the server config');
  const problems: string[] = [];
  for (const [key, flag, schema] of FLAGS) {
    if (overrides[key] !== undefined) problems.push(...keyProblems(schema, overrides[key], flag));
  }
  const storage = overrides.storage ?? config.storage;
  if (storage === undefined) problems.push(`no storage: give --storage fs:DIR or s3://bucket/prefix${source ? `, or "storage" in ${source}` : ''}`);
  const cert = overrides.tlsCert ?? config.tls?.cert;
  const key = overrides.tlsKey ?? config.tls?.key;
  if ((cert === undefined) !== (key === undefined))
    problems.push(`TLS needs both a certificate and a key: --tls-cert and --tls-key${source ? `, or "tls": {"cert", "key"} in ${source}` : ''}`);
  if (config.objectLockDays !== undefined && storage !== undefined && !storage.startsWith('s3://'))
    problems.push(`objectLockDays needs S3 storage (s3://bucket/prefix) whose bucket has Object Lock; ${storage} is a directory, which cannot lock objects`);
  if (config.objectLockMode !== undefined && config.objectLockDays === undefined)
    problems.push('objectLockMode needs objectLockDays: the days each object stays locked');
  for (const name of Object.keys(config.notifications?.targets ?? {})) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name))
      problems.push(`notifications.targets: the name ${shown(name)} is not valid: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  for (const name of Object.keys(config.copyTargets ?? {})) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name))
      problems.push(`copyTargets: the name ${shown(name)} is not valid: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  if (problems.length > 0 || storage === undefined) throw new ServerConfigError(problems);

  const d = SERVER_CONFIG_DEFAULTS;
  const dataDir = resolve(overrides.data ?? config.data ?? d.data);
  const listen = parseListen(overrides.listen ?? config.listen ?? d.listen)!;
  const gcSchedule = config.gcSchedule ?? d.gcSchedule;
  const gcTimeZone = checkTimeZone(config.gcTimeZone ?? d.gcTimeZone);
  if (!gcTimeZone.ok) throw new ServerConfigError([gcTimeZone.message]); // checked above
  return {
    storage: storage.startsWith('s3://') ? storage : resolve(storage.startsWith('fs:') ? storage.slice(3) : storage),
    dataDir,
    encrypt: overrides.encrypt ?? config.encrypt ?? d.encrypt,
    ...(config.objectLockDays !== undefined
      ? { objectLock: { mode: config.objectLockMode === 'governance' ? ('GOVERNANCE' as const) : ('COMPLIANCE' as const), days: config.objectLockDays } }
      : {}),
    passphraseFile: overrides.passphraseFile ?? config.passphraseFile,
    server: {
      catalogDir: resolve(dataDir, 'catalog'),
      host: listen.host,
      port: listen.port,
      tls: cert !== undefined && key !== undefined ? { certFile: cert, keyFile: key } : undefined,
      sessionIdleMs: Math.round((config.sessionIdleSeconds ?? d.sessionIdleSeconds) * 1000),
      runLeaseMs: Math.round((config.runLeaseSeconds ?? d.runLeaseSeconds) * 1000),
      verifyUploads: config.verifyUploads ?? d.verifyUploads,
      quotaBytes: config.quotaBytes,
      gcSchedule: gcSchedule === 'off' ? null : gcSchedule,
      gcTimeZone: gcTimeZone.timeZone,
      gcGraceMs: Math.round((config.gcGraceHours ?? d.gcGraceHours) * 3_600_000),
      logLevel: overrides.logLevel ?? config.logLevel ?? d.logLevel,
      ...(overrides.adoptState === true ? { adoptState: true } : {}),
      ...(config.notifications ? { notifications: notificationSettings(config.notifications) } : {}),
      ...(config.copyTargets ? { copyTargets: resolveCopyTargets(config.copyTargets) } : {}),
    },
  };
}

/** Copy targets with their directories and files as absolute paths (the server may change its working directory). */
function resolveCopyTargets(targets: NonNullable<ServerConfig['copyTargets']>): Record<string, CopyTargetConfig> {
  const out: Record<string, CopyTargetConfig> = {};
  for (const [name, t] of Object.entries(targets)) {
    out[name] = {
      repository: t.repository.startsWith('s3://') ? t.repository : resolve(t.repository.startsWith('fs:') ? t.repository.slice(3) : t.repository),
      ...(t.endpoint !== undefined ? { endpoint: t.endpoint } : {}),
      ...(t.passphraseFile !== undefined ? { passphraseFile: resolve(t.passphraseFile) } : {}),
      ...(t.gc !== undefined ? { gc: t.gc } : {}),
    };
  }
  return out;
}

function notificationSettings(n: NonNullable<ServerConfig['notifications']>): NonNullable<ServerStartOptions['notifications']> {
  return {
    ...(n.serverName !== undefined ? { serverName: n.serverName } : {}),
    ...(n.targets !== undefined ? { targets: n.targets } : {}),
    ...(n.agentOfflineMinutes !== undefined ? { agentOfflineAfterMs: Math.round(n.agentOfflineMinutes * 60_000) } : {}),
    ...(n.usagePercent !== undefined ? { usagePercent: n.usagePercent } : {}),
    ...(n.fillWithinDays !== undefined ? { fillWithinDays: n.fillWithinDays } : {}),
    ...(n.report !== undefined ? { report: n.report } : {}),
  };
}
