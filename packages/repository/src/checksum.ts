/**
 * xxh64, the stored-bytes checksum of blobs and pack trailers (never an identity).
 * xxhash-wasm instantiates asynchronously once; after `loadXxh64()` the hash is sync.
 */
import xxhash from 'xxhash-wasm';

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let loading: Promise<Hasher> | undefined;
let hasher: Hasher | undefined;

export async function loadXxh64(): Promise<void> {
  loading ??= xxhash();
  hasher = await loading;
}

export function xxh64(data: Uint8Array): bigint {
  if (!hasher) throw new Error('loadXxh64() must be awaited before checksums are computed');
  return hasher.h64Raw(data);
}
