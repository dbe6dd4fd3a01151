import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { Tier } from '../../crdt/tiers.ts';
import { planWindow } from '../../crdt/window-plan.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { RetentionGc } from '../../node/retention-gc.ts';
import { ManualClock } from '../../node/clock.ts';
import { Replica } from '../../node/replica.ts';
import type { Slot } from '../../crdt/slot.ts';

const logger = pino({ level: 'silent' });

describe('retention', () => {
  it('deletes every expired bucket from the store, in writes of at most 1,000, and keeps the rest', async () => {
    const now = Date.UTC(2026, 10, 28, 12);
    const old = now - 3 * 3_600_000; // past the 1 s tier's 2 h
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    const slots: Slot[] = [];
    for (let i = 0; i < 2_500; i++) slots.push({ origin: 'n1#aa', key: `k${i}`, tier: Tier.second, start: old - (old % 1000), count: 1, seq: 1 });
    slots.push({ origin: 'n1#aa', key: 'k0', tier: Tier.second, start: now - (now % 1000), count: 1, seq: 1 });
    for (const s of slots) state.join(s, 1);
    await store.commit({ slots, meta: new Map() });
    const writes: number[] = [];
    const original = store.deleteBefore.bind(store);
    store.deleteBefore = async (...args) => {
      const n = await original(...args);
      writes.push(n);
      return n;
    };
    const gc = new RetentionGc({ state, store, retention: DEFAULT_RETENTION, clock: { now: () => now }, intervalMs: 1e9, logger, metrics: undefined });
    expect(await gc.runOnce()).toBe(2_500);
    const left: Slot[] = [];
    for await (const chunk of store.scanSlots()) left.push(...chunk);
    expect(left).toEqual([slots.at(-1)]);
    expect(Math.max(...writes)).toBeLessThanOrEqual(1_000);
    expect(writes.filter((n) => n > 0)).toEqual([1_000, 1_000, 500]);
  });

  it('a replica opens without waiting for the store to delete what expired while it was down, and close cuts that deletion short', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 28, 12));
    const store = new MemoryStore();
    await store.open();
    const old = clock.now() - 3 * 3_600_000;
    const expired: Slot[] = [];
    for (let i = 0; i < 5_000; i++) expired.push({ origin: 'n1#aa', key: `k${i}`, tier: Tier.second, start: old - (old % 1000), count: 1, seq: 1 });
    await store.commit({ slots: expired, meta: new Map() });
    // Each delete waits until the test lets it go: a slow disk.
    const deletes: (() => void)[] = [];
    const original = store.deleteBefore.bind(store);
    store.deleteBefore = async (...args) => {
      await new Promise<void>((resolve) => deletes.push(resolve));
      return original(...args);
    };
    const replica = await Replica.open({ store, id: 'n1', retention: DEFAULT_RETENTION, clock, logger, gcIntervalMs: 1e9 });
    // Open, with the deletion waiting on its first write.
    await vi.waitFor(() => expect(deletes.length).toBeGreaterThan(0));
    expect(replica.isAccepting).toBe(true);
    deletes.shift()?.(); // one write of 1,000 goes through
    await vi.waitFor(() => expect(deletes.length).toBeGreaterThan(0));
    let closed = false;
    const closing = replica.close().then(() => (closed = true));
    let afterClose = 0;
    while (!closed) {
      const next = deletes.shift();
      if (next !== undefined) {
        next();
        afterClose++;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await closing;
    // The write under way when close began, and at most one started before the pass heard of it.
    expect(afterClose).toBeLessThanOrEqual(2);
    await store.open();
    const left: Slot[] = [];
    for await (const chunk of store.scanSlots()) left.push(...chunk);
    const stillExpired = left.filter((slot) => slot.tier === Tier.second && slot.start < clock.now() - 2 * 3_600_000).length;
    expect(stillExpired).toBe(5_000 - 1_000 * (1 + afterClose)); // a later pass deletes the rest
  });

  it('expires a big state in slices, with the event loop running between them', async () => {
    const now = Date.UTC(2026, 10, 28, 12);
    const old = now - 3 * 3_600_000;
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    // 200,000 buckets, half expired: a pass looks at all of them.
    for (let i = 0; i < 100_000; i++) {
      state.join({ origin: 'n1#aa', key: `k${i}`, tier: Tier.second, start: old - (old % 1000), count: 1 }, 1);
      state.join({ origin: 'n1#aa', key: `k${i}`, tier: Tier.hour, start: now - (now % 3_600_000), count: 1 }, 1);
    }
    const gc = new RetentionGc({ state, store, retention: DEFAULT_RETENTION, clock: { now: () => now }, intervalMs: 1e9, logger, metrics: undefined });
    let turns = 0;
    let running = true;
    const tick = (): void => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const dropped = await gc.runOnce();
    running = false;
    expect(dropped).toBe(100_000);
    expect(state.keyCount).toBe(100_000);
    // One turn per slice at least (20,000 buckets each); a pass done in one go lets none run.
    expect(turns).toBeGreaterThanOrEqual(10);
  });

  it('keeps every live count exact while hits and a second origin land between its slices', async () => {
    const now = Date.UTC(2026, 10, 28, 12);
    const old = now - 3 * 3_600_000;
    const oldSecond = old - (old % 1000);
    const hour = now - (now % 3_600_000);
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    const keys = 60_000;
    for (let i = 0; i < keys; i++) {
      state.join({ origin: 'n1#aa', key: `k${i}`, tier: Tier.second, start: oldSecond, count: 1 }, 1);
      state.join({ origin: 'n1#aa', key: `k${i}`, tier: Tier.hour, start: hour, count: 1 }, 1);
    }
    const gc = new RetentionGc({ state, store, retention: DEFAULT_RETENTION, clock: { now: () => now }, intervalMs: 1e9, logger, metrics: undefined });
    // Between slices: keys ahead of the pass and behind it get live hits of their own origin and of a second one (a key with totals).
    const expected = new Map<string, number>();
    let turn = 0;
    let running = true;
    const meddle = (): void => {
      const key = `k${(turn * 7_919) % keys}`;
      const count = state.get('n1#aa', key, Tier.hour, hour) + 1;
      state.join({ origin: 'n1#aa', key, tier: Tier.hour, start: hour, count }, 2);
      state.join({ origin: 'n2#bb', key, tier: Tier.hour, start: hour, count: 5 }, 1);
      // A peer resends an expired second: dropped by this pass or the next, never counted by a plan.
      state.join({ origin: 'n2#bb', key, tier: Tier.second, start: oldSecond, count: 9 }, 1);
      expected.set(key, count + 5);
      turn++;
      if (running) setImmediate(meddle);
    };
    setImmediate(meddle);
    await gc.runOnce();
    running = false;
    expect(turn, 'changes landed while the pass ran').toBeGreaterThan(5);
    const plan = planWindow(hour, hour + 3_600_000, now, DEFAULT_RETENTION);
    for (let i = 0; i < keys; i++) expect(state.sum(`k${i}`, plan)).toBe(expected.get(`k${i}`) ?? 1);
    // The next pass leaves no expired bucket behind, the resent ones included.
    await gc.runOnce();
    for (let i = 0; i < keys; i += 997) for (const origin of ['n1#aa', 'n2#bb']) expect(state.get(origin, `k${i}`, Tier.second, oldSecond)).toBe(0);
  });
});
