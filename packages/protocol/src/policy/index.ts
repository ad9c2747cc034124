// The policy module's public surface (see docs/policies.md).
export { CALENDAR_WORDS, calendarWord, cronDayMatches, cronMatches, parseCron, ScheduleError, type CronFieldName, type CronFields } from './cron.js';
export { checkTimeZone, resolveWall, wallClock, wallToInstant, type WallClock, type WallResolution } from './timezone.js';
export { firesAt, fireTimes, nextRuns, parseSchedule, type Schedule } from './schedule.js';
export { inRunWindow, nextRunWindowOpen, parseBandwidth, parsePercent, parseRunWindow, type Bandwidth, type RunWindow } from './units.js';
// keep-within durations and cutoffs: the one implementation in @hoard/retention.
export { formatRetentionDuration, parseRetentionDuration, retentionCutoff, type RetentionDuration } from '@hoard/retention';
export { formatProblem, PolicyError, type PolicyProblem } from './errors.js';
export {
  agentRunLimit,
  DEFAULT_AGENT_RUN_LIMIT,
  POLICY_DEFAULTS,
  policyRetentionRules,
  validatePolicy,
  type Compression,
  type DrillPolicy,
  type Policy,
  type PolicyLimits,
  type PolicySchedule,
  type PolicySource,
  type PolicyStore,
  type RetentionRules,
  type StoreScope,
  type VerifyPolicy,
} from './policy.js';
export {
  parsePolicyDocument,
  policyToDocument,
  serializePolicies,
  type ParsePolicyOptions,
  type PolicyFormat,
  type SerializePolicyOptions,
} from './document.js';
export { nextPolicyRuns, nextVerifyRuns, type BackupKind, type PolicyRun, type VerifyKind } from './runs.js';
