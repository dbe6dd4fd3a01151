import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileReads } from '../../crdt/bucket-reads.ts';
import { KeyBuckets } from '../../crdt/key-buckets.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ALL_TIERS, TIER_SIZE_MS, Tier, bucketStart } from '../../crdt/tiers.ts';
import { planWindow, type BucketRef } from '../../crdt/window-plan.ts';

const NOW = Date.UTC(2026, 10, 28, 13, 37, 42, 123);
const D = 86_400_000;

/** A key's buckets: hits at random instants in the last `spanMs` (every tier of each), so a key may hold far fewer or far more buckets than a plan names. */
function bucketsWith(instants: readonly number[]): KeyBuckets {
  const buckets = new KeyBuckets('o', 7, { digest: 0, high: 0, hits: 0 });
  for (const t of instants) for (const tier of ALL_TIERS) buckets.add(tier, bucketStart(tier, t), 1);
  return buckets;
}

/** The plain sum, one lookup per planned bucket: what the compiled reads must equal. */
const lookupSum = (buckets: KeyBuckets, refs: readonly BucketRef[]): number => refs.reduce((sum, ref) => sum + buckets.get(ref.tier, ref.start), 0);

describe('compiled bucket reads', () => {
  it('sum exactly what a lookup per planned bucket sums, over keys holding far fewer or far more buckets than the plan', () => {
    const instant = (spanMs: number) => fc.integer({ min: 0, max: spanMs }).map((back) => NOW - back);
    fc.assert(
      fc.property(
        // Very sparse keys, sparse ones, and dense ones (hundreds in the last hour, past the small arrays copied on insert).
        fc.oneof(
          fc.array(instant(30 * D), { maxLength: 3 }),
          fc.array(instant(2 * 3_600_000), { maxLength: 4 }),
          fc.array(instant(30 * D), { maxLength: 12 }),
          fc.array(instant(3_600_000), { minLength: 100, maxLength: 600 }),
        ),
        fc.integer({ min: 1, max: 40 * D }),
        fc.integer({ min: 0, max: 2 * D }),
        (instants, windowMs, endBack) => {
          const buckets = bucketsWith(instants);
          if (instants.length % 2 === 0) buckets.trim(); // what a load does: the same buckets in arrays copied at their length
          const to = NOW - endBack + 1;
          const plan = planWindow(to - windowMs, to, NOW, DEFAULT_RETENTION);
          expect(buckets.sum(plan.reads ?? compileReads(plan.buckets))).toBe(lookupSum(buckets, plan.buckets));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('walk a run of minutes without counting the other tiers held near it', () => {
    const buckets = new KeyBuckets('o', 7, { digest: 0, high: 0, hits: 0 });
    const hour = bucketStart(Tier.hour, NOW);
    buckets.set(Tier.hour, hour, 1_000);
    buckets.set(Tier.day, bucketStart(Tier.day, NOW), 10_000);
    buckets.set(Tier.minute, hour, 5);
    buckets.set(Tier.minute, hour - 60 * TIER_SIZE_MS[Tier.minute], 7); // outside the run
    const minutes: BucketRef[] = Array.from({ length: 120 }, (_, i) => ({ tier: Tier.minute, start: hour - 30 * 60_000 + i * TIER_SIZE_MS[Tier.minute] }));
    const reads = compileReads(minutes);
    expect(reads.coarseRuns).toHaveLength(2);
    expect(buckets.sum(reads)).toBe(5);
  });

  it('never count another tier’s bucket whose index falls inside a run (a range reaching back to 1970)', () => {
    // Minute numbers of late 1970 are the hour numbers of today: the hour's index (H × 4 + 2) lies between the minutes' (× 4 + 1).
    const buckets = new KeyBuckets('o', 7, { digest: 0, high: 0, hits: 0 });
    const hour = bucketStart(Tier.hour, NOW);
    buckets.set(Tier.hour, hour, 1_000);
    const hourNumber = hour / TIER_SIZE_MS[Tier.hour];
    const minutes: BucketRef[] = Array.from({ length: 21 }, (_, i) => ({ tier: Tier.minute, start: (hourNumber - 10 + i) * TIER_SIZE_MS[Tier.minute] }));
    const reads = compileReads(minutes);
    expect(reads.coarseRuns).toHaveLength(2);
    expect(buckets.sum(reads)).toBe(0);
  });

  it('read the lifetime total only when it is planned, and a plan of nothing as 0', () => {
    const buckets = bucketsWith([NOW, NOW - 5_000]);
    expect(buckets.sum(compileReads([{ tier: Tier.lifetime, start: 0 }]))).toBe(2);
    expect(buckets.sum(compileReads([]))).toBe(0);
  });
});
