// Time zone arithmetic lives in @hoard/retention (no dependencies), shared with retention's
// calendar buckets; re-exported here for the policy modules.
export {
  checkTimeZone,
  DAY_MS,
  editDistance,
  MINUTE_MS,
  resolveWall,
  toWallMs,
  wallClock,
  wallToInstant,
  zoneOffset,
  type WallClock,
  type WallResolution,
} from '@hoard/retention';
