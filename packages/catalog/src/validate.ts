import { AGENT_NAME, JOB_NAME } from '@hoard/errors';
import { CatalogValidationError, InvalidNameError } from './errors.js';

const RECORD_ID = JOB_NAME.regex;
const SNAPSHOT_ID = /^[0-9a-f]{16}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]+$/;
const ISO_UTC = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z$/;
const META_KEY = /^[\x21-\x7e]{1,200}$/;

export const AGENT_NAME_RULE = `use ${AGENT_NAME.words}`;
export const JOB_NAME_RULE = `use ${JOB_NAME.words}`;
const ID_RULE = JOB_NAME_RULE;

export function agentName(name: unknown, field = 'agent name'): string {
  if (typeof name !== 'string' || !AGENT_NAME.regex.test(name)) throw new InvalidNameError(field, String(name), AGENT_NAME_RULE);
  return name;
}

export function jobName(name: unknown, field = 'job name'): string {
  if (typeof name !== 'string' || !JOB_NAME.regex.test(name)) throw new InvalidNameError(field, String(name), JOB_NAME_RULE);
  return name;
}

export function recordId(id: unknown, field: string): string {
  if (typeof id !== 'string' || !RECORD_ID.test(id)) throw new InvalidNameError(field, String(id), ID_RULE);
  return id;
}

export function snapshotId(id: unknown, field = 'snapshot id'): string {
  if (typeof id !== 'string' || !SNAPSHOT_ID.test(id)) {
    throw new InvalidNameError(field, String(id), 'use 16 lowercase hex digits (the hash part of the manifest name)');
  }
  return id;
}

/** A token hash: 64 hex digits, returned lowercase. */
export function tokenHash(hash: unknown, field = 'token hash'): string {
  const lower = typeof hash === 'string' ? hash.toLowerCase() : '';
  if (!SHA256_HEX.test(lower)) {
    throw new CatalogValidationError(field, `${field} must be a hex SHA-256 digest (64 hex digits), got ${describe(hash)}`);
  }
  return lower;
}

export function hex(value: unknown, field: string): string {
  if (typeof value !== 'string' || !HEX.test(value)) {
    throw new CatalogValidationError(field, `${field} must be lowercase hex, got ${describe(value)}`);
  }
  return value;
}

export function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new CatalogValidationError(field, `${field} must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

export function optionalText(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== 'string') {
    throw new CatalogValidationError(field, `${field} must be a string when present, got ${describe(value)}`);
  }
}

export function stringList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new CatalogValidationError(field, `${field} must be an array of non-empty strings, got ${describe(value)}`);
  }
  return value as string[];
}

export function count(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new CatalogValidationError(field, `${field} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

export function positiveLimit(value: unknown, field = 'limit'): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new CatalogValidationError(field, `${field} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new CatalogValidationError(field, `${field} must be one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

const CONDITION_KEY = /^[a-z][a-z-]{0,63}(:[A-Za-z0-9._-]{1,128}){0,3}$/;

/** A notification condition: `kind` or `kind:subject[:subject...]`, e.g. `run-failed:db1`. */
export function conditionKey(key: unknown): string {
  if (typeof key !== 'string' || !CONDITION_KEY.test(key)) {
    throw new CatalogValidationError(
      'condition',
      `condition ${JSON.stringify(key)}: use an event kind and up to three names, joined by ':' (e.g. run-failed:db1)`,
    );
  }
  return key;
}

export function metaKey(key: unknown): string {
  if (typeof key !== 'string' || !META_KEY.test(key)) {
    throw new CatalogValidationError('meta key', `meta key must be 1-200 printable ASCII characters without spaces, got ${describe(key)}`);
  }
  return key;
}

/**
 * Checks an ISO-8601 UTC time (`YYYY-MM-DDTHH:MM:SS[.fff]Z`) and returns its milliseconds
 * since the epoch. Impossible dates (Feb 30, 24:00) are refused, not rolled over.
 */
export function isoTime(value: unknown, field: string): number {
  const m = typeof value === 'string' ? ISO_UTC.exec(value) : null;
  const ms = m ? Date.parse(value as string) : NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== m[1]) {
    throw new CatalogValidationError(field, `${field} must be an ISO-8601 UTC time like 2024-05-01T02:00:00.000Z, got ${describe(value)}`);
  }
  return ms;
}

export function optionalIsoTime(value: unknown, field: string): void {
  if (value !== undefined) isoTime(value, field);
}

export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CatalogValidationError(what, `${what} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (value === undefined) return 'nothing';
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 80)}...` : s;
  } catch {
    return String(value);
  }
}
