/**
 * The secrets of an encrypted fingerprint store, and the key file that keeps them.
 *
 * Each encrypted store has its own random secrets (invariant 5: tenants in different
 * stores share nothing): the AES-256-GCM data key for blobs, the BLAKE3 key for
 * fingerprints, and the chunker's gear seed. They are stored wrapped: AES-256-GCM under a
 * key derived from the passphrase with scrypt. Changing the passphrase rewraps them; the
 * data never needs re-encrypting. Format: docs/format.md, "Key files".
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import type { ErrorCode } from '@hoard/errors';

export interface StoreSecrets {
  /** 32 bytes: AES-256-GCM key for blobs. */
  dataKey: Uint8Array;
  /** 32 bytes: keyed BLAKE3 key for fingerprints. */
  fingerprintKey: Uint8Array;
  /** 64-bit gear-table seed for the chunker. */
  chunkerSeed: bigint;
}

export interface KeyFile {
  version: 1;
  kdf: 'scrypt';
  /** scrypt cost parameters. */
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64, 12 bytes */
  nonce: string;
  /** base64: AES-256-GCM(dataKey || fingerprintKey || seed LE64) || tag */
  wrapped: string;
}

/** Default cost: ~0.1 s and 32 MiB on the machines here; raises the price of guessing. */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;
const SECRET_BYTES = 32 + 32 + 8;

export class WrongPassphraseError extends Error {
  override readonly name = 'WrongPassphraseError';
  readonly code: ErrorCode = 'wrong_passphrase';
  constructor() {
    super('the passphrase does not open this store (or its key file is damaged)');
  }
}

export class KeyFileFormatError extends Error {
  override readonly name = 'KeyFileFormatError';
  readonly code: ErrorCode = 'key_file_invalid';
}

export function generateSecrets(): StoreSecrets {
  const seed = randomBytes(8);
  return { dataKey: randomBytes(32), fingerprintKey: randomBytes(32), chunkerSeed: seed.readBigUInt64LE(0) };
}

function deriveKey(passphrase: string, salt: Uint8Array, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r + (1 << 20) };
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function wrapSecrets(secrets: StoreSecrets, passphrase: string, cost: { N: number; r: number; p: number } = SCRYPT_DEFAULTS): Promise<KeyFile> {
  if (passphrase.length === 0) throw new KeyFileFormatError('the passphrase must not be empty');
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const kek = await deriveKey(passphrase, salt, cost);
  const plain = Buffer.alloc(SECRET_BYTES);
  plain.set(secrets.dataKey, 0);
  plain.set(secrets.fingerprintKey, 32);
  plain.writeBigUInt64LE(secrets.chunkerSeed, 64);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  const wrapped = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return { version: 1, kdf: 'scrypt', ...cost, salt: salt.toString('base64'), nonce: nonce.toString('base64'), wrapped: wrapped.toString('base64') };
}

export async function unwrapSecrets(file: KeyFile, passphrase: string): Promise<StoreSecrets> {
  if (file?.version !== 1 || file.kdf !== 'scrypt') {
    throw new KeyFileFormatError(`unsupported key file (version ${String(file?.version)}, kdf ${String(file?.kdf)}); expected version 1, scrypt`);
  }
  for (const [name, v] of [
    ['N', file.N],
    ['r', file.r],
    ['p', file.p],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > (name === 'N' ? 1 << 24 : 64)) throw new KeyFileFormatError(`key file has an invalid scrypt ${name}: ${v}`);
  }
  const salt = Buffer.from(file.salt, 'base64');
  const nonce = Buffer.from(file.nonce, 'base64');
  const wrapped = Buffer.from(file.wrapped, 'base64');
  if (nonce.length !== 12 || wrapped.length !== SECRET_BYTES + 16 || salt.length < 16) {
    throw new KeyFileFormatError('key file fields have the wrong lengths');
  }
  const kek = await deriveKey(passphrase, salt, file);
  const decipher = createDecipheriv('aes-256-gcm', kek, nonce);
  decipher.setAuthTag(wrapped.subarray(SECRET_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(wrapped.subarray(0, SECRET_BYTES)), decipher.final()]);
  } catch {
    throw new WrongPassphraseError();
  }
  return {
    dataKey: plain.subarray(0, 32),
    fingerprintKey: plain.subarray(32, 64),
    chunkerSeed: plain.readBigUInt64LE(64),
  };
}
