export * from './contract.js';
export * from './common.js';
export * from './routes.js';
export * as replySchemas from './replies.js';
export * from './requests.js';
export * from './methods.js';
export * from './notify.js';
export * from './validity.js';
export * from './restore-browse.js';
