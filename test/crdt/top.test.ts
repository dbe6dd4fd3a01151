// GET /top's ranking (crdt/top-index.ts, crdt/top-rank.ts, node/top-ranking.ts)
// against a brute-force ranking of every key's exact count: on one state
// and on states joined from several origins (what gossip does), over random
// skewed hits, windows, prefixes, k and ties; and, past --top-exact-keys,
// the inexact answer within its error bound.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BucketTop } from '../../crdt/bucket-top.ts';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { before, rankCover, rankHeaps, rankUnion, type TopEntry } from '../../crdt/top-rank.ts';
import { LIFETIME_PLAN, planWindow, type WindowPlan } from '../../crdt/window-plan.ts';
import { MAX_WAITING_SCANS, ScansBusyError, TopRanking } from '../../node/top-ranking.ts';

const NOW = Date.UTC(2026, 11, 2, 12, 30, 30, 500);
const ORIGINS = ['a#1', 'b#1', 'c#1'];

interface Hit {
  readonly origin: number;
  readonly key: number;
  readonly ago: number;
  readonly n: number;
}

// Skewed: a few keys take most hits (a square of a uniform pick), in a few seconds so buckets fill past their heaps.
const hitArb: fc.Arbitrary<Hit> = fc.record({
  origin: fc.integer({ min: 0, max: 2 }),
  key: fc.double({ min: 0, max: 1, noNaN: true }).map((u) => Math.floor(u * u * 400)),
  ago: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: 0, max: 3 * 3_600_000 })),
  n: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 50 })),
});

const keyName = (i: number): string => `${['p/', 'q/', ''][i % 3]}k${i % 7 === 0 ? 7 : i}`; // i % 7 === 0 share a name: more hits, ties

const planArb: fc.Arbitrary<WindowPlan> = fc.oneof(
  fc.constant(LIFETIME_PLAN),
  fc.integer({ min: 1_000, max: 4 * 3_600_000 }).map((w) => planWindow(NOW - w, NOW + 1, NOW, DEFAULT_RETENTION)),
  fc.tuple(fc.integer({ min: 0, max: 3 * 3_600_000 }), fc.integer({ min: 0, max: 3_600_000 })).map(([back, width]) => planWindow(NOW - back, NOW - back + width, NOW, DEFAULT_RETENTION)),
);

/** Every key's exact count, ranked: the answer to match. */
function bruteForce(state: ReplicaState, plan: WindowPlan, k: number, prefix: string): TopEntry[] {
  const all = [...state.keys()].filter((key) => key.startsWith(prefix)).map((key) => ({ key, count: state.sum(key, plan) }));
  return all.filter((e) => e.count > 0).sort((a, b) => (before(a, b) ? -1 : 1)).slice(0, k);
}

function hitInto(state: ReplicaState, seqs: number[], hit: Hit): void {
  const t = NOW - hit.ago;
  seqs[hit.origin] = (seqs[hit.origin] ?? 0) + 1;
  state.addHit(ORIGINS[hit.origin] as string, keyName(hit.key), t - (t % 1000), hit.n, seqs[hit.origin] as number);
}

describe('the ranking index', () => {
  it('a bucket heap holds the highest counts, and no key outside it has more than its floor', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 5 })), { maxLength: 300 }), (capacity, raises) => {
        const top = new BucketTop(capacity);
        const counts = new Map<string, number>();
        for (const [k, n] of raises) {
          const key = `k${k}`;
          counts.set(key, (counts.get(key) ?? 0) + n);
          top.raise(key, counts.get(key) as number);
        }
        const held = new Map(top.entries());
        expect(held.size).toBe(Math.min(capacity, counts.size));
        for (const [key, count] of held) expect(count).toBe(counts.get(key));
        for (const [key, count] of counts) if (!held.has(key)) expect(count).toBeLessThanOrEqual(top.floor());
        const sorted = [...counts.values()].sort((a, b) => b - a);
        expect(top.floor()).toBe(counts.size < capacity ? 0 : sorted[capacity - 1]);
        top.sort();
        for (let i = 0; i < top.size; i++) expect(top.countAt(i)).toBe(sorted[i]);
      }),
    );
  });

  it('ranks exactly as brute force does, on one state and on states joined from several origins', async () => {
    const proofs = { byIndex: 0, byCover: 0, unproven: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(hitArb, { minLength: 1, maxLength: 3_000, size: 'max' }), planArb, fc.integer({ min: 1, max: 60 }), fc.constantFrom('', 'p/', 'q/', 'k7', 'zz'), async (hits, plan, k, prefix) => {
        // One node that took every hit, and three that each took their own and then joined the others' slots.
        const one = new ReplicaState();
        const seqs: number[] = [];
        for (const hit of hits) hitInto(one, seqs, hit);
        const parts = ORIGINS.map(() => new ReplicaState());
        const partSeqs: number[] = [];
        for (const hit of hits) hitInto(parts[hit.origin] as ReplicaState, partSeqs, hit);
        const joined = ORIGINS.map((_, i) => {
          const s = new ReplicaState();
          for (const j of [i, ...ORIGINS.keys()]) for (const slot of (parts[j] as ReplicaState).slots()) s.join(slot);
          return s;
        });
        const expected = bruteForce(one, plan, k, prefix);
        for (const state of [one, ...joined]) {
          const answer = await new TopRanking(state, 1_000_000).rank(plan, k, prefix);
          expect(answer.exact).toBe(true);
          expect(answer.top).toEqual(expected);
          const index = state.top;
          if (index === undefined) throw new Error('no index');
          // Both ways of ranking from the heaps: sorted access (threshold) and the union of every entry.
          const countOf = (key: string): number => state.sum(key, plan);
          for (const fromIndex of [rankHeaps(index.heaps(plan.buckets), k, prefix, countOf), rankUnion(index.heaps(plan.buckets), k, prefix, countOf)]) {
            if (fromIndex === undefined) throw new Error('no limit was set');
            if (fromIndex.exact) expect(fromIndex.top).toEqual(expected);
            proofs[fromIndex.exact ? 'byIndex' : 'unproven']++;
          }
          // And from the heaps of the coarser buckets around the window: an answer only when proven.
          const cover = index.cover(plan.from, plan.to);
          const covered = cover === undefined ? undefined : rankCover(cover, k, prefix, countOf, Number.POSITIVE_INFINITY);
          if (covered !== undefined) {
            expect(covered).toEqual({ top: expected, exact: true, maxError: 0 });
            proofs.byCover++;
          }
        }
      }),
      { numRuns: 60 },
    );
    expect(proofs.byIndex, 'the index proved some rankings alone').toBeGreaterThan(0);
    expect(proofs.byCover, 'the cover proved some').toBeGreaterThan(0);
  });

  it('past --top-exact-keys an unproven answer lists exact counts, and leaves out no key above the last by more than maxError', async () => {
    let inexact = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(hitArb, { minLength: 1, maxLength: 3_000, size: 'max' }), planArb, fc.integer({ min: 1, max: 200 }), async (hits, plan, k) => {
        const state = new ReplicaState();
        const seqs: number[] = [];
        // Counts alike, keys many and spread evenly over few seconds: the hardest case for a proof.
        for (const hit of hits) hitInto(state, seqs, { ...hit, n: 1, ago: hit.ago % 3_000, key: (hit.key * 7919 + hit.ago) % 1_000 });
        const answer = await new TopRanking(state, 0).rank(plan, k, '');
        const all = bruteForce(state, plan, 1_000_000, '');
        // Within --top-exact-keys the same ranking scans every key instead: exact.
        expect(await new TopRanking(state, 1_000_000).rank(plan, k, '')).toEqual({ top: all.slice(0, k), exact: true, maxError: 0 });
        if (answer.exact) {
          expect(answer.top).toEqual(all.slice(0, k));
          return;
        }
        inexact++;
        const listed = new Set(answer.top.map((e) => e.key));
        for (const e of answer.top) expect(e.count).toBe(state.sum(e.key, plan));
        for (let i = 1; i < answer.top.length; i++) expect(before(answer.top[i - 1] as TopEntry, answer.top[i] as TopEntry)).toBe(true);
        const last = answer.top.length < k ? 0 : (answer.top[k - 1] as TopEntry).count;
        for (const e of all) if (!listed.has(e.key)) expect(e.count).toBeLessThanOrEqual(last + answer.maxError);
      }),
      { numRuns: 60 },
    );
    expect(inexact, 'some answers went unproven').toBeGreaterThan(0);
  });

  it('does not stop on a tie with the threshold: a key not read yet may tie the k-th and come first by name', async () => {
    const state = new ReplicaState();
    const [s1, s2] = [NOW - 2_000 - (NOW % 1000), NOW - 1_000 - (NOW % 1000)];
    state.addHit('a#1', 'z', s1, 4, 1);
    state.addHit('a#1', 'a', s1, 2, 2);
    state.addHit('a#1', 'a', s2, 2, 3);
    const plan = planWindow(s1, s2 + 1000, NOW, DEFAULT_RETENTION);
    expect(await new TopRanking(state, 0).rank(plan, 1, '')).toEqual({ top: [{ key: 'a', count: 4 }], exact: true, maxError: 0 });
  });

  it('from a cover: a key a full heap leaves out may have up to its floor there, and a key tied with the k-th is still counted', () => {
    const heap = (capacity: number, entries: Record<string, number>): BucketTop => {
      const top = new BucketTop(capacity);
      for (const [key, count] of Object.entries(entries)) top.raise(key, count);
      return top;
    };
    const countsOf = (counts: Record<string, number>) => (key: string): number => counts[key] ?? 0;
    // x: 5 + 1 in the cover, 6 in the window. y: left out of the full first heap (so up to its floor, 5, there), 3 in the second, 5 in the window.
    const cover = [heap(1, { x: 5 }), heap(10, { y: 3, x: 1 })];
    expect(rankCover(cover, 1, '', countsOf({ x: 6, y: 5 }), 10)).toEqual({ top: [{ key: 'x', count: 6 }], exact: true, maxError: 0 });
    // z has 10 in the cover and 4 in the window; a ties it at 4 and comes first by name.
    expect(rankCover([heap(10, { z: 10, a: 4 })], 1, '', countsOf({ z: 4, a: 4 }), 10)).toEqual({ top: [{ key: 'a', count: 4 }], exact: true, maxError: 0 });
    // Unproven (a key left out of the full heap may have 5, more than the 4 listed): no answer, the plan's heaps are tried next.
    expect(rankCover([heap(1, { b: 5 })], 1, '', countsOf({ b: 4 }), 10)).toBeUndefined();
    // Past the keys it may count: no answer either.
    expect(rankCover([heap(10, { a: 9, b: 8, c: 7 })], 1, '', countsOf({ a: 1, b: 1, c: 1 }), 1)).toBeUndefined();
  });

  it('ranks by counts less the duplicates tokens prove, though the heaps hold totals before them', async () => {
    const state = new ReplicaState();
    const t = NOW - 5_000 - (NOW % 1000);
    // The same token taken by two origins: key a counts 5, not the 10 its buckets hold.
    state.addHit('a#1', 'a', t, 5, 1);
    state.observe('a', 'tok', { origin: 'a#1', at: t, n: 5 });
    state.addHit('b#1', 'a', t + 1000, 5, 1);
    state.observe('a', 'tok', { origin: 'b#1', at: t + 1000, n: 5 });
    state.addHit('a#1', 'b', t, 7, 2);
    for (const plan of [LIFETIME_PLAN, planWindow(NOW - 60_000, NOW + 1, NOW, DEFAULT_RETENTION)]) {
      expect(state.sum('a', plan)).toBe(5);
      expect(await new TopRanking(state, 0).rank(plan, 2, '')).toEqual({ top: [{ key: 'b', count: 7 }, { key: 'a', count: 5 }], exact: true, maxError: 0 });
    }
  });

  it('runs one scan of every key at a time and refuses one more than MAX_WAITING_SCANS with ScansBusyError', async () => {
    const state = new ReplicaState(undefined, { topIndex: false });
    for (let i = 0; i < 50; i++) state.addHit('a#1', `k${i}`, NOW - (NOW % 1000), 1 + (i % 4), i + 1);
    const ranking = new TopRanking(state, 1_000_000);
    const asked = Array.from({ length: MAX_WAITING_SCANS + 1 }, () => ranking.rank(LIFETIME_PLAN, 3, ''));
    const settled = await Promise.allSettled(asked);
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(MAX_WAITING_SCANS);
    const refused = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused?.reason).toBeInstanceOf(ScansBusyError);
    // Once they are done, scans are taken again.
    expect((await ranking.rank(LIFETIME_PLAN, 1, '')).top).toEqual([{ key: 'k11', count: 4 }]);
  });

  it('drops a bucket\'s heap when retention drops the bucket, and can run without an index', async () => {
    const state = new ReplicaState();
    for (let i = 0; i < 100; i++) state.addHit('a#1', `k${i}`, NOW - 1000 * (i % 5), 1 + (i % 9), i + 1);
    const before = state.top?.entries ?? 0;
    state.dropExpired(NOW + 3 * 3_600_000, DEFAULT_RETENTION);
    expect(state.top?.entries).toBeLessThan(before);
    const bare = new ReplicaState(undefined, { topIndex: false });
    for (let i = 0; i < 100; i++) bare.addHit('a#1', `k${i}`, NOW - 1000 * (i % 5), 1 + (i % 9), i + 1);
    expect(bare.top).toBeUndefined();
    const plan = planWindow(NOW - 60_000, NOW + 1, NOW, DEFAULT_RETENTION);
    expect(await new TopRanking(bare, 0).rank(plan, 5, '')).toEqual({ top: bruteForce(bare, plan, 5, ''), exact: true, maxError: 0 });
  });
});
