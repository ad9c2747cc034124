/**
 * FastCDC cut-point search (Xia et al., USENIX ATC 2016; "rolling two bytes", TPDS 2020).
 *
 * Gear hash: h = (h << 1) + G[byte], 32 bits. Skip the first minSize bytes (cut-point
 * skipping), test h against the stricter mask maskS up to avgSize and the looser maskL
 * after it (normalized chunking), cut at maxSize at the latest.
 *
 * Both variants return identical cut points: after bytes i and i+1 the 2020 loop holds
 * exactly the 2016 hash, and its mid-step value is the 2016 hash after byte i shifted
 * left by one, which it tests against the mask shifted left by one. The masks never use
 * bit 31 (see cutMask), so the shift loses nothing.
 *
 * These loops are the hottest code in hoard: keep them monomorphic, allocation free, and
 * on int32 arithmetic (`| 0`) so V8 keeps everything in registers.
 */
import type { ResolvedFastCdc } from './params.js';

function bounds(p: ResolvedFastCdc, start: number, end: number): { n: number; avgEnd: number } {
  let n = end - start;
  if (n > p.maxSize) n = p.maxSize;
  return { n, avgEnd: start + Math.min(n, p.avgSize) };
}

export function fastCdc2016(p: ResolvedFastCdc, src: Uint8Array, start: number, end: number): number {
  const { n, avgEnd } = bounds(p, start, end);
  if (n <= p.minSize) return start + n;
  const gear = p.gear;
  const maskS = p.maskS;
  const maskL = p.maskL;
  const stop = start + n;
  let h = 0;
  let i = start + p.minSize;
  for (; i < avgEnd; i++) {
    h = ((h << 1) + gear[src[i]]) | 0;
    if ((h & maskS) === 0) return i + 1;
  }
  for (; i < stop; i++) {
    h = ((h << 1) + gear[src[i]]) | 0;
    if ((h & maskL) === 0) return i + 1;
  }
  return stop;
}

const shiftedGearCache = new WeakMap<Int32Array, Int32Array>();

/** G[b] << 1, precomputed once per gear table. */
function shiftedGear(gear: Int32Array): Int32Array {
  let t = shiftedGearCache.get(gear);
  if (!t) {
    t = new Int32Array(256);
    for (let i = 0; i < 256; i++) t[i] = gear[i] << 1;
    shiftedGearCache.set(gear, t);
  }
  return t;
}

export function fastCdc2020(p: ResolvedFastCdc, src: Uint8Array, start: number, end: number): number {
  const { n, avgEnd } = bounds(p, start, end);
  if (n <= p.minSize) return start + n;
  const gear = p.gear;
  const gearLs = shiftedGear(gear);
  const maskS = p.maskS;
  const maskL = p.maskL;
  const maskSls = maskS << 1;
  const maskLls = maskL << 1;
  const stop = start + n;
  let h = 0;
  let i = start + p.minSize;
  for (; i + 2 <= avgEnd; i += 2) {
    h = ((h << 2) + gearLs[src[i]]) | 0;
    if ((h & maskSls) === 0) return i + 1;
    h = (h + gear[src[i + 1]]) | 0;
    if ((h & maskS) === 0) return i + 2;
  }
  if (i < avgEnd) {
    h = ((h << 1) + gear[src[i]]) | 0;
    if ((h & maskS) === 0) return i + 1;
    i++;
  }
  for (; i + 2 <= stop; i += 2) {
    h = ((h << 2) + gearLs[src[i]]) | 0;
    if ((h & maskLls) === 0) return i + 1;
    h = (h + gear[src[i + 1]]) | 0;
    if ((h & maskL) === 0) return i + 2;
  }
  if (i < stop) {
    h = ((h << 1) + gear[src[i]]) | 0;
    if ((h & maskL) === 0) return i + 1;
  }
  return stop;
}
