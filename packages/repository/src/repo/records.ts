/**
 * The two small JSON objects that describe a repository (layout: docs/format.md,
 * "Repository config" and "Fingerprint store records"). Both are written once with
 * put-if-absent and never changed, like every other object (invariant 2); they are the
 * only objects with fixed rather than content-derived names, because a reader has to find
 * them before it knows anything else.
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '@hoard/errors';
import { COMPRESSION_SYNTAX, parseCompression } from '../blob/compression.js';
import type { KeyFile } from '../crypto/store-secrets.js';
import { MAX_PACK_BYTES, MIN_PACK_BYTES } from '../pack/pack-writer.js';
import { ObjectFormatError } from '../format-error.js';
import { validateJobName } from '../snapshot/manifest.js';
import { RepositoryError } from './errors.js';
import { validateObjectLock, type ObjectLockConfig } from './object-lock.js';

export const CONFIG_KEY = 'config';
export const STORES_PREFIX = 'stores/';
export const REPOSITORY_FORMAT = 'hoard-repository';
export const REPOSITORY_VERSION = 1;

export interface RepositoryConfig {
  format: typeof REPOSITORY_FORMAT;
  version: typeof REPOSITORY_VERSION;
  /** 16 random bytes, hex. */
  id: string;
  createdAt: string;
  /** Every store of an encrypted repository has a key file. */
  encrypted: boolean;
  /** Target pack size in bytes (4-128 MiB). */
  packBytes: number;
  /** Present when the bucket has S3 Object Lock: immutable objects are written with a retention date. */
  objectLock?: ObjectLockConfig;
  /**
   * `zstd[:LEVEL] | lz4 | none`: the compression stores created later get unless told
   * otherwise. Absent in configs written before the setting existed (new stores: zstd:3).
   */
  compression?: string;
}

/** `global`: any job may dedup against it; `job`: bound to one job (isolated). */
export type StoreScope = { kind: 'global' } | { kind: 'job'; job: string };

export interface StoreRecord {
  version: 1;
  name: string;
  /** 16 random bytes, hex: written into every pack trailer and index segment of the store. */
  id: string;
  scope: StoreScope;
  createdAt: string;
  /** Present in encrypted repositories: the store's own secrets, wrapped. */
  keyFile?: KeyFile;
  /**
   * `zstd[:LEVEL] | lz4 | none`: how new blobs of the store are compressed. Absent in
   * records written before the setting existed: those stores keep lz4.
   */
  compression?: string;
}

export class RecordFormatError extends ObjectFormatError {
  override readonly name = 'RecordFormatError';
  constructor(object: string, reason: string) {
    super('repository record', object, reason);
  }
}

export class InvalidStoreNameError extends RepositoryError {
  override name = 'InvalidStoreNameError';
  override readonly code: ErrorCode = 'invalid_storage';
}

export const newId = (): string => randomBytes(16).toString('hex');

export function storeKey(name: string): string {
  validateStoreName(name);
  return `${STORES_PREFIX}${name}`;
}

export function validateStoreName(name: string): void {
  try {
    validateJobName(name);
  } catch {
    throw new InvalidStoreNameError(`invalid store name ${JSON.stringify(name)}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

export function validatePackBytes(packBytes: number): void {
  if (!Number.isSafeInteger(packBytes) || packBytes < MIN_PACK_BYTES || packBytes > MAX_PACK_BYTES) {
    throw new RepositoryError(`pack size must be from 4 MiB to 128 MiB, got ${packBytes} bytes`);
  }
}

export function encodeRecord(record: RepositoryConfig | StoreRecord): Uint8Array {
  return Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
}

function parseJson(key: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new RecordFormatError(key, 'not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RecordFormatError(key, 'not a JSON object');
  return value as Record<string, unknown>;
}

const HEX32 = /^[0-9a-f]{32}$/;

export function decodeConfig(bytes: Uint8Array): RepositoryConfig {
  const v = parseJson(CONFIG_KEY, bytes);
  if (v.format !== REPOSITORY_FORMAT) throw new RecordFormatError(CONFIG_KEY, `format is ${JSON.stringify(v.format)}, expected "${REPOSITORY_FORMAT}"`);
  if (v.version !== REPOSITORY_VERSION) throw new RecordFormatError(CONFIG_KEY, `version ${String(v.version)}; this build reads version ${REPOSITORY_VERSION}`);
  if (typeof v.id !== 'string' || !HEX32.test(v.id)) throw new RecordFormatError(CONFIG_KEY, 'id is not 32 hex digits');
  if (typeof v.encrypted !== 'boolean') throw new RecordFormatError(CONFIG_KEY, 'encrypted is not a boolean');
  if (typeof v.createdAt !== 'string') throw new RecordFormatError(CONFIG_KEY, 'createdAt is missing');
  if (typeof v.packBytes !== 'number') throw new RecordFormatError(CONFIG_KEY, 'packBytes is missing');
  validatePackBytes(v.packBytes);
  checkCompression(CONFIG_KEY, v.compression);
  if (v.objectLock !== undefined) {
    try {
      validateObjectLock(v.objectLock);
    } catch (err) {
      throw new RecordFormatError(CONFIG_KEY, (err as Error).message);
    }
  }
  return v as unknown as RepositoryConfig;
}

export function decodeStoreRecord(key: string, bytes: Uint8Array): StoreRecord {
  const v = parseJson(key, bytes);
  if (v.version !== 1) throw new RecordFormatError(key, `version ${String(v.version)}; this build reads version 1`);
  if (typeof v.name !== 'string' || `${STORES_PREFIX}${v.name}` !== key) throw new RecordFormatError(key, 'name does not match the key');
  if (typeof v.id !== 'string' || !HEX32.test(v.id)) throw new RecordFormatError(key, 'id is not 32 hex digits');
  const scope = v.scope as StoreScope | undefined;
  if (!(scope?.kind === 'global' || (scope?.kind === 'job' && typeof scope.job === 'string'))) {
    throw new RecordFormatError(key, 'scope is neither {"kind":"global"} nor {"kind":"job","job":NAME}');
  }
  if (v.keyFile !== undefined && (v.keyFile === null || typeof v.keyFile !== 'object')) throw new RecordFormatError(key, 'keyFile is not an object');
  checkCompression(key, v.compression);
  return v as unknown as StoreRecord;
}

function checkCompression(key: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || !parseCompression(value))) {
    throw new RecordFormatError(key, `compression is ${JSON.stringify(value)}, expected ${COMPRESSION_SYNTAX}`);
  }
}

export const describeScope = (scope: StoreScope): string => (scope.kind === 'global' ? 'global' : `job ${scope.job}`);
