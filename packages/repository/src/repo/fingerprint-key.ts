/**
 * A fingerprint as a Map or Set key: its first 128 bits (what the store index compares,
 * too) as a string of eight 16-bit code units, 32 bytes of heap. The hex of all 32 bytes
 * (a Buffer and a 64-char string per chunk) was a measurable share of a backup's
 * main-thread garbage. Used by the store writer's pending blobs and by the agent's
 * batches (a chunk repeated within a batch, blobs carried by batches in flight).
 */
export function fingerprintKey(f: Uint8Array): string {
  return String.fromCharCode(
    f[0] | (f[1] << 8),
    f[2] | (f[3] << 8),
    f[4] | (f[5] << 8),
    f[6] | (f[7] << 8),
    f[8] | (f[9] << 8),
    f[10] | (f[11] << 8),
    f[12] | (f[13] << 8),
    f[14] | (f[15] << 8),
  );
}
