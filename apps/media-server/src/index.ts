export { MediaServer, type MediaServerOptions } from './media-server.js';
export { hashToken, newToken } from './auth.js';
export { StoreHub, type StoreReport } from './store-hub.js';
export type { CapacityReport, JobReport, StoreCapacity } from './capacity-report.js';
export type { ClassicInputs, Trend } from './capacity.js';
