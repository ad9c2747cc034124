export { MediaServer, type MediaServerOptions } from './server.js';
export { hashToken, newToken } from './auth.js';
export { StoreHub, type StoreReport } from './store-hub.js';
export type { CapacityReport, JobReport, StoreCapacity } from './capacity-report.js';
export type { ClassicInputs, Trend } from './capacity.js';
export {
  checkServerConfig,
  loadServerConfig,
  LOG_LEVELS,
  resolveServerSettings,
  SERVER_CONFIG_DEFAULTS,
  ServerConfigError,
  ServerConfigSchema,
  type LogLevel,
  type ServerConfig,
  type ServerConfigOverrides,
  type ServerSettings,
  type ServerStartOptions,
} from './config.js';
export { buildValidityReport } from './validity-report.js';
export { renderValidityHtml } from './validity-html.js';
