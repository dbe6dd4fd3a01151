import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION, horizon, isRetained, retentionProblem, type Retention } from '../../crdt/retention.ts';
import { ALL_TIERS, TIER_SIZE_MS, TIMED_TIERS, Tier, bucketStart, type TimedTier } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN, planWindow, type BucketRef } from '../../crdt/window-plan.ts';

const S = 1_000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const NOW = Date.UTC(2026, 10, 28, 13, 37, 42, 123);

/** Small retentions so random ranges hit every tier's edge. */
const retentionArb: fc.Arbitrary<Retention> = fc
  .tuple(fc.integer({ min: 1, max: 180 }), fc.integer({ min: 1, max: 180 }), fc.integer({ min: 1, max: 72 }), fc.integer({ min: 1, max: 60 }))
  .map(([s, m, h, d]) => {
    const second = s * S * 20;
    const minute = Math.max(second, m * M * 5);
    const hour = Math.max(minute, h * H);
    const day = Math.max(hour, d * D);
    return { [Tier.second]: second, [Tier.minute]: minute, [Tier.hour]: hour, [Tier.day]: day };
  });

function stateWith(hits: readonly (readonly [string, number, number])[], origin: string): ReplicaState {
  const state = new ReplicaState();
  const totals = new Map<string, number>();
  for (const [key, t, n] of hits) {
    for (const tier of ALL_TIERS) {
      const id = `${key}|${tier}|${bucketStart(tier, t)}`;
      const count = (totals.get(id) ?? 0) + n;
      totals.set(id, count);
      state.join({ origin, key, tier, start: bucketStart(tier, t), count });
    }
  }
  return state;
}

/** The rounding rule of SPEC section 3, written out independently of the planner. */
function expectedBounds(from: number, to: number, now: number, retention: Retention): [number, number] {
  const finest = (t: number): TimedTier | undefined =>
    TIMED_TIERS.find((tier) => bucketStart(tier, t) >= horizon(tier, now, retention));
  if (from >= to) return [from, from];
  const endTier = finest(to - 1);
  if (endTier === undefined) return [from, from];
  const startTier = finest(from);
  const a = startTier === undefined ? horizon(Tier.day, now, retention) : bucketStart(startTier, from);
  const b = Math.ceil(to / TIER_SIZE_MS[endTier]) * TIER_SIZE_MS[endTier];
  return a < b ? [a, b] : [a, a];
}

function covered(buckets: readonly BucketRef[]): [number, number][] {
  return buckets
    .map((b): [number, number] => [b.start, b.start + (b.tier === Tier.lifetime ? Infinity : TIER_SIZE_MS[b.tier])])
    .sort((x, y) => x[0] - y[0]);
}

describe('window planner', () => {
  const hitArb = (span: number) =>
    fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: NOW - span, max: NOW }), fc.integer({ min: 1, max: 5 }));

  it('every planned sum equals a brute-force count of the same hits, across tiers and retention limits', () => {
    fc.assert(
      fc.property(
        retentionArb,
        fc.array(hitArb(70 * D), { maxLength: 60 }),
        fc.integer({ min: 0, max: 80 * D }),
        fc.integer({ min: 0, max: 80 * D }),
        fc.boolean(),
        (retention, hits, back1, back2, collect) => {
          const state = stateWith(hits, 'o1');
          // Whether or not expired buckets were collected yet, answers are the same.
          if (collect) state.dropExpired(NOW, retention);
          const [from, to] = [NOW - Math.max(back1, back2), NOW + 1 - Math.min(back1, back2)];
          const plan = planWindow(from, to, NOW, retention);
          const [a, b] = expectedBounds(from, to, NOW, retention);
          expect([plan.from, plan.to]).toEqual([a, b]);
          const brute = hits.filter(([key, t]) => key === 'a' && t >= a && t < b).reduce((sum, [, , n]) => sum + n, 0);
          expect(state.sum('a', plan)).toBe(brute);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('tiles the range exactly, with retained buckets, and no run of buckets a coarser retained one could replace', () => {
    fc.assert(
      fc.property(retentionArb, fc.integer({ min: 0, max: 400 * D }), fc.integer({ min: 0, max: 400 * D }), (retention, back1, back2) => {
        const from = NOW - Math.max(back1, back2);
        const to = NOW - Math.min(back1, back2);
        const plan = planWindow(from, to, NOW, retention);
        const spans = covered(plan.buckets);
        let cursor = plan.from;
        for (const [start, end] of spans) {
          expect(start).toBe(cursor);
          cursor = end;
        }
        expect(cursor).toBe(plan.to);
        for (const bucket of plan.buckets) expect(isRetained(bucket.tier, bucket.start, NOW, retention)).toBe(true);
        // Minimal: no complete, retained coarser bucket is made of finer ones.
        for (const tier of TIMED_TIERS.slice(1)) {
          const size = TIER_SIZE_MS[tier];
          for (let start = Math.ceil(plan.from / size) * size; start + size <= plan.to; start += size) {
            if (!isRetained(tier, start, NOW, retention)) continue;
            const finer = plan.buckets.filter((b) => b.tier < tier && b.start >= start && b.start < start + size);
            expect(finer).toEqual([]);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('uses few buckets for long windows', () => {
    const plan = planWindow(NOW - 30 * D, NOW + 1, NOW, DEFAULT_RETENTION);
    // 29 whole days, and on each fringe at most 23 hours, 59 minutes, 59 seconds.
    expect(plan.buckets.length).toBeLessThanOrEqual(29 + 2 * (23 + 59 + 59));
    expect(plan.buckets.filter((b) => b.tier === Tier.day).length).toBeGreaterThanOrEqual(28);
  });

  it('is exact to the second while the 1 s tier holds the start, to the minute beyond', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 30, 500);
    const recent = planWindow(now - 90 * M, now + 1, now, DEFAULT_RETENTION);
    expect(recent.from).toBe(Date.UTC(2026, 0, 1, 10, 30, 30));
    expect(recent.to).toBe(Date.UTC(2026, 0, 1, 12, 0, 31));
    const older = planWindow(now - 3 * H, now + 1, now, DEFAULT_RETENTION);
    expect(older.from).toBe(Date.UTC(2026, 0, 1, 9, 0, 0));
    expect(older.buckets.some((b) => b.tier === Tier.second && b.start < Date.UTC(2026, 0, 1, 10))).toBe(false);
  });

  it('an empty or inverted range reads nothing', () => {
    expect(planWindow(NOW, NOW, NOW, DEFAULT_RETENTION).buckets).toEqual([]);
    expect(planWindow(NOW, NOW - 1, NOW, DEFAULT_RETENTION).buckets).toEqual([]);
  });

  it('a range wholly past the day tier retention reads nothing; the lifetime plan reads one bucket', () => {
    expect(planWindow(NOW - 10 * 365 * D, NOW - 9 * 365 * D, NOW, DEFAULT_RETENTION).buckets).toEqual([]);
    expect(LIFETIME_PLAN.buckets).toEqual([{ tier: Tier.lifetime, start: 0 }]);
  });
});

describe('retention', () => {
  it('refuses a coarser tier that keeps less than a finer one, or less than one bucket', () => {
    expect(retentionProblem(DEFAULT_RETENTION)).toBeUndefined();
    expect(retentionProblem({ ...DEFAULT_RETENTION, [Tier.minute]: H })).toMatch(/at least as long/);
    expect(retentionProblem({ ...DEFAULT_RETENTION, [Tier.day]: H })).toMatch(/at least one bucket/);
    expect(retentionProblem({ ...DEFAULT_RETENTION, [Tier.second]: 90_500 })).toMatch(/whole seconds/);
  });

  it('horizons are aligned to the next coarser tier and never newer for coarser tiers', () => {
    fc.assert(
      fc.property(retentionArb, fc.integer({ min: 0, max: 10 * 365 * D }), (retention, offset) => {
        const now = NOW + offset;
        let previous = Infinity;
        for (const tier of TIMED_TIERS) {
          const h = horizon(tier, now, retention);
          const align = TIER_SIZE_MS[TIMED_TIERS[TIMED_TIERS.indexOf(tier) + 1] ?? tier];
          expect(h % align).toBe(0);
          expect(h).toBeLessThanOrEqual(previous);
          expect(h).toBeLessThanOrEqual(now - retention[tier]);
          previous = h;
        }
      }),
    );
  });
});
