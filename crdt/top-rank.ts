import type { BucketTop } from './bucket-top.ts';

export interface TopEntry {
  readonly key: string;
  readonly count: number;
}

export interface Ranking {
  /** The best `k` (fewer when fewer have hits), by count, then key; every count exact. */
  readonly top: TopEntry[];
  /** True when no key outside `top` belongs in it: proven from the bound, or every key was counted. */
  readonly exact: boolean;
  /**
   * How many hits more than the last one listed (0 when fewer than k are)
   * a key left out may have. 0 when exact.
   */
  readonly maxError: number;
}

/** Count desc, then key asc (UTF-16 order, as JavaScript compares strings). */
export const before = (a: TopEntry, b: TopEntry): boolean => a.count > b.count || (a.count === b.count && a.key < b.key);

/** The best `k` entries seen so far, in order. */
export class TopK {
  readonly entries: TopEntry[] = [];

  constructor(private readonly k: number) {}

  offer(entry: TopEntry): void {
    if (entry.count <= 0) return;
    const list = this.entries;
    if (list.length === this.k && !before(entry, list[list.length - 1] as TopEntry)) return;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(list[mid] as TopEntry, entry)) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, entry);
    if (list.length > this.k) list.pop();
  }

  /** The k-th count, 0 while fewer are held. */
  get last(): number {
    return this.entries.length < this.k ? 0 : (this.entries[this.k - 1] as TopEntry).count;
  }

  get full(): boolean {
    return this.entries.length === this.k;
  }
}

/**
 * Rank from the heaps of the planned buckets, a threshold algorithm (Fagin's
 * TA): read the heaps best first, always the one whose next count is
 * highest, count each key met exactly (`countOf`: its sum over the plan,
 * less duplicates), and stop once the k-th count is above the threshold:
 * the sum over heaps of the next count not yet read (or the heap's floor
 * when it is read to the end). A key not met yet has at most that in each
 * bucket, so at most the threshold in all (strictly: a key tied with the
 * k-th may come first by name). Read to the end unproven, the answer ranks
 * every key met, and a key left out has at most the sum of the floors.
 * Flat heaps (many keys of about the same count) make it meet and count
 * most keys: past `maxCounted` keys counted it gives up (undefined) and the
 * caller ranks the union instead (rankUnion).
 */
export function rankHeaps(heaps: readonly BucketTop[], k: number, prefix: string, countOf: (key: string) => number, maxCounted = Number.POSITIVE_INFINITY): Ranking | undefined {
  for (const heap of heaps) heap.sort();
  const floors = heaps.map((heap) => heap.floor());
  const bound = floors.reduce((a, b) => a + b, 0);
  // Per heap the next position to read and the most an unread key holds there.
  const next = heaps.map(() => 0);
  const upper = heaps.map((heap) => heap.countAt(0));
  let threshold = upper.reduce((a, b) => a + b, 0);
  const queue = new MaxQueue(upper);
  const met = new Set<string>();
  const best = new TopK(k);
  for (;;) {
    if (best.full && best.last > threshold) return { top: best.entries, exact: true, maxError: 0 };
    const h = queue.pop();
    if (h === undefined) break;
    const heap = heaps[h] as BucketTop;
    const at = next[h] as number;
    const key = heap.keyAt(at);
    next[h] = at + 1;
    const after = at + 1 < heap.size ? heap.countAt(at + 1) : (floors[h] as number);
    threshold -= (upper[h] as number) - after;
    upper[h] = after;
    if (at + 1 < heap.size) queue.push(h);
    if (met.has(key)) continue;
    met.add(key);
    if (prefix !== '' && !key.startsWith(prefix)) continue;
    if (--maxCounted < 0) return undefined;
    best.offer({ key, count: countOf(key) });
  }
  return readToTheEnd(best, bound);
}

/** A binary max-heap of indexes into `keys`, by the value each has there when pushed. */
class MaxQueue {
  private readonly items: number[] = [];

  constructor(private readonly keys: readonly number[]) {
    for (let i = 0; i < keys.length; i++) this.push(i);
  }

  push(i: number): void {
    const items = this.items;
    items.push(i);
    let at = items.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.value(parent) >= this.value(at)) break;
      [items[parent], items[at]] = [items[at] as number, items[parent] as number];
      at = parent;
    }
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const most = right < items.length && this.value(right) > this.value(left) ? right : left;
      if (this.value(most) <= this.value(at)) break;
      [items[most], items[at]] = [items[at] as number, items[most] as number];
      at = most;
    }
    return top;
  }

  private value(position: number): number {
    return this.keys[this.items[position] as number] as number;
  }
}

/**
 * Rank every key the heaps hold, in order of an upper bound of its count: a
 * heap that holds a key has its current count there, one that does not has
 * at most its floor. So a key's count is at most `bound` (the sum of the
 * floors) plus what it has above the floor of each heap that holds it, and
 * a key held by none has at most `bound`. Keys are counted exactly in that
 * order until the k-th count is above the next one's bound (strictly: a tie
 * may come first by name); read to the end unproven, see readToTheEnd.
 * Undefined once more than `maxCounted` keys would be counted.
 */
function rankByBound(heaps: readonly BucketTop[], k: number, prefix: string, countOf: (key: string) => number, maxCounted: number): Ranking | undefined {
  const floors = heaps.map((heap) => heap.floor());
  const bound = floors.reduce((a, b) => a + b, 0);
  const upper = new Map<string, number>();
  heaps.forEach((heap, h) => {
    const floor = floors[h] as number;
    heap.forEachEntry((key, count) => {
      if (prefix === '' || key.startsWith(prefix)) upper.set(key, (upper.get(key) ?? bound) + count - floor);
    });
  });
  const keys = [...upper.keys()];
  const queue = new MaxQueue(keys.map((key) => upper.get(key) as number));
  const best = new TopK(k);
  for (;;) {
    const i = queue.pop();
    if (i === undefined) break;
    const key = keys[i] as string;
    // Every key left has at most this, and `bound` is no more than it.
    if (best.full && best.last > (upper.get(key) as number)) return { top: best.entries, exact: true, maxError: 0 };
    if (--maxCounted < 0) return undefined;
    best.offer({ key, count: countOf(key) });
  }
  return readToTheEnd(best, bound);
}

/** The same from every entry of the planned heaps: linear in them, no sorted access; unproven, the ranking of every key they hold. */
export function rankUnion(heaps: readonly BucketTop[], k: number, prefix: string, countOf: (key: string) => number): Ranking {
  return rankByBound(heaps, k, prefix, countOf, Number.POSITIVE_INFINITY) as Ranking;
}

/**
 * Rank from the heaps of the buckets that cover the window (TopIndex.cover):
 * a key's count there is at least its count in the window, so the same
 * bound holds for the window. A few heaps, and for skewed counts a few keys
 * counted: the cheapest proof there is. Undefined when it proves nothing
 * within `maxCounted` keys counted or by the end of the candidates; the
 * plan's own heaps are tried next.
 */
export function rankCover(heaps: readonly BucketTop[], k: number, prefix: string, countOf: (key: string) => number, maxCounted: number): Ranking | undefined {
  const ranked = rankByBound(heaps, k, prefix, countOf, maxCounted);
  return ranked?.exact === true ? ranked : undefined;
}

/** Every key the heaps hold was ranked: one held by none has at most `bound`, the sum of the floors. */
function readToTheEnd(best: TopK, bound: number): Ranking {
  const exact = bound === 0 || (best.full && best.last > bound);
  return { top: best.entries, exact, maxError: exact ? 0 : Math.max(0, bound - best.last) };
}
