import { BucketTop } from './bucket-top.ts';
import { TIMED_TIERS, TIER_SIZE_MS, Tier, ceilTo, floorTo } from './tiers.ts';
import type { BucketRef } from './window-plan.ts';

/**
 * Keys held per bucket, by tier: enough that a skewed ranking is proven from
 * the heaps alone (see TopIndex), few enough that the index stays bounded
 * over the default retention: 7,200 seconds × 64 + 2,880 minutes × 64 +
 * 2,160 hours × 256 + 1,825 days × 256 + 1,024 ≈ 1.7 M entries at most
 * (estimated at about 60 B each, ~100 MB), whatever the number of keys.
 */
export const TOP_CAPACITY: Readonly<Record<Tier, number>> = {
  [Tier.second]: 64,
  [Tier.minute]: 64,
  [Tier.hour]: 256,
  [Tier.day]: 256,
  [Tier.lifetime]: 1_024,
};

/** Buckets of one tier a cover may take: enough that a window of 60 s, 1 h or 24 h, wherever it falls, is covered by two of the next tier. */
export const MAX_COVER_BUCKETS = 3;

/**
 * The ranking index: per bucket, the keys with the highest totals over
 * origins (gross: before duplicates that idempotency tokens prove, so every
 * figure is an upper bound of a count). Raised wherever a bucket's total
 * rises (a hit, an applied delta, a slot loaded from the store); a bucket's
 * heap goes when retention drops the bucket.
 */
export class TopIndex {
  private readonly tiers = TIMED_TIERS.map(() => new Map<number, BucketTop>());
  private readonly lifetime = new BucketTop(TOP_CAPACITY[Tier.lifetime]);
  private readonly lastStart = TIMED_TIERS.map(() => Number.NaN);
  private readonly lastTop: (BucketTop | undefined)[] = TIMED_TIERS.map(() => undefined);

  /** `key`'s total over origins in bucket (tier, start) is now `total`. */
  raise(key: string, tier: Tier, start: number, total: number): void {
    if (tier === Tier.lifetime) {
      this.lifetime.raise(key, total);
      return;
    }
    this.bucketOf(tier, start).raise(key, total);
  }

  private bucketOf(tier: Exclude<Tier, 4>, start: number): BucketTop {
    // Hits go to the current bucket of each tier: remember it rather than look it up five times a hit.
    let top = this.lastStart[tier] === start ? this.lastTop[tier] : undefined;
    if (top === undefined) {
      const buckets = this.tiers[tier] as Map<number, BucketTop>;
      top = buckets.get(start);
      if (top === undefined) buckets.set(start, (top = new BucketTop(TOP_CAPACITY[tier])));
      this.lastStart[tier] = start;
      this.lastTop[tier] = top;
    }
    return top;
  }

  /** `key`'s total over origins in bucket (tier, start) rose by `n` (see BucketTop.add): a stored slot loaded without being held. */
  add(key: string, tier: Tier, start: number, n: number): void {
    if (tier === Tier.lifetime) this.lifetime.add(key, n);
    else this.bucketOf(tier, start).add(key, n);
  }

  /** The heaps of the buckets of `refs` that hold any key. */
  heaps(refs: readonly BucketRef[]): BucketTop[] {
    const heaps: BucketTop[] = [];
    for (const ref of refs) {
      const top = ref.tier === Tier.lifetime ? this.lifetime : this.tiers[ref.tier]?.get(ref.start);
      if (top !== undefined && top.size > 0) heaps.push(top);
    }
    return heaps;
  }

  /**
   * The heaps of the fewest buckets of one coarser tier that cover
   * [from, to): the finest of minute, hour and day that does it in at most
   * MAX_COVER_BUCKETS. A key's count in the window is at most its count in
   * them (every hit counts in every tier, and a repair sends a key's coarser
   * buckets first), so a key they do not hold has at most the sum of their
   * floors. Undefined when no tier covers the range in so few buckets.
   */
  cover(from: number, to: number): BucketTop[] | undefined {
    for (const tier of [Tier.minute, Tier.hour, Tier.day] as const) {
      const size = TIER_SIZE_MS[tier];
      const first = floorTo(from, size);
      const end = ceilTo(to, size);
      if ((end - first) / size > MAX_COVER_BUCKETS) continue;
      const heaps: BucketTop[] = [];
      const buckets = this.tiers[tier] as Map<number, BucketTop>;
      // A bucket with no heap had no hit at all: it adds nothing to any key.
      for (let start = first; start < end; start += size) {
        const top = buckets.get(start);
        if (top !== undefined && top.size > 0) heaps.push(top);
      }
      return heaps;
    }
    return undefined;
  }

  /** Retention dropped every bucket of each timed tier that starts before its horizon. */
  dropBefore(horizons: readonly number[]): void {
    for (const tier of TIMED_TIERS) {
      const horizon = horizons[tier] ?? Number.NEGATIVE_INFINITY;
      const buckets = this.tiers[tier] as Map<number, BucketTop>;
      for (const start of buckets.keys()) if (start < horizon) buckets.delete(start);
      if ((this.lastStart[tier] as number) < horizon) this.lastTop[tier] = undefined;
    }
  }

  /** Entries held over every bucket. */
  get entries(): number {
    let n = this.lifetime.size;
    for (const buckets of this.tiers) for (const top of buckets.values()) n += top.size;
    return n;
  }
}

