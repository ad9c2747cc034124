/**
 * Objects of a repository with S3 Object Lock that someone deleted without their version
 * id: the bucket kept the locked bytes and put a delete marker over them, so hoard no
 * longer sees them (a snapshot vanishes, a restore misses a pack). `hoard repair` lists
 * them and, with `--undelete`, removes the markers (docs/storage.md, "When an attacker
 * hides objects"). Only the immutable objects are considered: a control object (`gc/lock`,
 * a condemnation list) brought back could block or mislead GC.
 */
import { isLockedKey } from './object-lock.js';
import type { Repository } from './repository.js';

/** Hidden immutable objects of `repo`, sorted; empty for a repository without Object Lock. */
export async function hiddenObjects(repo: Repository): Promise<string[]> {
  if (!repo.config.objectLock || !repo.objects.hiddenKeys) return [];
  return (await repo.objects.hiddenKeys('')).filter(isLockedKey);
}

/** Makes `keys` visible again (removes their delete markers). */
export async function undeleteObjects(repo: Repository, keys: string[]): Promise<void> {
  if (keys.length > 0) await repo.objects.undelete?.(keys);
}
