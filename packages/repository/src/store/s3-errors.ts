/**
 * Turns AWS SDK errors into reasons a user can act on. The SDK names an error after the
 * S3 error code in the response body (`NoSuchBucket`, `SignatureDoesNotMatch`); a HEAD
 * response has no body, so there only the HTTP status is known (`NotFound`, `Forbidden`,
 * or `Unknown` with a status), and the SDK's message is often just "UnknownError".
 */
import { environmentAdvice } from './errors.js';

export interface S3ErrorContext {
  bucket: string;
  /** The endpoint as users configure it, or a description of AWS's default one. */
  endpoint: string;
  region: string;
}

interface SdkErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function fields(err: unknown): SdkErrorLike {
  return typeof err === 'object' && err !== null ? (err as SdkErrorLike) : {};
}

/** The S3 error code (or SDK/Node error name) of a failed request. */
export function errorName(err: unknown): string | undefined {
  const name = fields(err).name;
  return typeof name === 'string' ? name : undefined;
}

export function httpStatus(err: unknown): number | undefined {
  return fields(err).$metadata?.httpStatusCode;
}

/** Node's errno-style code (ECONNREFUSED...), looked for in the error and its causes. */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = fields(e).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The environment problem (docs/storage.md, "When the environment refuses") a failed
 * request stands for: the bucket is over its quota, or access is denied. Undefined for
 * anything else.
 */
export function environmentCodeOfS3Error(err: unknown): 'QuotaExceeded' | 'AccessDenied' | undefined {
  const name = errorName(err);
  if (name === 'QuotaExceeded' || name === 'QuotaExceededException') return 'QuotaExceeded';
  if (name === 'AccessDenied' || name === 'AllAccessDisabled') return 'AccessDenied';
  // A HEAD answers a bare 403: access denied, whichever the reason.
  if (httpStatus(err) === 403 && (name === undefined || name === 'Forbidden' || name === 'Unknown' || name === 'UnknownError' || name === '403'))
    return 'AccessDenied';
  return undefined;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE']);
/** Of NETWORK_CODES, those that mean a connection was made and then broke. */
const CONNECTION_LOST_CODES = new Set(['ECONNRESET', 'EPIPE']);
const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'BandwidthLimitExceeded']);

export function describeS3Error(err: unknown, ctx: S3ErrorContext): string {
  const name = errorName(err) ?? 'Error';
  const status = httpStatus(err);
  const tries = fields(err).$metadata?.attempts;
  const afterTries = tries !== undefined && tries > 1 ? ` after ${tries} attempts` : '';
  const rawMessage = fields(err).message;
  const message = typeof rawMessage === 'string' && rawMessage !== '' && rawMessage !== 'UnknownError' ? rawMessage : undefined;
  const code = networkCode(err);

  switch (name) {
    case 'NoSuchBucket':
      return `bucket ${ctx.bucket} does not exist at ${ctx.endpoint} (create it, or check --repo)`;
    case 'InvalidAccessKeyId':
      return `credentials rejected: ${ctx.endpoint} does not know the access key ID (check AWS_ACCESS_KEY_ID)`;
    case 'SignatureDoesNotMatch':
      return `credentials rejected: the secret key does not match the access key ID (check AWS_SECRET_ACCESS_KEY)`;
    case 'QuotaExceeded':
    case 'QuotaExceededException':
      return `bucket ${ctx.bucket} at ${ctx.endpoint} is over its quota (QuotaExceeded): ${environmentAdvice('QuotaExceeded')}`;
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return `credentials rejected: access denied to bucket ${ctx.bucket} (check the access key, and that its user or policy may use this bucket)`;
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
    case 'InvalidToken':
      return `credentials rejected: the session token is expired or invalid (refresh AWS_SESSION_TOKEN)`;
    case 'RequestTimeTooSkewed':
      return `this machine's clock is too far from the server's for signed requests (fix the system time)`;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return `bucket ${ctx.bucket} is not in region ${ctx.region} (set AWS_REGION to the bucket's region)${message ? `: ${message}` : ''}`;
    case 'InvalidBucketName':
      return `bucket name ${ctx.bucket} is not accepted by the server`;
    case 'CredentialsProviderError':
      return `no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)${message ? ` (${message})` : ''}`;
    case 'KeyTooLongError':
      return `the key is too long for the server (shorten the repository prefix)`;
    case 'NotImplemented':
      return `the server does not implement this request${message ? `: ${message}` : ''}`;
    default:
      break;
  }
  if (THROTTLING.has(name) || status === 429) {
    return `the server kept throttling requests (${name}${status ? `, HTTP ${status}` : ''})${afterTries}; try again later or lower the concurrency`;
  }
  if (code !== undefined && CONNECTION_LOST_CODES.has(code)) {
    // Usually the server was reached and the connection then broke, so a write may have
    // landed; "cannot reach" would send the operator after the wrong thing.
    return `the connection to ${ctx.endpoint} was closed mid-request (${code})${afterTries}; a write may or may not have taken effect (if every request fails so, check the endpoint: HOARD_S3_ENDPOINT or AWS_ENDPOINT_URL)`;
  }
  if (name === 'TimeoutError' || (code !== undefined && NETWORK_CODES.has(code))) {
    return `cannot reach ${ctx.endpoint}: ${code ?? 'timed out'}${afterTries} (check the endpoint: HOARD_S3_ENDPOINT or AWS_ENDPOINT_URL)`;
  }
  if (status === 403) {
    // A bodiless 403 (HEAD): the key, the secret or the permissions; the status cannot tell.
    return `credentials rejected: access denied (HTTP 403) to bucket ${ctx.bucket} (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions)`;
  }
  if (status === 301) {
    return `bucket ${ctx.bucket} is not in region ${ctx.region} (set AWS_REGION to the bucket's region)`;
  }
  if (status !== undefined && status >= 500) {
    return `server error ${status} ${name}${afterTries}${message ? `: ${message}` : ''}`;
  }
  const detail = [status !== undefined ? `HTTP ${status}` : undefined, message].filter((s) => s !== undefined).join(': ');
  return detail === '' ? name : `${name} (${detail})`;
}
