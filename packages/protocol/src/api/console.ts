/**
 * The web console's routes (docs/console.md): signing in with an API token for a session
 * cookie, signing out, and the live event stream the dashboard listens to. The console
 * calls every other route as the CLI does; the server accepts its session cookie in place
 * of the Bearer header (with the CSRF checks of docs/console.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { IsoTime } from './common.js';
import { defineRoute, READERS } from './contract.js';
import { RunView } from './replies.js';

const optional = Type.Optional;

/** The request header every console request carries; cookie-authenticated changes without it are refused. */
export const CONSOLE_HEADER = 'x-hoard-console';
/** The session cookie's name. */
export const SESSION_COOKIE = 'hoard_session';

export const ConsoleSession = Type.Object(
  {
    role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]),
    label: Type.String(),
    expiresAt: IsoTime,
  },
  { title: 'ConsoleSession' },
);
export type ConsoleSession = Static<typeof ConsoleSession>;

export const signIn = defineRoute({
  id: 'signIn',
  method: 'POST',
  path: '/v1/console/session',
  access: 'public',
  tag: 'console',
  summary: 'Sign in to the web console with an admin, operator or viewer token: sets the session cookie (agent tokens cannot sign in)',
  body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 1024 }) }),
  status: 201,
  reply: ConsoleSession,
});

export const consoleSession = defineRoute({
  id: 'consoleSession',
  method: 'GET',
  path: '/v1/console/session',
  access: READERS,
  tag: 'console',
  summary: 'The console session of the cookie: role, label, when it ends',
  reply: ConsoleSession,
});

export const signOut = defineRoute({
  id: 'signOut',
  method: 'DELETE',
  path: '/v1/console/session',
  access: READERS,
  tag: 'console',
  summary: "Sign out: the server forgets the cookie's session and the cookie is cleared",
  reply: Type.Object({ signedOut: Type.Boolean({ description: 'false when the request had no session (a Bearer token)' }) }),
});

export const events = defineRoute({
  id: 'events',
  method: 'GET',
  path: '/v1/events',
  access: READERS,
  tag: 'console',
  summary: 'Server-sent events: run progress (bytes, rate, ETA) and run, task and catalog changes, as they happen',
  replyPayload: 'events',
});

/** `event: run`: a run was queued, started, reported progress or finished. */
export const RunEvent = Type.Object(
  {
    run: RunView,
    rate: optional(Type.Number({ minimum: 0, description: 'bytes read per second, over the last progress reports' })),
    etaSeconds: optional(Type.Number({ minimum: 0, description: 'seconds until bytesTotal is read at that rate (when the total is known)' })),
  },
  { title: 'RunEvent' },
);
export type RunEvent = Static<typeof RunEvent>;

/** `event: task`: a verify, prune, GC, copy or drill task started or ended. */
export const TaskEvent = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    job: optional(Type.String()),
    state: Type.String(),
    startedAt: IsoTime,
    finishedAt: optional(IsoTime),
    summary: optional(Type.String()),
    error: optional(Type.String()),
  },
  { title: 'TaskEvent' },
);
export type TaskEvent = Static<typeof TaskEvent>;

/** `event: changed`: records of these kinds changed (snapshots, agents, jobs, policies, alerts); reload what shows them. */
export const ChangedEvent = Type.Object({ kinds: Type.Array(Type.String()) }, { title: 'ChangedEvent' });
export type ChangedEvent = Static<typeof ChangedEvent>;

/** A maintenance task as the catalog keeps it: verify, prune, GC, copy or drill, with its report. */
export const TaskView = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('verify'), Type.Literal('prune'), Type.Literal('gc'), Type.Literal('copy'), Type.Literal('drill')]),
    job: optional(Type.String()),
    policy: optional(Type.String({ description: 'the policy that scheduled it; absent when someone asked for it' })),
    state: Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    startedAt: IsoTime,
    finishedAt: optional(IsoTime),
    summary: optional(Type.String()),
    error: optional(Type.String()),
    result: optional(Type.Unknown({ description: "the task's full report (the GC, verify, prune or drill report)" })),
  },
  { title: 'TaskView' },
);
export type TaskView = Static<typeof TaskView>;

export const listTasks = defineRoute({
  id: 'listTasks',
  method: 'GET',
  path: '/v1/tasks',
  access: READERS,
  tag: 'maintenance',
  summary: 'Verify, prune, GC, copy and drill tasks with their reports, newest first',
  query: Type.Object({
    kind: optional(Type.Union([Type.Literal('verify'), Type.Literal('prune'), Type.Literal('gc'), Type.Literal('copy'), Type.Literal('drill')])),
    job: optional(Type.String({ minLength: 1, maxLength: 128 })),
    limit: optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'at most this many (default 100)' })),
  }),
  reply: Type.Object({ tasks: Type.Array(TaskView) }),
});
