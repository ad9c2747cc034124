/**
 * Notifications, declared once (docs/notifications.md): the event every target receives
 * (a webhook's JSON body, a command's stdin, the facts of a mail), the targets the server
 * sends to, and the matchers that route events to them. The server checks target
 * definitions against these schemas, whether they come from the API or the config file.
 */
import { Type, type Static } from '@sinclair/typebox';

const optional = Type.Optional;
const Text = (max: number, description?: string) => Type.String({ minLength: 1, maxLength: max, ...(description ? { description } : {}) });

/** Every kind of event, and what it means (docs/notifications.md, "Events"). */
export const EVENT_KINDS = {
  'run-failed': 'a backup or restore run of a job ended failed (error and the tail of the source stderr)',
  'run-missed': 'a scheduled run did not start: the previous run of the job was still going, or missed runs were skipped',
  'run-held': "a scheduled run was held back by its policy's run window; it starts when the window opens",
  'job-overdue': "a job has had no successful backup for longer than its policy's alert-after",
  'verify-damage': 'verify found damaged or missing data in the repository',
  'agent-offline': "an agent has not been seen for longer than the server's agent-offline-after",
  'store-capacity': "the repository's usage passed its threshold, or its forecast fills the quota within the warning days",
  'maintenance-failed': 'a prune or garbage collection failed',
  'validity-report': 'the periodic backup-validity report (data.report; a mail carries it as an HTML attachment)',
  test: 'a test event (`hoard notify test TARGET`)',
} as const;
export type EventKind = keyof typeof EVENT_KINDS;
export const EVENT_KIND_NAMES = Object.keys(EVENT_KINDS) as EventKind[];

export const Severity = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')]);
export type Severity = Static<typeof Severity>;
export const SEVERITY_ORDER: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

/**
 * The event, as a webhook receives it in its body and a command on its stdin. Version 1;
 * fields are only ever added.
 */
export const NotificationEvent = Type.Object(
  {
    version: Type.Literal(1),
    /** Unique per event; a receiver that sees an id twice (a retried delivery) may drop it. */
    id: Type.String({ description: 'unique per event: a retried delivery carries the same id' }),
    kind: Type.Union(EVENT_KIND_NAMES.map((k) => Type.Literal(k))),
    severity: Severity,
    status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')], {
      description: '`firing` when a problem starts; `resolved` (once) when its condition clears',
    }),
    /** What coalesces repeats: one firing event per condition until it clears. */
    condition: optional(Type.String({ description: 'the condition, e.g. run-failed:db1; absent for one-off events (test)' })),
    at: Type.String({ description: 'when the server saw it (ISO-8601 UTC)' }),
    server: Type.String({ description: "the server's URL or configured name" }),
    summary: Type.String({ description: 'one line, e.g. "job db1: backup run failed"' }),
    detail: optional(Type.String({ description: 'the details, several lines' })),
    job: optional(Type.String()),
    policy: optional(Type.String()),
    agent: optional(Type.String()),
    run: optional(Type.String()),
    /** Kind-specific facts (error text, stderr tail, next window, forecast...). */
    data: optional(Type.Record(Type.String(), Type.Unknown())),
    /** For a resolved event: when the condition opened, and how many repeats were not sent. */
    openedAt: optional(Type.String()),
    repeats: optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, title: 'NotificationEvent' },
);
export type NotificationEvent = Static<typeof NotificationEvent>;

/** Which events a target gets: every list is "any of"; a missing list matches everything. */
export const EventMatch = Type.Object(
  {
    kinds: optional(Type.Array(Text(64), { maxItems: 32, description: 'event kinds, or globs of them (run-*); default every kind' })),
    jobs: optional(Type.Array(Text(128), { maxItems: 64, description: 'job names or globs (db-*); an event without a job matches only when this is absent' })),
    policies: optional(Type.Array(Text(128), { maxItems: 64, description: 'policy names or globs' })),
    minSeverity: optional(Severity),
  },
  { additionalProperties: false },
);
export type EventMatch = Static<typeof EventMatch>;

const common = {
  match: optional(EventMatch),
};

export const SmtpTarget = Type.Object(
  {
    kind: Type.Literal('smtp'),
    host: Text(255, 'the mail server'),
    port: optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'default 465 with security tls, else 587 (25 with none)' })),
    security: optional(
      Type.Union([Type.Literal('tls'), Type.Literal('starttls'), Type.Literal('none')], {
        description: 'tls: TLS from the start (465); starttls: upgrade and require it (default); none: plain (a local relay only)',
      }),
    ),
    user: optional(Text(255)),
    password: optional(Text(1024)),
    from: Text(255, 'the From address, e.g. "hoard <backup@example.org>"'),
    to: Type.Array(Text(255), { minItems: 1, maxItems: 50, description: 'recipients' }),
    /** Accept a server certificate no CA vouches for (a self-signed relay). */
    insecureTls: optional(Type.Boolean()),
    ...common,
  },
  { additionalProperties: false },
);

export const WebhookTarget = Type.Object(
  {
    kind: Type.Literal('webhook'),
    url: Type.String({ pattern: '^https?://', maxLength: 2048, description: 'http:// or https:// URL that receives a POST of the event' }),
    secret: optional(
      Type.String({ minLength: 16, maxLength: 1024, description: 'signs each body: X-Hoard-Signature: sha256=HMAC-SHA256(secret, body) in hex' }),
    ),
    headers: optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,100}$' }), Type.String({ maxLength: 4096 }))),
    ...common,
  },
  { additionalProperties: false },
);

export const CommandTarget = Type.Object(
  {
    kind: Type.Literal('command'),
    command: Type.Array(Text(4096), { minItems: 1, maxItems: 64, description: 'program and arguments (no shell); the event is on its stdin as JSON' }),
    timeoutSeconds: optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'killed after this long (default 30)' })),
    ...common,
  },
  { additionalProperties: false },
);

export const TargetSettings = Type.Union([SmtpTarget, WebhookTarget, CommandTarget]);
export type TargetSettings = Static<typeof TargetSettings>;
export type SmtpTarget = Static<typeof SmtpTarget>;
export type WebhookTarget = Static<typeof WebhookTarget>;
export type CommandTarget = Static<typeof CommandTarget>;

/** A target as the API lists it: secrets replaced by "(set)". */
export const TargetView = Type.Object(
  {
    name: Type.String(),
    source: Type.Union([Type.Literal('api'), Type.Literal('config')], { description: 'config: from the server config file (change it there)' }),
    settings: Type.Record(Type.String(), Type.Unknown()),
    pending: Type.Integer({ minimum: 0, description: 'notifications waiting for delivery' }),
    lastError: optional(Type.String({ description: 'why the oldest waiting notification has not been delivered yet' })),
    nextAttemptAt: optional(Type.String()),
  },
  { additionalProperties: false },
);
export type TargetView = Static<typeof TargetView>;
