/**
 * Which events a target gets (its `match`, docs/notifications.md, "Matching"). Every list
 * is "any of" and a missing list matches everything; globs are picomatch's (`db-*`).
 */
import { SEVERITY_ORDER, type EventMatch, type NotificationEvent } from '@hoard/protocol';
import picomatch from 'picomatch';

const compiled = new Map<string, (s: string) => boolean>();

function anyGlob(globs: readonly string[], value: string | undefined): boolean {
  if (value === undefined) return false;
  return globs.some((glob) => {
    let test = compiled.get(glob);
    if (!test) compiled.set(glob, (test = picomatch(glob, { nocase: false, dot: true })));
    return test(value);
  });
}

export function matches(match: EventMatch | undefined, event: NotificationEvent): boolean {
  // A test event goes to the target it was sent to, whatever the target matches.
  if (event.kind === 'test') return true;
  if (!match) return true;
  if (match.minSeverity !== undefined && SEVERITY_ORDER[event.severity] < SEVERITY_ORDER[match.minSeverity]) return false;
  if (match.kinds !== undefined && !anyGlob(match.kinds, event.kind)) return false;
  if (match.jobs !== undefined && !anyGlob(match.jobs, event.job)) return false;
  if (match.policies !== undefined && !anyGlob(match.policies, event.policy)) return false;
  return true;
}
