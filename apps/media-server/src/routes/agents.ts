/** Agents: registered, listed, revoked and rotated by admins; their hello and work poll. */
import { API_ROUTES as R, RequestError } from '@hoard/protocol';
import { hashToken, newToken } from '../auth.js';
import { NO_CONTENT, type Api } from '../http/api.js';
import { abortOnClose, pollWait } from '../http/polls.js';
import type { MediaServer } from '../server.js';

export function agentRoutes(api: Api, server: MediaServer): void {
  const { catalog, log } = server;

  api.json(R.addAgent, async ({ body }) => {
    const token = newToken('agent');
    await catalog.addAgent(body.name, hashToken(token));
    log.info({ agent: body.name }, 'agent added');
    return { name: body.name, token };
  });

  api.json(R.listAgents, async () => {
    const agents = await catalog.listAgents({ includeRevoked: true });
    return { agents: agents.map(({ tokenHash: _hidden, ...a }) => a) };
  });

  api.json(R.revokeAgent, async ({ params }) => {
    const agent = await catalog.revokeAgent(params.name);
    log.info({ agent: params.name }, 'agent revoked');
    return { name: agent.name, revokedAt: agent.revokedAt! };
  });

  api.json(R.rotateAgent, async ({ params }) => {
    const token = newToken('agent');
    await catalog.rotateAgentToken(params.name, hashToken(token));
    log.info({ agent: params.name }, 'agent token rotated');
    return { name: params.name, token };
  });

  api.json(R.agentHello, async ({ who, body }) => {
    const agent = requireAgent(who);
    await catalog.touchAgent(agent, { hostname: body.hostname, version: body.version });
    return { agent, server: 'hoard' as const, protocol: 1 };
  });

  api.json(R.agentWork, async ({ who, query, raw, res }) => {
    const agent = requireAgent(who);
    const waitMs = pollWait(query.wait);
    const abort = abortOnClose(raw, res, server.polls.signal);
    await catalog.touchAgent(agent, {});
    if (query.holding !== undefined) {
      // The agent says which runs it is executing; the others of its running runs were
      // held by a process of it that is gone (docs/protocol.md, "Leases").
      for (const ended of await server.leases.agentHolds(agent, new Set(query.holding.split(',').filter((id) => id !== '')))) {
        log.warn({ run: ended.id, agent, error: ended.error }, 'run ended: its agent restarted without it');
      }
    }
    const run = await server.runs.claim(agent, waitMs, abort);
    if (!run) {
      // A poll cut short by the server stopping is told so: the agent retries elsewhere or later.
      if (server.stopping) throw new RequestError('server_stopping', 'the media server is stopping; poll again in a moment');
      return NO_CONTENT;
    }
    log.info({ run: run.id, agent, job: run.job }, 'run claimed');
    return run;
  });
}

/** The agent's name; routes for agents only are declared so, this narrows the type. */
export function requireAgent(who: { kind: string; name?: string }): string {
  if (who.kind !== 'agent' || who.name === undefined) throw new RequestError('forbidden', 'this call is for agents: use an agent token');
  return who.name;
}
