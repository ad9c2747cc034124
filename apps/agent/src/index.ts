export { AgentDaemon, AGENT_VERSION, type AgentOptions } from './agent-daemon.js';
export { agentLogger, type AgentLogLevel } from './log.js';
export {
  applyPriority,
  describeFootprint,
  parseFootprint,
  parseIoClass,
  readThrottle,
  FootprintApplyError,
  FootprintSettingError,
  type AgentFootprint,
  type FootprintText,
  type IoPriority,
} from './footprint.js';
export { uploadSource, BackupFailedError, type UploadOptions, type UploadResult } from './uploader.js';
export * from './sources/index.js';
export { restoreFramesToFile, RestoreIncompleteError, type FileRestoreTarget, type FileRestoreOptions } from './restore-to-file.js';
export { findOnPath } from './sources/mysql.js';
