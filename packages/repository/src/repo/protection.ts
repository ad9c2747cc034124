/**
 * Protection markers: `protected/<job>/<snapshot name>` marks `snapshots/<job>/<snapshot name>`
 * as exempt from retention. The marker lives in the bucket (invariant 3: the bucket is the
 * source of truth; the catalog only caches it), is written once and deleted to unprotect.
 * Its content is informational: `{"version":1,"protectedAt":"<ISO-8601 UTC>"}`.
 */
import type { ErrorCode } from '@hoard/errors';
import { RepositoryError } from './errors.js';

export const PROTECTED_PREFIX = 'protected/';
const SNAPSHOTS = 'snapshots/';

export class SnapshotProtectedError extends RepositoryError {
  override name = 'SnapshotProtectedError';
  override readonly code: ErrorCode = 'snapshot_protected';
  constructor(readonly keys: string[]) {
    super(
      `${keys.length === 1 ? `snapshot ${keys[0]} is` : `snapshots ${keys.join(', ')} are`} protected: unprotect first (\`hoard snapshots --unprotect ID\`) to forget`,
    );
  }
}

export function protectionKey(snapshotKey: string): string {
  if (!snapshotKey.startsWith(SNAPSHOTS)) throw new RepositoryError(`${snapshotKey} is not a snapshot key (snapshots/<job>/<name>)`);
  return PROTECTED_PREFIX + snapshotKey.slice(SNAPSHOTS.length);
}

export function snapshotKeyOfProtection(markerKey: string): string {
  return SNAPSHOTS + markerKey.slice(PROTECTED_PREFIX.length);
}

export function encodeProtection(now = new Date()): Uint8Array {
  return Buffer.from(JSON.stringify({ version: 1, protectedAt: now.toISOString() }));
}
