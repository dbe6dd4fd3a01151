import { describe, expect, it } from 'vitest';
import { ReplicaState, type SlotValue } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { TIER_SIZE_MS, Tier } from '../../crdt/tiers.ts';
import { planWindow, LIFETIME_PLAN } from '../../crdt/window-plan.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 11, 4, 13, 17, 5);

/** A seeded generator (mulberry32): the same cases every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A store as the state sees it: every slot a "checkpoint" wrote, read back by the cold reader. */
class FakeStore {
  readonly slots = new Map<string, number>();
  reads = 0;
  readonly read = (origin: string, key: string, tier: Tier, start: number): number => {
    this.reads++;
    return this.slots.get(`${origin}|${key}|${tier}|${start}`) ?? 0;
  };
  /** Write what `state` holds (what a checkpoint does for every dirty key). */
  checkpoint(state: ReplicaState): void {
    for (const s of state.slots()) {
      const id = `${s.origin}|${s.key}|${s.tier}|${s.start}`;
      this.slots.set(id, Math.max(this.slots.get(id) ?? 0, s.count));
    }
  }
}

function windows(rand: () => number): { from: number; to: number }[] {
  const out = [
    { from: NOW - 60_000, to: NOW + 1 },
    { from: NOW - HOUR, to: NOW + 1 },
    { from: NOW - DAY, to: NOW + 1 },
    { from: NOW - 30 * DAY, to: NOW + 1 },
  ];
  for (let i = 0; i < 40; i++) {
    const from = NOW - Math.floor(rand() * 40 * DAY);
    out.push({ from, to: from + 1 + Math.floor(rand() * (NOW - from)) });
  }
  return out;
}

describe('buckets past the hot horizon (ColdLine, ReplicaState.evictCold)', () => {
  it('every window sums the same after eviction, over keys of one and of several origins, with merges into evicted buckets and evictions again', () => {
    const rand = random(7);
    const full = new ReplicaState(); // never evicts: the reference
    const cold = new ReplicaState();
    // Past the line but never written, so never evicted: reads must take the cold buckets from what it holds.
    const unwritten = new ReplicaState();
    unwritten.attachColdReader(() => {
      throw new Error('nothing was evicted: there is nothing to read');
    });
    const store = new FakeStore();
    cold.attachColdReader(store.read);
    const origins = ['n1#a', 'n2#b', 'n3#c'];
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    const seqs = new Map(origins.map((o) => [o, 0]));
    const hit = (state: ReplicaState, origin: string, key: string, t: number, n: number, seq: number): void => void state.addHit(origin, key, t, n, seq);
    for (let i = 0; i < 3_000; i++) {
      const origin = origins[Math.floor(rand() * (i % 3 === 0 ? 3 : 1))] as string;
      const key = keys[Math.floor(rand() * keys.length)] as string;
      const t = NOW - Math.floor(rand() * 35 * DAY);
      const seq = (seqs.get(origin) ?? 0) + 1;
      seqs.set(origin, seq);
      const n = 1 + Math.floor(rand() * 5);
      hit(full, origin, key, t, n, seq);
      hit(cold, origin, key, t, n, seq);
      hit(unwritten, origin, key, t, n, seq);
    }
    const compare = (): void => {
      for (const { from, to } of windows(rand)) {
        const plan = planWindow(from, to, NOW, DEFAULT_RETENTION);
        for (const key of keys) {
          expect(cold.sum(key, plan), `${key} over [${from}, ${to})`).toBe(full.sum(key, plan));
          expect(unwritten.sum(key, plan), `${key} over [${from}, ${to}), nothing evicted`).toBe(full.sum(key, plan));
        }
      }
      for (const key of keys) expect(cold.sum(key, LIFETIME_PLAN)).toBe(full.sum(key, LIFETIME_PLAN));
    };
    store.checkpoint(cold);
    const before = [...cold.slots()].length;
    let evicted = 0;
    for (const sofar of cold.evictCold(NOW - 2 * HOUR, () => false)) evicted = sofar;
    void [...unwritten.evictCold(NOW - 2 * HOUR, () => true)];
    expect(unwritten.cold.end).toBe(NOW - 2 * HOUR);
    expect(evicted).toBeGreaterThan(before / 2);
    expect([...cold.slots()].length).toBe(before - evicted);
    for (const s of cold.slots()) if (s.tier !== Tier.second && s.tier !== Tier.lifetime) expect(s.start + TIER_SIZE_MS[s.tier]).toBeGreaterThan(NOW - 2 * HOUR);
    compare();
    expect(store.reads).toBeGreaterThan(0);

    // Gossip raises evicted buckets (and offers lower counts, which change nothing): the held count starts from the stored one.
    const fullSlots = [...full.slots()].filter((s) => s.tier !== Tier.lifetime);
    for (let i = 0; i < 500; i++) {
      const s = fullSlots[Math.floor(rand() * fullSlots.length)] as SlotValue;
      const count = s.count + Math.floor(rand() * 7) - 3;
      if (count <= 0) continue;
      expect(cold.merge({ ...s, count }, 10_000 + i) !== 0, 'merge').toBe(full.merge({ ...s, count }, 10_000 + i) !== 0);
      unwritten.merge({ ...s, count }, 10_000 + i);
    }
    compare();
    // Merged, not yet written: eviction that is told so keeps them; once written they go.
    const held = [...cold.slots()].length;
    void [...cold.evictCold(NOW - 2 * HOUR, () => true)];
    expect([...cold.slots()].length).toBe(held);
    compare();
    store.checkpoint(cold);
    void [...cold.evictCold(NOW - HOUR, () => false)];
    expect([...cold.slots()].length).toBeLessThan(held);
    compare();
  });

  it('the line never moves back, and a plan that starts after it reads nothing from the store', () => {
    const state = new ReplicaState();
    const store = new FakeStore();
    state.attachColdReader(store.read);
    state.addHit('n1#a', 'k', NOW - 3 * DAY, 2, 1);
    store.checkpoint(state);
    void [...state.evictCold(NOW - HOUR, () => false)];
    void [...state.evictCold(NOW - 10 * DAY, () => false)];
    expect(state.cold.end).toBe(NOW - HOUR);
    const reads = store.reads;
    expect(state.sum('k', planWindow(NOW - HOUR + 60_000, NOW + 1, NOW, DEFAULT_RETENTION))).toBe(0);
    expect(store.reads).toBe(reads);
    expect(state.sum('k', planWindow(NOW - 30 * DAY, NOW + 1, NOW, DEFAULT_RETENTION))).toBe(2);
    expect(store.reads).toBeGreaterThan(reads);
    // Hits are never cold, but a replayed old batch is: it adds to the stored count.
    state.addHit('n1#a', 'k', NOW - 3 * DAY, 1, 2);
    expect(state.get('n1#a', 'k', Tier.day, NOW - 3 * DAY - ((NOW - 3 * DAY) % DAY))).toBe(3);
  });

  it('a plan made before the remembered sums were dropped at their limit does not serve a sum that changed since', () => {
    const state = new ReplicaState();
    const store = new FakeStore();
    state.attachColdReader(store.read);
    const day = NOW - 3 * DAY - ((NOW - 3 * DAY) % DAY);
    state.mergeCount('n2#b', 'k', Tier.day, day, 5, 1);
    state.mergeCount('n2#b', 'k', Tier.lifetime, 0, 5, 1);
    store.checkpoint(state);
    void [...state.evictCold(NOW - HOUR, () => false)];
    const plan = planWindow(NOW - 30 * DAY, NOW + 1, NOW, DEFAULT_RETENTION);
    expect(state.sum('k', plan)).toBe(5);
    // 64 more windows with other cold buckets: the kept parts are dropped, and the plan above still holds its old one.
    for (let i = 1; i <= 64; i++) state.sum('k', planWindow(NOW - 30 * DAY - i * DAY, NOW + 1, NOW, { ...DEFAULT_RETENTION }));
    state.mergeCount('n2#b', 'k', Tier.day, day, 9, 2);
    expect(state.sum('k', plan)).toBe(9);
  });
});
