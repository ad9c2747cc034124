/**
 * Notification targets and open conditions (docs/notifications.md). Targets from the
 * config file are listed and tested here but changed only in the file.
 */
import { API_ROUTES as R, RequestError, type TargetSettings } from '@hoard/protocol';
import type { Api } from '../http/api.js';
import type { MediaServer } from '../server.js';

export function notifyRoutes(api: Api, server: MediaServer): void {
  const { notifier, catalog } = server;

  api.json(R.listNotifyTargets, async () => ({ targets: await notifier.views() }));

  api.json(R.putNotifyTarget, async ({ params, body }) => {
    if (notifier.isConfigTarget(params.name))
      throw new RequestError('conflict', `notification target ${params.name} is defined in the server's config file: change it there`);
    await catalog.putNotifyTarget(params.name, body as unknown as Record<string, unknown>);
    server.log.info({ target: params.name, kind: (body as TargetSettings).kind }, 'notification target saved');
    return (await notifier.views()).find((t) => t.name === params.name)!;
  });

  api.json(R.deleteNotifyTarget, async ({ params }) => {
    if (notifier.isConfigTarget(params.name))
      throw new RequestError('conflict', `notification target ${params.name} is defined in the server's config file: remove it there`);
    const dropped = (await catalog.listOutbox()).filter((e) => e.target === params.name).length;
    if (!(await catalog.deleteNotifyTarget(params.name)))
      throw new RequestError('not_found', `no notification target ${params.name} (\`hoard notify target list\` shows them)`);
    server.log.info({ target: params.name, dropped }, 'notification target removed');
    return { name: params.name, removed: true as const, dropped };
  });

  api.json(R.testNotifyTarget, async ({ params }) => {
    if (!(await notifier.target(params.name)))
      throw new RequestError('not_found', `no notification target ${params.name} (\`hoard notify target list\` shows them)`);
    return { name: params.name, ...(await notifier.test(params.name)) };
  });

  api.json(R.listNotifyConditions, async () => ({
    conditions: (await catalog.listConditions()).map((c) => ({
      condition: c.key,
      openedAt: c.openedAt,
      lastAt: c.lastAt,
      repeats: c.repeats,
      event: c.event as never,
    })),
  }));
}
