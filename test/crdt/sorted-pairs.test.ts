import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dropPairs, lowerBound, pairGet, pairSet, sumRuns, type SortedPairs } from '../../crdt/sorted-pairs.ts';

type Op = { kind: 'set'; index: number; count: number } | { kind: 'drop'; below: number } | { kind: 'sum'; runs: number[]; step: 1 | 4 };

// Indexes from a narrow range (so sets hit held pairs, and runs cover several) and from a wide one, negative too (seconds before 2020).
const indexArb = fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: -1_000_000, max: 1_000_000 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('set' as const), index: indexArb, count: fc.integer({ min: 1, max: 2 ** 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), below: indexArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('sum' as const),
      runs: fc.array(fc.tuple(indexArb, fc.integer({ min: 0, max: 80 })), { maxLength: 4 }).map((rs) => rs.flatMap(([first, len]) => [first, first + len])),
      step: fc.constantFrom(1 as const, 4 as const),
    }),
  },
);

describe('sorted pairs (a key’s buckets as one sorted array)', () => {
  it('behave as a map of index to count through sets, drops and run sums, inserted anywhere', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        let pairs: SortedPairs | undefined;
        const model = new Map<number, number>();
        for (const op of ops) {
          if (op.kind === 'set') {
            pairs = pairSet(pairs, op.index, op.count);
            model.set(op.index, op.count);
          } else if (op.kind === 'drop') {
            const want = [...model.keys()].filter((i) => i < op.below).length;
            for (const i of [...model.keys()]) if (i < op.below) model.delete(i);
            expect(pairs === undefined ? 0 : dropPairs(pairs, (i) => i < op.below)).toBe(want);
          } else {
            let want = 0;
            for (let r = 0; r < op.runs.length; r += 2) {
              const first = op.runs[r] as number;
              for (let i = first; i <= (op.runs[r + 1] as number); i += op.step) want += model.get(i) ?? 0;
            }
            // Runs of a plan never overlap; these may, and each run is summed on its own.
            expect(pairs === undefined ? 0 : sumRuns(pairs, op.runs, op.step)).toBe(want);
          }
          const sorted = [...model.entries()].sort((a, b) => a[0] - b[0]).flat();
          expect(pairs ?? []).toEqual(sorted);
          for (const i of model.keys()) expect(pairGet(pairs, i)).toBe(model.get(i));
          expect(pairGet(pairs, 1_000_001)).toBe(0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('find the first pair at or past an index, past the newest, and in an empty array', () => {
    const pairs = [2, 20, 5, 50, 9, 90];
    expect([1, 2, 3, 5, 9, 10].map((i) => lowerBound(pairs, i))).toEqual([0, 0, 2, 2, 4, 6]);
    expect(lowerBound([], 3)).toBe(0);
  });

  it('with step 4 count only the run’s own tier (its low two bits), though other tiers’ indexes lie between', () => {
    // Indexes ×4 + tier: minute 1, hour 2. A run of minutes 10..12 (41, 45, 49) with an hour index 46 inside it.
    const pairs = [41, 1, 45, 2, 46, 1_000, 49, 4];
    expect(sumRuns(pairs, [41, 49], 4)).toBe(7);
    expect(sumRuns(pairs, [46, 46], 4)).toBe(1_000);
  });
});
