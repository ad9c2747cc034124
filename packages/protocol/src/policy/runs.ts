/**
 * When a policy's jobs run: full and incremental backups (full wins when both fall on the
 * same minute; only times inside the run window count) and verification checks (a
 * read-data check includes the structure check, so it wins a tie).
 */

import type { Policy } from './policy.js';
import { fireTimes, type Schedule } from './schedule.js';
import { inRunWindow } from './units.js';

export type BackupKind = 'full' | 'incremental';
export type VerifyKind = 'verify-structure' | 'verify-data';

export interface PolicyRun<K extends string = BackupKind> {
  at: Date;
  kind: K;
}

/**
 * Merges schedules by priority (earlier in `sources` wins a tie), keeping times `accept`
 * allows; returns at most `count` runs strictly after `from`.
 */
function merge<K extends string>(sources: [K, Schedule | null | undefined][], from: Date, count: number, accept: (t: number) => boolean): PolicyRun<K>[] {
  const out: PolicyRun<K>[] = [];
  if (!(count > 0)) return out;
  const iters = sources
    .filter((s): s is [K, Schedule] => !!s[1])
    .map(([kind, schedule]) => ({ kind, it: fireTimes(schedule, from.getTime()), head: undefined as number | undefined, done: false }));
  const pull = (x: (typeof iters)[number]): void => {
    if (x.head === undefined && !x.done) {
      const r = x.it.next();
      if (r.done) x.done = true;
      else x.head = r.value;
    }
  };
  // Rejected times are bounded: every parsed schedule fires inside its window on some day.
  for (let guard = 0; out.length < count && guard < 1_000_000; guard++) {
    iters.forEach(pull);
    let best: (typeof iters)[number] | undefined;
    for (const x of iters) if (x.head !== undefined && (best === undefined || x.head < best.head!)) best = x;
    if (!best) break;
    const t = best.head!;
    for (const x of iters) if (x.head === t) x.head = undefined;
    if (accept(t)) out.push({ at: new Date(t), kind: best.kind });
  }
  return out;
}

/** The next `count` backup runs of `policy` strictly after `from`, in order. */
export function nextPolicyRuns(policy: Policy, from: Date, count: number): PolicyRun<BackupKind>[] {
  const { timeZone, full, incremental } = policy.schedule;
  const window = policy.limits.runWindow;
  return merge<BackupKind>(
    [
      ['full', full],
      ['incremental', incremental],
    ],
    from,
    count,
    (t) => !window || inRunWindow(window, new Date(t), timeZone),
  );
}

/** The next `count` verification runs of `policy` strictly after `from` (not limited by the run window). */
export function nextVerifyRuns(policy: Policy, from: Date, count: number): PolicyRun<VerifyKind>[] {
  return merge<VerifyKind>(
    [
      ['verify-data', policy.verify.readData],
      ['verify-structure', policy.verify.structure],
    ],
    from,
    count,
    () => true,
  );
}
