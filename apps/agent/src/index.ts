export { AgentDaemon, AGENT_VERSION, type AgentOptions, type AgentLog } from './agent-daemon.js';
export { uploadSource, BackupFailedError, type UploadOptions, type UploadResult } from './uploader.js';
export * from './sources/index.js';
export { restoreFramesToFile, RestoreIncompleteError, type FileRestoreTarget, type FileRestoreOptions } from './restore-to-file.js';
