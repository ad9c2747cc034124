/**
 * The objects garbage collection keeps in the bucket (byte formats: docs/gc.md):
 *
 *   gc/lock                            one GC at a time
 *   gc/condemned/<T>-<r16>             a list of condemned packs and chunk-list pages
 *   gc/revived/packs/<h>-<ms>          a backup revived a condemned pack (condemned at <ms>)
 *   gc/revived/chunklists/<h>-<ms>     ... or a condemned chunk-list page
 *
 * Condemned objects are kept for their grace period, then deleted by a later GC run unless
 * something references them again. Every object here is written once (put-if-absent) and
 * only ever deleted, like every other object (invariant 2).
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '@hoard/errors';
import { compactTime } from '../snapshot/manifest.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll, type ObjectStore } from '../store/object-store.js';
import { mapConcurrent } from '../repo/concurrency.js';
import { retrying } from '../retry.js';
import { GcError } from './errors.js';

export const GC_LOCK_KEY = 'gc/lock';
export const CONDEMNED_PREFIX = 'gc/condemned/';
export const REVIVED_PREFIX = 'gc/revived/';

export type CondemnedKind = 'pack' | 'page';
export type CondemnReason = 'unreferenced' | 'repacked' | 'unindexed' | 'missing';

export interface CondemnedItem {
  kind: CondemnedKind;
  /** 64 hex: the object's BLAKE3 name. */
  hash: string;
  /** ISO-8601 UTC, when the GC run that condemned it started. */
  condemnedAt: string;
  /** The promise: not deleted before condemnedAt + graceMs. */
  graceMs: number;
  reason: CondemnReason;
}

export interface CondemnedList {
  format: 'hoard-gc-condemned';
  version: 1;
  items: CondemnedItem[];
}

/**
 * One condemned object over every list that names it. An object can be condemned more
 * than once (condemned, revived, dead again, condemned again): each condemnation is an
 * instance, named by its time, and a revival marker revives one instance.
 */
export interface Condemnation {
  kind: CondemnedKind;
  hash: string;
  /** Every instance, oldest first. */
  instances: CondemnedItem[];
  /** The newest instance: the one a GC acts on. */
  latest: CondemnedItem;
  /** Earliest time a GC may delete it: the latest promise of all instances. */
  deleteAfterMs: number;
}

export interface CondemnationState {
  /** `${kind}:${hash}` -> condemnation. */
  items: Map<string, Condemnation>;
  /** Instance ids (`${kind}:${hash}:${condemnedAt ms}`) that a revival marker revives. */
  revived: Set<string>;
  listKeys: string[];
  /** Revival marker key -> the instance id it revives. */
  revivedKeys: Map<string, string>;
}

export const itemId = (kind: CondemnedKind, hash: string): string => `${kind}:${hash}`;
export const instanceId = (item: Pick<CondemnedItem, 'kind' | 'hash' | 'condemnedAt'>): string => `${item.kind}:${item.hash}:${Date.parse(item.condemnedAt)}`;

/**
 * Until when a backup may still revive an instance: condemnedAt + graceMs / 2. A GC that
 * may delete the object starts after condemnedAt + graceMs, so a revival (or a manifest)
 * written before this time is seen by that GC even with clocks grace/2 apart.
 */
export const reviveUntilMs = (item: CondemnedItem): number => Date.parse(item.condemnedAt) + Math.floor(item.graceMs / 2);

export function revivedKey(item: Pick<CondemnedItem, 'kind' | 'hash' | 'condemnedAt'>): string {
  return `${REVIVED_PREFIX}${item.kind === 'pack' ? 'packs' : 'chunklists'}/${item.hash}-${Date.parse(item.condemnedAt)}`;
}

export function newListKey(now: Date): string {
  return `${CONDEMNED_PREFIX}${compactTime(now.toISOString())}-${randomBytes(8).toString('hex')}`;
}

export function encodeList(items: CondemnedItem[]): Uint8Array {
  const list: CondemnedList = { format: 'hoard-gc-condemned', version: 1, items };
  return Buffer.from(JSON.stringify(list), 'utf8');
}

const HEX64 = /^[0-9a-f]{64}$/;

export function decodeList(key: string, bytes: Uint8Array): CondemnedList {
  let list: CondemnedList;
  try {
    list = JSON.parse(Buffer.from(bytes).toString('utf8')) as CondemnedList;
  } catch {
    throw new GcError(`${key} is not valid JSON; a GC condemnation list must be (docs/gc.md)`);
  }
  if (list?.format !== 'hoard-gc-condemned' || list.version !== 1 || !Array.isArray(list.items)) {
    throw new GcError(`${key} is not a version 1 hoard-gc-condemned list; this build cannot tell what it protects, so it refuses to go on`);
  }
  for (const item of list.items) {
    if (
      (item.kind !== 'pack' && item.kind !== 'page') ||
      !HEX64.test(item.hash) ||
      !Number.isFinite(Date.parse(item.condemnedAt)) ||
      !Number.isSafeInteger(item.graceMs) ||
      item.graceMs < 0
    ) {
      throw new GcError(`${key} holds an item this build does not understand: ${JSON.stringify(item)}`);
    }
  }
  return list;
}

/**
 * Reads every condemnation list and revival marker. A GC replaces lists by writing the
 * new one before deleting the old, so a list that vanishes between listing and reading
 * means a newer one exists: the listing is simply done again, up to CONDEMNATION_LISTINGS
 * times in all; the last listing goes on without the lists that vanished from it.
 */
export async function readCondemnations(objects: ObjectStore): Promise<CondemnationState> {
  const { items, listKeys } = await retrying(
    async (attempt) => {
      const listKeys: string[] = [];
      for await (const info of listAll(objects, CONDEMNED_PREFIX)) listKeys.push(info.key);
      const items = new Map<string, Condemnation>();
      let vanished = false;
      await mapConcurrent(
        listKeys,
        8,
        async (key) => {
          try {
            return decodeList(key, await objects.get(key));
          } catch (err) {
            if (err instanceof ObjectNotFoundError) return undefined;
            throw err;
          }
        },
        (list) => {
          if (!list) {
            vanished = true;
            return;
          }
          for (const item of list.items) merge(items, item);
        },
      );
      if (vanished && attempt < CONDEMNATION_LISTINGS) throw new ListVanishedError();
      return { items, listKeys };
    },
    { attempts: CONDEMNATION_LISTINGS, retryable: (err) => err instanceof ListVanishedError },
  );
  const revived = new Set<string>();
  const revivedKeys = new Map<string, string>();
  for await (const info of listAll(objects, REVIVED_PREFIX)) {
    const [, , dir, name] = info.key.split('/');
    const match = /^([0-9a-f]{64})-(\d+)$/.exec(name ?? '');
    if (!match || (dir !== 'packs' && dir !== 'chunklists')) continue;
    const id = `${dir === 'packs' ? 'pack' : 'page'}:${match[1]}:${match[2]}`;
    revived.add(id);
    revivedKeys.set(info.key, id);
  }
  return { items, revived, listKeys, revivedKeys };
}

/**
 * Listings of the condemnation lists that readCondemnations makes at most: a list vanishes
 * only when a GC replaces it, so six in a row that lose one mean GCs racing this reader.
 */
const CONDEMNATION_LISTINGS = 6;

/** A condemnation list vanished between listing and reading (readCondemnations lists again). */
class ListVanishedError extends Error {
  /** It never leaves readCondemnations: one that did would be a bug. */
  readonly code: ErrorCode = 'internal';
}

function merge(items: Map<string, Condemnation>, item: CondemnedItem): void {
  const id = itemId(item.kind, item.hash);
  const deleteAfterMs = Date.parse(item.condemnedAt) + item.graceMs;
  const seen = items.get(id);
  if (!seen) {
    items.set(id, { kind: item.kind, hash: item.hash, instances: [item], latest: item, deleteAfterMs });
    return;
  }
  // Named twice: the same instance in two lists (a GC died between writing its list and
  // deleting the old ones), or two instances. Delete only when every promise has run out.
  if (!seen.instances.some((i) => i.condemnedAt === item.condemnedAt)) seen.instances.push(item);
  seen.instances.sort((a, b) => Date.parse(a.condemnedAt) - Date.parse(b.condemnedAt));
  seen.latest = seen.instances[seen.instances.length - 1];
  seen.deleteAfterMs = Math.max(seen.deleteAfterMs, deleteAfterMs);
}

export interface GcLock {
  version: 1;
  startedAt: string;
  host: string;
  pid: number;
}
