export * from './source-spec.js';
export * from './wire.js';
export * from './messages.js';
export * from './client.js';
export * from './chunker-wire.js';
export * from './policy/index.js';
export * from './throttle.js';
export * from './restore-frames.js';
