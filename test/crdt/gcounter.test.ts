import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { equals, increment, leq, merge, value, type GCounter } from '../../crdt/gcounter.ts';

const replica = fc.constantFrom('a', 'b', 'c', 'd');
const counter: fc.Arbitrary<GCounter> = fc
  .array(fc.tuple(replica, fc.integer({ min: 0, max: 1_000 })), { maxLength: 8 })
  .map((ops) => ops.reduce<GCounter>((c, [r, n]) => increment(c, r, n), new Map()));

describe('G-Counter', () => {
  it('merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(counter, counter, counter, (a, b, c) => {
        expect(equals(merge(a, b), merge(b, a))).toBe(true);
        expect(equals(merge(merge(a, b), c), merge(a, merge(b, c)))).toBe(true);
        expect(equals(merge(a, a), a)).toBe(true);
      }),
    );
  });

  it('merge is the least upper bound', () => {
    fc.assert(
      fc.property(counter, counter, (a, b) => {
        const m = merge(a, b);
        expect(leq(a, m) && leq(b, m)).toBe(true);
        expect(value(m)).toBeGreaterThanOrEqual(Math.max(value(a), value(b)));
      }),
    );
  });

  it('the value counts every increment once, whatever the order of delivery', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(replica, fc.integer({ min: 1, max: 50 })), { maxLength: 30 }), (ops) => {
        // Each replica increments its own entry; snapshots of all replicas merged in reverse order.
        const snapshots: GCounter[] = [];
        let state: GCounter = new Map();
        for (const [r, n] of ops) {
          state = increment(state, r, n);
          snapshots.push(state);
        }
        const merged = snapshots.reverse().reduce(merge, new Map() as GCounter);
        expect(value(merged)).toBe(ops.reduce((sum, [, n]) => sum + n, 0));
      }),
    );
  });

  it('refuses negative or fractional increments', () => {
    expect(() => increment(new Map(), 'a', -1)).toThrow(RangeError);
    expect(() => increment(new Map(), 'a', 0.5)).toThrow(RangeError);
  });
});
