/**
 * The `@hoard/protocol/client` entry: what a client of the media server needs (the typed
 * client and its errors, restore frames, source specs) without the policy documents'
 * YAML parser and the agents' messages, which the package index brings to every importer.
 * The CLI starts a process per command: each module it does not load is start-up time saved.
 */
export * from './client.js';
export * from './restore-frames.js';
export * from './source-spec.js';
export { RUN_VIEW_SHAPE, type RecordShape } from './api/record-shapes.js';
