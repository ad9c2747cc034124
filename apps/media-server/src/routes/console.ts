/** The web console's routes: sign-in and sign-out (session cookie), the session, the live event stream, the task list. */
import { API_ROUTES as R, RequestError } from '@hoard/protocol';
import { clearedSessionCookie, sessionIdOf } from '../console-sessions.js';
import type { Api } from '../http/api.js';
import type { MediaServer } from '../server.js';

export function consoleRoutes(api: Api, server: MediaServer): void {
  api.json(R.signIn, async ({ body, raw, res }) => {
    const { session, cookie } = await server.consoleSessions.signIn(raw, body.token);
    res.setHeader('set-cookie', cookie);
    res.setHeader('cache-control', 'no-store');
    server.log.info({ role: session.role, label: session.label }, 'console sign-in');
    return session;
  });

  api.json(R.consoleSession, async ({ raw }) => {
    const id = sessionIdOf(raw);
    if (id === undefined || raw.headers.authorization)
      throw new RequestError('not_found', 'this request has no console session (it was sent with a Bearer token): sign in at /ui');
    return server.consoleSessions.describe(id);
  });

  api.json(R.signOut, async ({ raw, res }) => {
    const id = sessionIdOf(raw);
    if (id === undefined || raw.headers.authorization) return { signedOut: false };
    res.setHeader('set-cookie', clearedSessionCookie(raw));
    return { signedOut: server.consoleSessions.signOut(id) };
  });

  api.raw(R.events, async ({ res }) => {
    server.consoleEvents.attach(res);
  });

  api.json(R.listTasks, async ({ query }) => {
    const tasks = await server.catalog.listTasks({
      ...(query.kind ? { kind: query.kind } : {}),
      ...(query.job ? { job: query.job } : {}),
      limit: query.limit ?? 100,
      newestFirst: true,
    });
    return {
      tasks: tasks.map((t) => ({
        id: t.id,
        kind: t.kind,
        state: t.state,
        startedAt: t.startedAt,
        ...(t.job ? { job: t.job } : {}),
        ...(t.policy ? { policy: t.policy } : {}),
        ...(t.finishedAt ? { finishedAt: t.finishedAt } : {}),
        ...(t.summary ? { summary: t.summary } : {}),
        ...(t.error ? { error: t.error } : {}),
        ...(t.result !== undefined ? { result: t.result } : {}),
      })),
    };
  });
}
