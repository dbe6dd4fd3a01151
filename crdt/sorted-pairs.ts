/**
 * A small-integer → count map as one flat array of [index, count] pairs
 * sorted by index. A key's buckets are a handful for most keys and a long
 * run for a hot one, and they arrive in time order: an array holds six
 * buckets in 144 B (measured over a million of them), a new bucket is
 * usually appended at the end, and a sum over a plan's runs is a binary
 * search per run and a walk over what lies in it.
 *
 * Arrays grow in place (V8 adds half again plus 16 slots when one is full),
 * and a load gives the spare room back once it is done (KeyBuckets.trim):
 * copying a small array at its exact length on every insert instead left
 * the heap of a million keys full of dead copies, 665 MB of RSS against 513.
 */
export type SortedPairs = number[];

/** The array position of the first pair whose index is ≥ `index` (pairs.length when none). */
export function lowerBound(pairs: SortedPairs, index: number): number {
  let lo = 0;
  let hi = pairs.length >> 1;
  // Most lookups are of the newest bucket: the last pair, or past it.
  if (hi > 0) {
    const newest = pairs[pairs.length - 2] as number;
    if (newest < index) return pairs.length;
    if (newest === index) return pairs.length - 2;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((pairs[2 * mid] as number) < index) lo = mid + 1;
    else hi = mid;
  }
  return 2 * lo;
}

export function pairGet(pairs: SortedPairs | undefined, index: number): number {
  if (pairs === undefined) return 0;
  const at = lowerBound(pairs, index);
  return at < pairs.length && pairs[at] === index ? (pairs[at + 1] as number) : 0;
}

/** Set `index` to `count` (> 0); returns the array to keep (a new one only for the first pair). */
export function pairSet(pairs: SortedPairs | undefined, index: number, count: number): SortedPairs {
  if (pairs === undefined) return [index, count];
  const at = lowerBound(pairs, index);
  if (at < pairs.length && pairs[at] === index) {
    pairs[at + 1] = count;
    return pairs;
  }
  if (at === pairs.length) pairs.push(index, count);
  else pairs.splice(at, 0, index, count);
  return pairs;
}

/**
 * The sum of the counts at the indexes of `runs` (flat inclusive [first,
 * last] pairs whose indexes step by `step`, 1 or 4). With step 4 only indexes
 * with the run's low two bits count: other tiers' indexes may lie between.
 */
export function sumRuns(pairs: SortedPairs, runs: readonly number[], step: 1 | 4): number {
  let total = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const first = runs[r] as number;
    const last = runs[r + 1] as number;
    for (let at = lowerBound(pairs, first); at < pairs.length; at += 2) {
      const index = pairs[at] as number;
      if (index > last) break;
      if (step === 1 || (index & 3) === (first & 3)) total += pairs[at + 1] as number;
    }
  }
  return total;
}

/** Remove the pairs whose index `drop` says go; returns how many went. */
export function dropPairs(pairs: SortedPairs, drop: (index: number) => boolean): number {
  let kept = 0;
  for (let at = 0; at < pairs.length; at += 2) {
    const index = pairs[at] as number;
    if (drop(index)) continue;
    pairs[kept] = index;
    pairs[kept + 1] = pairs[at + 1] as number;
    kept += 2;
  }
  const dropped = (pairs.length - kept) / 2;
  pairs.length = kept;
  return dropped;
}
