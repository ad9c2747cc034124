/**
 * Keys of content-named objects (invariant 2): `<dir>/<h[0:2]>/<h>`, with `h` the
 * lowercase hex BLAKE3-256 of the object's bytes. The two-character fan-out keeps
 * directories (fs) and listing pages (S3) small.
 */
import { blake3 } from '@napi-rs/blake-hash';

export function contentKeyFromHash(dir: string, hash: Uint8Array): string {
  const h = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
  return `${dir}/${h.slice(0, 2)}/${h}`;
}

export function contentKey(dir: string, bytes: Uint8Array): string {
  return contentKeyFromHash(dir, blake3(bytes));
}

/** The 32-byte hash a content key was made from (its last path segment). */
export function hashOfContentKey(key: string): Uint8Array {
  return Uint8Array.from(Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex'));
}
