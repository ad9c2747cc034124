/**
 * How the S3 store retries. The SDK classifies each failed attempt (THROTTLING: 429,
 * SlowDown and the like; TRANSIENT: 500/502/503/504, timeouts, connection resets and
 * refusals, DNS failures, a corrected clock skew; SERVER_ERROR: other 5xx; CLIENT_ERROR:
 * everything else) and asks the client's retry strategy whether and when to try again.
 *
 * The SDK's own standard strategy does the same classification but also keeps a retry
 * quota shared by every request of a client (500 tokens, 14 per retry): after a few dozen
 * failed attempts it stops retrying anything until requests succeed again. That is a
 * circuit breaker for services that answer many small calls; a backup that uploads packs
 * for hours should instead ride out an outage of a minute, so each request here retries
 * on its own budget of attempts.
 */

/** Retry settings of an S3ObjectStore. */
export interface S3RetryPolicy {
  /** Attempts per request, the first one included. */
  maxAttempts: number;
  /** Backoff base for transient errors (5xx, timeouts, resets). */
  baseDelayMs: number;
  /** Backoff base for throttling (429, 503 SlowDown): the server asked us to slow down. */
  throttleBaseDelayMs: number;
  /** Cap of one delay. */
  maxDelayMs: number;
}

/**
 * With full jitter the k-th retry waits a uniform random time in [0, min(max, base * 2^k)).
 * Ten attempts wait at most ~45 s in all for transient errors and ~2 min for throttling
 * (half that on average).
 */
export const DEFAULT_S3_RETRY_POLICY: S3RetryPolicy = {
  maxAttempts: 10,
  baseDelayMs: 100,
  throttleBaseDelayMs: 500,
  maxDelayMs: 20_000,
};

// Structural copies of @smithy/types' RetryStrategyV2 shapes (that package is not a
// direct dependency; the client accepts anything of this shape).
type RetryErrorType = 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';

interface RetryErrorInfo {
  error?: unknown;
  errorType: RetryErrorType;
  retryAfterHint?: Date;
}

interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

class Token implements RetryToken {
  constructor(
    private readonly retries: number,
    private readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.retries;
  }
  getRetryDelay(): number {
    return this.delayMs;
  }
}

/** Per-request exponential backoff with full jitter; no shared quota (see above). */
export class S3RetryStrategy {
  constructor(readonly policy: S3RetryPolicy) {}

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return new Token(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const retries = token.getRetryCount();
    // Throwing tells the SDK to give up; it then rethrows the request's own error.
    if (!isRetryable(info)) throw new Error('not retryable');
    if (retries + 1 >= this.policy.maxAttempts) throw new Error('out of attempts');
    const base = info.errorType === 'THROTTLING' ? this.policy.throttleBaseDelayMs : this.policy.baseDelayMs;
    let delay = Math.random() * Math.min(this.policy.maxDelayMs, base * 2 ** retries);
    if (info.retryAfterHint instanceof Date) {
      // The server said when to come back (Retry-After); honour it, within the cap.
      delay = Math.max(delay, Math.min(this.policy.maxDelayMs, info.retryAfterHint.getTime() - Date.now()));
    }
    return new Token(retries + 1, Math.floor(delay));
  }

  recordSuccess(_token: RetryToken): void {}
}

function isRetryable(info: RetryErrorInfo): boolean {
  if (info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT') return true;
  // 409 on a conditional put: another put of the same key is in progress (AWS). Its
  // outcome is unknown until it ends, so ask again rather than answer "already there".
  const error = info.error as { name?: unknown } | undefined;
  return error?.name === 'ConditionalRequestConflict';
}

/** Fills in a partial policy, checking the numbers. */
export function resolveRetryPolicy(partial: Partial<S3RetryPolicy> = {}): S3RetryPolicy {
  const policy = { ...DEFAULT_S3_RETRY_POLICY, ...partial };
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(`retry.maxAttempts must be a positive integer, got ${policy.maxAttempts}`);
  }
  for (const field of ['baseDelayMs', 'throttleBaseDelayMs', 'maxDelayMs'] as const) {
    if (!Number.isFinite(policy[field]) || policy[field] < 0) throw new RangeError(`retry.${field} must be a non-negative number, got ${policy[field]}`);
  }
  return policy;
}
