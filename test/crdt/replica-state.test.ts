import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplicaState, hitBuckets, type SlotValue } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { Tier } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN, planWindow } from '../../crdt/window-plan.ts';

const slotArb: fc.Arbitrary<SlotValue> = fc.record({
  origin: fc.constantFrom('n1#a', 'n2#b', 'n3#c'),
  key: fc.constantFrom('home', 'api', '__proto__'),
  tier: fc.constantFrom(Tier.second, Tier.minute, Tier.lifetime),
  start: fc.constantFrom(0, 60_000, 120_000),
  count: fc.integer({ min: 0, max: 100 }),
}).map((s) => ({ ...s, start: s.tier === Tier.lifetime ? 0 : s.start }));

function snapshot(state: ReplicaState): string[] {
  return [...state.slots()].filter((s) => s.count > 0).map((s) => JSON.stringify([s.origin, s.key, s.tier, s.start, s.count])).sort();
}

describe('replica state', () => {
  it('joining the same slots in any order, with duplicates, gives the same state', () => {
    fc.assert(
      fc.property(fc.array(slotArb, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), (slots, picks) => {
        const inOrder = new ReplicaState();
        for (const s of slots) inOrder.join(s);
        const shuffled = new ReplicaState();
        const extra = picks.map((p) => slots[p % Math.max(1, slots.length)]).filter((s) => s !== undefined);
        for (const s of [...slots].reverse().concat(extra)) shuffled.join(s);
        expect(snapshot(shuffled)).toEqual(snapshot(inOrder));
      }),
    );
  });

  it('keeps the max per slot and sums over origins', () => {
    const state = new ReplicaState();
    expect(state.join({ origin: 'a', key: 'k', tier: Tier.lifetime, start: 0, count: 5 })).toBe(true);
    expect(state.join({ origin: 'a', key: 'k', tier: Tier.lifetime, start: 0, count: 3 })).toBe(false);
    state.join({ origin: 'b', key: 'k', tier: Tier.lifetime, start: 0, count: 4 });
    expect(state.sum('k', LIFETIME_PLAN)).toBe(9);
    expect(state.sum('other', LIFETIME_PLAN)).toBe(0);
    expect([...state.origins()].sort()).toEqual(['a', 'b']);
  });

  it('drops expired buckets but never the lifetime total, and forgets emptied keys', () => {
    const now = Date.UTC(2026, 5, 1);
    const state = new ReplicaState();
    const old = now - 3 * 3_600_000;
    for (const ref of hitBuckets(old)) state.join({ origin: 'a', key: 'k', ...ref, count: 1 });
    for (const ref of hitBuckets(old)) state.join({ origin: 'a', key: 'gone', ...ref, count: 1 });
    const dropped = state.dropExpired(now, DEFAULT_RETENTION);
    expect(dropped).toBe(2); // the 1 s bucket of each key: 3 h old, the 1 s tier keeps 2 h
    expect(state.get('a', 'k', Tier.second, Math.floor(old / 1000) * 1000)).toBe(0);
    expect(state.sum('k', LIFETIME_PLAN)).toBe(1);
    state.dropExpired(now + 20 * 365 * 86_400_000, DEFAULT_RETENTION);
    expect(state.sum('k', LIFETIME_PLAN)).toBe(1);
  });
});

describe('replica state indexing', () => {
  it('keeps every tier apart and round-trips slots across epochs, including before 2020 and far ahead', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            tier: fc.constantFrom(Tier.second, Tier.minute, Tier.hour, Tier.day, Tier.lifetime),
            t: fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2080, 0, 1) }),
            count: fc.integer({ min: 1, max: 1_000_000 }),
          }),
          { maxLength: 30 },
        ),
        (slots) => {
          const state = new ReplicaState();
          const expected = new Map<string, number>();
          for (const { tier, t, count } of slots) {
            const start = tier === Tier.lifetime ? 0 : Math.floor(t / [1e3, 6e4, 3.6e6, 8.64e7][tier]!) * [1e3, 6e4, 3.6e6, 8.64e7][tier]!;
            state.join({ origin: 'o', key: 'k', tier, start, count });
            const id = `${tier}:${start}`;
            expected.set(id, Math.max(expected.get(id) ?? 0, count));
          }
          const got = new Map([...state.slots()].map((s) => [`${s.tier}:${s.start}`, s.count]));
          expect(got).toEqual(expected);
          for (const [id, count] of expected) {
            const [tier, start] = id.split(':').map(Number);
            expect(state.get('o', 'k', tier as Tier, start as number)).toBe(count);
          }
        },
      ),
    );
  });

  it('changedSince gives the keys changed after a seq, only buckets ending after the cutoff', () => {
    const state = new ReplicaState();
    const t0 = Date.UTC(2026, 5, 1, 10);
    state.addHit('o', 'old', t0, 1, 1);
    state.addHit('o', 'new', t0, 1, 1);
    state.addHit('o', 'new', t0 + 3_600_000, 2, 5);
    const changed = [...state.changedSince('o', 3, t0 + 3_600_000)];
    expect(changed.every((s) => s.key === 'new')).toBe(true);
    // The second bucket at t0 ended long before the cutoff; the new hour's buckets and the day and lifetime remain.
    expect(changed.map((s) => s.tier).sort()).toEqual([Tier.second, Tier.minute, Tier.hour, Tier.day, Tier.lifetime]);
    expect(changed.find((s) => s.tier === Tier.lifetime)?.count).toBe(3);
    expect([...state.changedSince('o', 5, t0)]).toEqual([]);
  });
});

describe('per-key totals over origins', () => {
  type Op =
    | { kind: 'join'; slot: SlotValue; }
    | { kind: 'hit'; origin: string; key: string; t: number; n: number }
    | { kind: 'expire'; at: number };
  const T = Date.UTC(2026, 5, 1);
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: slotArb.map((slot) => ({ kind: 'join' as const, slot: { ...slot, start: slot.tier === Tier.lifetime ? 0 : T + slot.start } })) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('hit' as const),
        origin: fc.constantFrom('n1#a', 'n2#b', 'n3#c'),
        key: fc.constantFrom('home', 'api', '__proto__'),
        t: fc.integer({ min: T, max: T + 4 * 3_600_000 }),
        n: fc.integer({ min: 1, max: 1_000 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), at: fc.integer({ min: T, max: T + 100 * 86_400_000 }) }) },
  );

  it('a window sum read from the totals equals the sum of every origin, through joins, hits and expiry', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 0, max: 5 * 3_600_000 }), (ops, width) => {
        const state = new ReplicaState();
        let seq = 0;
        for (const op of ops) {
          if (op.kind === 'join') state.join(op.slot);
          else if (op.kind === 'hit') state.addHit(op.origin, op.key, op.t, op.n, ++seq);
          else state.dropExpired(op.at, DEFAULT_RETENTION);
        }
        const now = T + 4 * 3_600_000;
        for (const plan of [LIFETIME_PLAN, planWindow(now - width, now + 1, now, DEFAULT_RETENTION), planWindow(T, T + width + 1, now, DEFAULT_RETENTION)]) {
          for (const key of ['home', 'api', '__proto__']) {
            let expected = 0;
            for (const origin of state.origins()) for (const ref of plan.buckets) expected += state.get(origin, key, ref.tier, ref.start);
            expect(state.sum(key, plan)).toBe(expected);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
