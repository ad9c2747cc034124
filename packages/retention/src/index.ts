// @hoard/retention: the one implementation of retention rules (see docs/gc.md#retention-planretention).
export { RetentionRuleError } from './errors.js';
export { localTime, validateTimeZone, wallToInstant, type LocalTime } from './calendar.js';
export { formatRetentionDuration, parseRetentionDuration, retentionCutoff, type DurationUnit, type RetentionDuration } from './duration.js';
export { bucketLabel, isoWeek, type BucketKind } from './buckets.js';
export {
  hasKeepRule,
  parseRetentionRules,
  planRetention,
  type RetentionDecision,
  type RetentionRules,
  type RetentionRulesInput,
  type RetentionSnapshot,
} from './plan.js';
export {
  checkTimeZone,
  DAY_MS,
  editDistance,
  MINUTE_MS,
  resolveWall,
  toWallMs,
  wallClock,
  zoneOffset,
  type WallClock,
  type WallResolution,
} from './timezone.js';
