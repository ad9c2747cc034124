/**
 * Page-granular content maps for the VM image: a sorted list of non-overlapping spans, each
 * saying which content stream fills which pages. A day's image is the day-0 map with each
 * day's writes painted on top, so memory is O(spans) and never O(image).
 *
 * Spans are immutable and shared between the maps of consecutive days.
 */

// A plain object rather than a const enum so the JS stays valid under isolated transpilers.
export const Kind = { Zero: 0, Random: 1, Text: 2 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface Span {
  /** First page (4 KiB units). */
  readonly start: number;
  /** One past the last page. */
  readonly end: number;
  readonly kind: Kind;
  /** Content stream id: (day that wrote it, index of the write that day). */
  readonly day: number;
  readonly idx: number;
  /** Page of the content stream shown at `start`: trimming a span must not shift its data. */
  readonly cpage: number;
}

export function trim(s: Span, start: number, end: number): Span {
  return { start, end, kind: s.kind, day: s.day, idx: s.idx, cpage: s.cpage + (start - s.start) };
}

/** Index of the span containing `page` in a sorted, gap-free map. */
export function findSpan(map: readonly Span[], page: number): number {
  let lo = 0;
  let hi = map.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (map[mid].start <= page) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Resolves one day's writes, applied in order (later wins), into a sorted, non-overlapping
 * overlay. A sweep over start/end points with a max-heap of the covering writes' indices:
 * O(k log k), because a big image can see 10^5 scattered writes a day and painting them one
 * by one into a sorted array would be quadratic.
 */
export function flatten(writes: readonly Span[]): Span[] {
  const k = writes.length;
  // Event i < k: write i starts; event k + i: write i ends. Sorted by position.
  const events = new Int32Array(2 * k);
  for (let i = 0; i < 2 * k; i++) events[i] = i;
  const at = (e: number): number => (e < k ? writes[e].start : writes[e - k].end);
  events.sort((x, y) => at(x) - at(y));
  const ended = new Uint8Array(k);
  const heap: number[] = [];
  const out: Span[] = [];
  let lastWinner = -1;
  for (let e = 0; e < 2 * k; ) {
    const pos = at(events[e]);
    for (; e < 2 * k && at(events[e]) === pos; e++) {
      const ev = events[e];
      if (ev < k) heapPush(heap, ev);
      else ended[ev - k] = 1;
    }
    while (heap.length > 0 && ended[heap[0]] === 1) heapPop(heap);
    if (e === 2 * k || heap.length === 0) {
      lastWinner = -1;
      continue;
    }
    const w = heap[0];
    const next = at(events[e]);
    if (w === lastWinner && out[out.length - 1].end === pos) {
      out[out.length - 1] = trim(writes[w], out[out.length - 1].start, next);
    } else {
      out.push(trim(writes[w], pos, next));
    }
    lastWinner = w;
  }
  return out;
}

function heapPush(h: number[], v: number): void {
  let i = h.push(v) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent] >= v) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = v;
}

function heapPop(h: number[]): void {
  const last = h.pop()!;
  if (h.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && h[l + 1] > h[l] ? l + 1 : l;
    if (h[c] <= last) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
}

/**
 * Applies a sorted, non-overlapping overlay to a sorted, gap-free base in one linear merge:
 * O(base + overlay) per day.
 */
export function overlay(base: readonly Span[], over: readonly Span[]): Span[] {
  const out: Span[] = [];
  let bi = 0;
  let cur: Span | undefined = base[0];
  for (const o of over) {
    while (cur !== undefined && cur.end <= o.start) {
      out.push(cur);
      cur = base[++bi];
    }
    if (cur !== undefined && cur.start < o.start) out.push(trim(cur, cur.start, o.start));
    out.push(o);
    while (cur !== undefined && cur.end <= o.end) cur = base[++bi];
    if (cur !== undefined && cur.start < o.end) cur = trim(cur, o.end, cur.end);
  }
  while (cur !== undefined) {
    out.push(cur);
    cur = base[++bi];
  }
  return out;
}
