import { TIER_SIZE_MS, Tier } from './tiers.ts';
import type { BucketRef } from './window-plan.ts';

/** Seconds are counted from 2020-01-01 so a second bucket's index stays a small integer until 2088. */
export const SECOND_EPOCH_S = 1_577_836_800;
/** The earliest instant any bucket can hold: nothing is counted before 2020-01-01 (UTC). */
export const EARLIEST_MS = SECOND_EPOCH_S * 1000;

/** The key of the second bucket starting at `start` in KeyBuckets.seconds. */
export function secondIndex(start: number): number {
  return start / 1000 - SECOND_EPOCH_S;
}

/** The key of a minute, hour or day bucket in KeyBuckets.coarse: bucket number × 4 + tier. */
export function coarseIndex(tier: Tier, start: number): number {
  return (start / TIER_SIZE_MS[tier as Exclude<Tier, 0 | 4>]) * 4 + tier;
}

/**
 * A plan's buckets compiled for reading: runs of consecutive map keys, in
 * the keys KeyBuckets stores them under, worked out once per plan instead of
 * once per bucket per count. A sum finds each run's first key in a key's
 * sorted buckets and walks on to the run's end (see sorted-pairs.ts).
 */
export interface BucketReads {
  /** The planned seconds as inclusive [first, last] second-index pairs, flat (a run's keys step by 1). */
  readonly secondRuns: readonly number[];
  /**
   * The planned minutes, hours and days as inclusive [first, last] coarse-index
   * pairs, flat (a run's keys step by 4, its tier in the low two bits).
   * Indexes of different tiers interleave only for plans reaching decades
   * back, yet a walk still checks an index's tier against its run's.
   */
  readonly coarseRuns: readonly number[];
  /** Whether the lifetime total is planned. */
  readonly lifetime: boolean;
}

/** Compile `buckets` (any order, no duplicates) into reads. */
export function compileReads(buckets: readonly BucketRef[]): BucketReads {
  const secondRuns: number[] = [];
  const coarseRuns: number[] = [];
  let lifetime = false;
  for (const { tier, start } of buckets) {
    if (tier === Tier.lifetime) {
      lifetime = true;
    } else if (tier === Tier.second) {
      extendRun(secondRuns, secondIndex(start), 1);
    } else {
      extendRun(coarseRuns, coarseIndex(tier, start), 4);
    }
  }
  return { secondRuns, coarseRuns, lifetime };
}

/** Append `index` to the last run when it follows it by `step`, else open a new run. */
function extendRun(runs: number[], index: number, step: number): void {
  const last = runs.length - 1;
  if (last > 0 && runs[last] === index - step) runs[last] = index;
  else runs.push(index, index);
}
