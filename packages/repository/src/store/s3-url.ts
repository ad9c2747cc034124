import type { ErrorCode } from '@hoard/errors';
import { InvalidKeyError } from './errors.js';
import { validateKey } from './keys.js';

/** Where a repository lives in S3: a bucket and a key prefix ('' for the bucket's root). */
export interface S3Url {
  bucket: string;
  /** '' or a key-like path without a trailing '/': objects are stored as `prefix/key`. */
  prefix: string;
}

/**
 * A bad S3 setting (URL, bucket name, prefix, endpoint): a user mistake, reported before
 * any request is made.
 */
export class S3ConfigError extends Error {
  override name = 'S3ConfigError';
  readonly code: ErrorCode = 'invalid_storage';
}

/**
 * Longest store prefix accepted. S3 keys are at most 1024 bytes and hoard's own keys are
 * well under 200, so this leaves room for `prefix/key` without surprises.
 */
export const MAX_S3_PREFIX_LENGTH = 512;

// S3's rules for new buckets are lowercase letters, digits, '.' and '-'; uppercase and
// '_' are still accepted because older AWS buckets and Ceph's relaxed names use them.
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/;

/**
 * Parses `s3://bucket` or `s3://bucket/prefix` (a trailing '/' is ignored). The endpoint,
 * region and credentials are not part of the URL: they come from options or the
 * environment (see S3ObjectStore).
 */
export function parseS3Url(url: string): S3Url {
  if (typeof url !== 'string' || !url.startsWith('s3://')) {
    throw new S3ConfigError(`invalid S3 URL ${JSON.stringify(url)}: expected s3://bucket or s3://bucket/prefix`);
  }
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (prefix.endsWith('/')) prefix = prefix.slice(0, -1);
  try {
    validateBucketName(bucket);
    validateStorePrefix(prefix);
  } catch (err) {
    throw new S3ConfigError(`invalid S3 URL ${JSON.stringify(url)}: ${(err as Error).message}`);
  }
  return { bucket, prefix };
}

/** Throws S3ConfigError unless `bucket` is a usable bucket name. */
export function validateBucketName(bucket: string): void {
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
    throw new S3ConfigError(
      `bucket name ${JSON.stringify(bucket)} is not valid: 3-63 characters, letters, digits, '.', '-' or '_', starting and ending with a letter or digit`,
    );
  }
}

/**
 * Throws S3ConfigError unless `prefix` is '' or follows the key rules (relative, no
 * empty, '.' or '..' segment, no trailing '/'): the store puts object `k` at
 * `prefix/k`, so a prefix like `a//` would create keys no other tool lists the same way.
 */
export function validateStorePrefix(prefix: string): void {
  if (prefix === '') return;
  if (typeof prefix === 'string' && prefix.length > MAX_S3_PREFIX_LENGTH) {
    throw new S3ConfigError(`prefix is longer than ${MAX_S3_PREFIX_LENGTH} characters`);
  }
  try {
    validateKey(prefix);
  } catch (err) {
    if (err instanceof InvalidKeyError) throw new S3ConfigError(`prefix ${JSON.stringify(prefix)} is not valid: ${err.reason}`);
    throw err;
  }
}

/** `s3://bucket/prefix`, or `s3://bucket` when the prefix is empty. */
export function formatS3Url({ bucket, prefix }: S3Url): string {
  return prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
}
