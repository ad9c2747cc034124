/**
 * Reading a pack's trailer from an object store with two ranged reads (footer, then the
 * entries), never the whole pack.
 */
import type { ObjectStore } from '../store/object-store.js';
import { decodeFooter, decodeTrailer, loadPackHashing, PackFormatError, PACK_ENTRY_BYTES, PACK_FOOTER_BYTES, type PackTrailer } from './pack-format.js';

export async function readPackTrailer(store: ObjectStore, key: string): Promise<PackTrailer> {
  await loadPackHashing();
  const info = await store.head(key);
  if (!info) throw new PackFormatError(key, 'no such object');
  if (info.size < PACK_FOOTER_BYTES) throw new PackFormatError(key, `${info.size} bytes is too short for a pack`);
  const footer = await store.get(key, { offset: info.size - PACK_FOOTER_BYTES, length: PACK_FOOTER_BYTES });
  const { count } = decodeFooter(key, footer, info.size);
  const length = count * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES;
  const tail = await store.get(key, { offset: info.size - length, length });
  return decodeTrailer(key, tail, info.size);
}
