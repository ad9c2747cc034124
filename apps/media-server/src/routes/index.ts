/** Every route module of the server, by concern; each registers the routes of its contracts. */
import type { Api } from '../http/api.js';
import type { MediaServer } from '../server.js';
import { agentRoutes } from './agents.js';
import { consoleRoutes } from './console.js';
import { maintenanceRoutes } from './maintenance.js';
import { notifyRoutes } from './notify.js';
import { reportRoutes } from './reports.js';
import { restoreBrowseRoutes } from './restore-browse.js';
import { policyRoutes } from './policies.js';
import { runRoutes } from './runs.js';
import { serverRoutes } from './server-info.js';
import { sessionRoutes } from './sessions.js';
import { snapshotRoutes } from './snapshots.js';
import { tokenRoutes } from './tokens.js';

export function registerRoutes(api: Api, server: MediaServer): void {
  serverRoutes(api, server);
  tokenRoutes(api, server);
  agentRoutes(api, server);
  policyRoutes(api, server);
  maintenanceRoutes(api, server);
  runRoutes(api, server);
  sessionRoutes(api, server);
  snapshotRoutes(api, server);
  notifyRoutes(api, server);
  reportRoutes(api, server);
  consoleRoutes(api, server);
  restoreBrowseRoutes(api, server);
}
