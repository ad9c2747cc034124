/** The server itself: health, metrics, the OpenAPI document, who am I, stores, the capacity report. */
import { API_ROUTES as R, RequestError } from '@hoard/protocol';
import { buildReport } from '../capacity-report.js';
import type { Api } from '../http/api.js';
import type { MediaServer } from '../server.js';

export function serverRoutes(api: Api, server: MediaServer): void {
  api.json(R.health, async () => ({ ok: true as const, repository: server.repo.location, sessions: server.sessions.size }));

  api.plain(R.metrics, async (_request, reply) => {
    const body = await server.metrics.registry.metrics();
    return reply.header('content-type', server.metrics.registry.contentType).send(body);
  });

  api.plain(R.openapi, async (_request, reply) => reply.send(api.app.swagger()));

  api.json(R.whoami, async ({ who }) => (who.kind === 'agent' ? { role: 'agent', agent: who.name } : { role: who.kind }));

  api.json(R.listStores, async () => ({ stores: await server.stores.reports() }));

  api.json(R.report, async ({ query }) => {
    const quota = query.quota ?? server.options.quotaBytes;
    if (quota !== undefined && !Number.isSafeInteger(quota)) throw new RequestError('invalid_request', `quota must be a whole number of bytes; got ${quota}`);
    return buildReport(server.catalog, server.repo, { now: server.now(), quotaBytes: quota, growthYears: query.growthYears ?? 1 });
  });
}
