import { compileReads, type BucketReads } from './bucket-reads.ts';
import { horizon, type Retention } from './retention.ts';
import { TIMED_TIERS, TIER_SIZE_MS, Tier, ceilTo, floorTo, type TimedTier } from './tiers.ts';

/** One bucket to read: the tier and the bucket's start (epoch ms). */
export interface BucketRef {
  readonly tier: Tier;
  readonly start: number;
}

/**
 * What a count reads: the buckets, which tile `[from, to)` exactly. `from` and
 * `to` are the requested range rounded out to the buckets that still exist.
 */
export interface WindowPlan {
  readonly from: number;
  readonly to: number;
  readonly buckets: readonly BucketRef[];
  /** The buckets compiled for reading, made once with the plan (a plan written by hand may leave it out). */
  readonly reads?: BucketReads;
}

/** A plan of `buckets` with its reads compiled. */
export function planOf(from: number, to: number, buckets: readonly BucketRef[]): WindowPlan {
  return { from, to, buckets, reads: compileReads(buckets) };
}

export const LIFETIME_PLAN: WindowPlan = planOf(0, Number.POSITIVE_INFINITY, [{ tier: Tier.lifetime, start: 0 }]);

/**
 * Plan the read of `[from, to)` (epoch ms) at time `now`.
 *
 * An end more than a day past `now` is pulled back to there: no bucket can
 * exist that far ahead, and planning it would tile years of empty buckets.
 *
 * Each end is rounded out to the finest tier that still holds the bucket it
 * falls in, so a range is exact to the second while the 1 s tier holds its
 * start and exact to the minute, hour or day beyond that. Data older than the
 * day tier's retention is gone from the timed tiers and is not counted.
 *
 * The range between is then tiled with the fewest buckets: the largest aligned
 * run of day buckets, then hours, minutes and seconds on each fringe.
 */
export function planWindow(from: number, to: number, now: number, retention: Retention): WindowPlan {
  // Nothing is counted in the future; a day of slack covers any clock skew and bounds the work of a far-off `to`.
  to = Math.min(to, floorTo(now, TIER_SIZE_MS[Tier.day]) + 2 * TIER_SIZE_MS[Tier.day]);
  if (!(from < to)) return planOf(from, from, []);
  const startTier = finestRetainingTier(from, now, retention);
  const endTier = finestRetainingTier(to - 1, now, retention);
  if (endTier === undefined) return planOf(from, from, []);
  const oldest = horizon(Tier.day, now, retention);
  const a = startTier === undefined ? oldest : floorTo(from, TIER_SIZE_MS[startTier]);
  const b = ceilTo(to, TIER_SIZE_MS[endTier]);
  if (!(a < b)) return planOf(a, a, []);
  const buckets: BucketRef[] = [];
  tile(a, b, TIMED_TIERS.length - 1, buckets);
  return planOf(a, b, buckets);
}

function finestRetainingTier(t: number, now: number, retention: Retention): TimedTier | undefined {
  return TIMED_TIERS.find((tier) => floorTo(t, TIER_SIZE_MS[tier]) >= horizon(tier, now, retention));
}

/**
 * Tile [a, b) (both second-aligned) with buckets of the tiers up to index
 * `tierIndex`: the coarsest tier's interior run, then each fringe with finer
 * tiers. The left fringe only ever goes down to the tier `a` is aligned to,
 * the right one to the tier `b` is aligned to; retention horizons are aligned
 * to the next coarser tier, so every bucket used is one that is still held.
 */
function tile(a: number, b: number, tierIndex: number, out: BucketRef[]): void {
  for (let i = tierIndex; i >= 0; i--) {
    const tier = TIMED_TIERS[i] as TimedTier;
    const size = TIER_SIZE_MS[tier];
    const lo = ceilTo(a, size);
    const hi = floorTo(b, size);
    if (lo >= hi) continue;
    tile(a, lo, i - 1, out);
    for (let start = lo; start < hi; start += size) out.push({ tier, start });
    tile(hi, b, i - 1, out);
    return;
  }
}
