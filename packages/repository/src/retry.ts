/**
 * hoard's one retry helper, on p-retry (6: its last release for Node 20). Each call site
 * says which errors are worth another attempt, how many attempts it allows and how long
 * it waits between them. p-retry 6 only waits `minTimeout * factor^n` times a jitter
 * factor in [1, 2); call sites that need another curve (the S3 store's full jitter, the
 * same curve the SDK's retries use) give it as `delayMs`, so this helper sets p-retry's
 * own wait to 0 and waits in `shouldRetry` instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';

export interface RetryOptions {
  /** Attempts in all, the first one included (at least 1). */
  attempts: number;
  /** Whether the error of failed attempt `attempt` (counted from 1) is worth another attempt. */
  retryable(err: Error, attempt: number): boolean;
  /** Wait after failed attempt `attempt` (counted from 1), in ms; default none. */
  delayMs?(attempt: number): number;
  /**
   * Once aborted, no further attempt is started: a wait ends at once and the call rejects
   * with the signal's reason. An attempt in progress is awaited (it is the attempt's to
   * stop), so nothing of it is still running when the call settles.
   */
  signal?: AbortSignal;
}

/**
 * Calls `attempt` (with its number, from 1) until it resolves, it fails with an error that
 * `retryable` refuses, or the attempts run out; rejects with the last attempt's error.
 * p-retry does not retry a TypeError (other than a network error) whatever `retryable` says.
 */
export function retrying<T>(attempt: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { signal } = options;
  return pRetry(attempt, {
    retries: options.attempts - 1,
    minTimeout: 0,
    maxTimeout: 0,
    // Not p-retry's `signal`: p-retry 6 rejects at the abort, with an attempt still in
    // progress, and ignores a signal aborted before it started.
    shouldRetry: async (err) => {
      if (err.retriesLeft <= 0 || !options.retryable(err, err.attemptNumber)) return false;
      signal?.throwIfAborted();
      const ms = options.delayMs?.(err.attemptNumber) ?? 0;
      if (ms > 0) await sleep(ms, undefined, { signal }).catch(() => undefined);
      signal?.throwIfAborted();
      return true;
    },
  });
}
