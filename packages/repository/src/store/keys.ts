import { InvalidKeyError } from './errors.js';

/** Longest key or prefix accepted. Keys are ASCII, so characters and bytes agree. */
export const MAX_KEY_LENGTH = 1024;

// The key alphabet. Anything outside it (spaces, '\\', ':', '~', non-ASCII) is rejected
// so that a key maps to the same file name on every platform and stores can reserve
// names outside the alphabet for themselves (the fs store's `tmp~/`).
const KEY_CHARS = /^[A-Za-z0-9._\-/]*$/;

/** True when `name` could be one whole segment of a valid key. */
export function isKeySegment(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && name.length <= MAX_KEY_LENGTH && !name.includes('/') && KEY_CHARS.test(name);
}

function checkCommon(value: unknown, what: 'key' | 'prefix'): asserts value is string {
  if (typeof value !== 'string') throw new InvalidKeyError(String(value), `${what} must be a string`);
  if (value.length > MAX_KEY_LENGTH) throw new InvalidKeyError(value, `longer than ${MAX_KEY_LENGTH} characters`);
  if (!KEY_CHARS.test(value)) throw new InvalidKeyError(value, 'only A-Z a-z 0-9 . _ - / are allowed');
  if (value.startsWith('/')) throw new InvalidKeyError(value, `a ${what} is relative: it must not start with '/'`);
}

function checkSegment(key: string, segment: string): void {
  if (segment === '') throw new InvalidKeyError(key, "empty path segment ('//')");
  if (segment === '.' || segment === '..') throw new InvalidKeyError(key, `'${segment}' path segment`);
}

/**
 * Throws InvalidKeyError unless `key` is a relative '/'-separated path over
 * [A-Za-z0-9._-/] with no empty, '.' or '..' segment and at most 1024 characters.
 * Those rules are what make mapping a key to a file path safe: no segment can climb
 * out of the store's root.
 */
export function validateKey(key: string): void {
  checkCommon(key, 'key');
  if (key === '') throw new InvalidKeyError(key, 'empty key');
  if (key.endsWith('/')) throw new InvalidKeyError(key, "a key must not end with '/'");
  for (const segment of key.split('/')) checkSegment(key, segment);
}

/**
 * Like validateKey, but a prefix may be '' (everything) and its last segment may be
 * partial, so it may end with '/' or in the middle of a segment (`packs/3` matches
 * `packs/3f/...`). A partial last segment may therefore be '.' or '..' (matching
 * `..a`); only complete segments must obey the key rules.
 */
export function validatePrefix(prefix: string): void {
  checkCommon(prefix, 'prefix');
  const segments = prefix.split('/');
  segments.pop();
  for (const segment of segments) checkSegment(prefix, segment);
}

/** Keys per list() page when the caller does not say (S3's own maximum). */
export const DEFAULT_LIST_LIMIT = 1000;

/** Checks list() arguments the same way for every backend; returns the page limit. */
export function checkListArguments(prefix: string, options: { after?: string; limit?: number }): number {
  validatePrefix(prefix);
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`list(${prefix}): limit must be a positive integer, got ${limit}`);
  if (options.after !== undefined && typeof options.after !== 'string') throw new TypeError(`list(${prefix}): after must be a string`);
  return limit;
}
