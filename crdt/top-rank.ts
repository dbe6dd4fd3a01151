import type { TopCandidates } from './top-index.ts';

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
 * Rank from the index's candidates, counting exactly (`countOf`) only as
 * many as it takes: candidates go best first by what the heaps hold of them
 * (`lower`); one's count is at most its `lower` plus the `bound` (the
 * buckets where no heap holds it add at most their floors), and a key held
 * by no heap has at most `bound`. The ranking is proven once the k-th count
 * is above both for everything not yet counted (strictly: a key tied with
 * the k-th may come first by name). Unproven, the caller counts every key,
 * or answers this ranking of the candidates with its error bound.
 */
export function rankCandidates(candidates: TopCandidates, k: number, countOf: (key: string) => number): Ranking {
  const { lower, bound } = candidates;
  const order = [...lower].sort((a, b) => b[1] - a[1]);
  const best = new TopK(k);
  for (const [key, held] of order) {
    if (best.full && best.last > held + bound && best.last > bound) return { top: best.entries, exact: true, maxError: 0 };
    best.offer({ key, count: countOf(key) });
  }
  // Every candidate counted: what is left out of them was ranked; keys outside the heaps have at most `bound`.
  const exact = bound === 0 || (best.full && best.last > bound);
  return { top: best.entries, exact, maxError: exact ? 0 : Math.max(0, bound - best.last) };
}

/** Rank keys whose every count is known (a scan of every key). */
export function rankAll(counts: Iterable<TopEntry>, k: number): TopEntry[] {
  const best = new TopK(k);
  for (const entry of counts) best.offer(entry);
  return best.entries;
}
