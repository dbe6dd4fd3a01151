import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { TIER_SIZE_MS, Tier, bucketStart } from '../../crdt/tiers.ts';
import { ManualClock } from '../../node/clock.ts';
import { LevelStore } from '../../node/level-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { ColdReadError, ColdSlots } from '../../node/cold-slots.ts';
import { FreshReads } from '../../node/fresh-reads.ts';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { planWindow } from '../../crdt/window-plan.ts';
import { Replica, type CountRange } from '../../node/replica.ts';
import type { RunningNode } from '../../node/start-node.ts';
import type { Store } from '../../node/store.ts';
import { peersOf, startInProcess } from './in-process-node.ts';

const logger = pino({ level: 'silent' });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 10, 1, 9, 30, 0, 500);
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function levelStore(dir?: string): Promise<{ store: LevelStore; dir: string }> {
  const at = dir ?? (await mkdtemp(join(tmpdir(), 'hitmesh-cold-')));
  if (dir === undefined) dirs.push(at);
  return { store: new LevelStore(join(at, 'db')), dir: at };
}

/** Minutes kept a week: the five days of history below lose nothing to expiry, only to eviction. */
const RETENTION = { ...DEFAULT_RETENTION, [Tier.minute]: 7 * DAY };

function open(store: Store, clock: ManualClock, metrics?: NodeMetrics): Promise<Replica> {
  // Checkpoints and retention only when the test says: it decides what is written before each eviction.
  return Replica.open({ store, id: 'n1', retention: RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9, ...(metrics ? { metrics } : {}) });
}

const RANGES: readonly CountRange[] = [
  { kind: 'window', ms: HOUR },
  { kind: 'window', ms: DAY },
  { kind: 'window', ms: 7 * DAY },
  { kind: 'window', ms: 30 * DAY },
  { kind: 'range', from: T0 - HOUR, to: T0 + 5 * DAY + 7 * 60_000 },
  { kind: 'all' },
];

/** Every key's count over every range. */
function counts(replica: Replica, keys: readonly string[]): number[] {
  return keys.flatMap((key) => RANGES.map((range) => replica.count(key, replica.plan(range))));
}

/** Buckets of the minute, hour and day tiers held in memory. */
function heldCoarse(replica: Replica): number {
  let n = 0;
  for (const s of replica.state.slots()) if (s.tier !== Tier.second && s.tier !== Tier.lifetime) n++;
  return n;
}

/** Hits spread over five days from T0, then the clock at T0 + 6 days: most of them past the 2 h hot horizon. */
async function history(replica: Replica, clock: ManualClock, keys: readonly string[]): Promise<void> {
  for (let step = 0; step < 120; step++) {
    clock.set(T0 + step * HOUR + (step % 7) * 60_000);
    for (let k = 0; k < keys.length; k++) if ((step + k) % 3 !== 0) await replica.hit(keys[k] as string, 1 + ((step * k) % 4));
  }
  clock.set(T0 + 6 * DAY);
}

describe('the cold path: buckets past the hot horizon in LevelDB, read through a cache', () => {
  it('evicts only what a checkpoint wrote, counts every window the same before and after, and after a restart', async () => {
    const { store, dir } = await levelStore();
    const clock = new ManualClock(T0);
    const metrics = new NodeMetrics({ node: 'n1' });
    const replica = await open(store, clock, metrics);
    const keys = ['a', 'b', 'c', 'd'];
    await history(replica, clock, keys);
    const expected = counts(replica, keys);
    const held = heldCoarse(replica);

    // Nothing written yet (no checkpoint ran): nothing may leave memory.
    await replica.expire();
    expect(heldCoarse(replica)).toBe(held);
    expect(counts(replica, keys)).toEqual(expected);

    await replica.checkpoint();
    await replica.expire();
    const after = heldCoarse(replica);
    expect(after).toBeLessThan(held / 4);
    for (const s of replica.state.slots()) if (s.tier !== Tier.second && s.tier !== Tier.lifetime) expect(s.start + TIER_SIZE_MS[s.tier]).toBeGreaterThan(clock.now() - 2 * HOUR);
    expect(counts(replica, keys)).toEqual(expected);
    expect(await metrics.registry.metrics()).toMatch(/hitmesh_evicted_buckets_total\{node="n1"\} [1-9]/);
    await replica.close();

    // Started again, the cold buckets stay in the store: the first counts read it (overlapping windows share buckets, so the
    // cache serves some), and the same counts again read nothing more (each key's cold sum per window is remembered).
    const reopenedMetrics = new NodeMetrics({ node: 'n1' });
    const reopened = await open((await levelStore(dir)).store, clock, reopenedMetrics);
    expect(heldCoarse(reopened)).toBe(after);
    expect(reopened.coldSlots.stats.misses).toBe(0);
    expect(counts(reopened, keys)).toEqual(expected);
    const first = reopened.coldSlots.stats;
    expect(first.misses).toBeGreaterThan(0);
    expect(first.hits).toBeGreaterThan(0);
    expect(counts(reopened, keys)).toEqual(expected);
    expect(reopened.coldSlots.stats.misses).toBe(first.misses);
    const scraped = await reopenedMetrics.registry.metrics();
    expect(scraped).toMatch(/hitmesh_cold_cache_hit_ratio\{node="n1"\} 0\.[0-9]*[1-9]/);
    expect(scraped).toMatch(/hitmesh_cold_reads_total\{from="store",node="n1"\} [1-9]/);
    await reopened.expire();
    expect(heldCoarse(reopened)).toBe(after);
    expect(counts(reopened, keys)).toEqual(expected);
    await reopened.close();
  });

  it('gossip that raises an evicted bucket starts from the stored count, and the cache never serves the count it had before', async () => {
    const { store } = await levelStore();
    const clock = new ManualClock(T0);
    const replica = await open(store, clock);
    const day = bucketStart(Tier.day, T0);
    const hour = bucketStart(Tier.hour, T0);
    // Another origin's buckets, three days old, as a repair brings them.
    const apply = (count: number, seq: number): void =>
      void replica.view.apply('n2#00ff', { hits: [], slots: [{ key: 'k', tier: Tier.day, start: day, count }, { key: 'k', tier: Tier.hour, start: hour, count }, { key: 'k', tier: Tier.lifetime, start: 0, count }] }, undefined, [seq, T0]);
    apply(5, 1);
    clock.set(T0 + 3 * DAY);
    await replica.checkpoint();
    await replica.expire();
    expect(heldCoarse(replica)).toBe(0);
    const month: CountRange = { kind: 'window', ms: 30 * DAY };
    const hourOf: CountRange = { kind: 'range', from: hour, to: hour + HOUR };
    expect(replica.count('k', replica.plan(month))).toBe(5); // cached now
    expect(replica.count('k', replica.plan(hourOf))).toBe(5);

    // A lower count changes nothing: it is compared with the stored one, not with the 0 memory holds.
    apply(3, 2);
    expect(replica.count('k', replica.plan(month))).toBe(5);
    apply(9, 3);
    expect(heldCoarse(replica)).toBe(2);
    expect(replica.count('k', replica.plan(month))).toBe(9);
    await replica.checkpoint();
    await replica.expire();
    expect(heldCoarse(replica)).toBe(0);
    // The cache held 5 for both buckets: the checkpoint that wrote 9 dropped them.
    expect(replica.count('k', replica.plan(month))).toBe(9);
    expect(replica.count('k', replica.plan(hourOf))).toBe(9);
    expect(store.readSlot('n2#00ff', Tier.day, day, 'k')?.count).toBe(9);
    await replica.close();
  });

  it('a key whose only buckets are evicted (a repair cut off before its lifetime) keeps them through retention and restarts', async () => {
    const { store, dir } = await levelStore();
    const clock = new ManualClock(T0);
    const replica = await open(store, clock);
    const hour = bucketStart(Tier.hour, T0);
    replica.view.apply('n2#00ff', { hits: [], slots: [{ key: 'half', tier: Tier.hour, start: hour, count: 4 }] }, undefined, [1, T0]);
    clock.set(T0 + 3 * DAY);
    await replica.checkpoint();
    const thatHour: CountRange = { kind: 'range', from: hour, to: hour + HOUR };
    await replica.expire();
    await replica.expire();
    expect(heldCoarse(replica)).toBe(0);
    expect(replica.count('half', replica.plan(thatHour))).toBe(4);
    await replica.close();
    const reopened = await open((await levelStore(dir)).store, clock);
    await reopened.expire();
    expect(reopened.count('half', reopened.plan(thatHour))).toBe(4);
    await reopened.close();
  });

  it('retention deletes cold buckets from the store as it did from memory; counts keep to what is retained', async () => {
    const { store } = await levelStore();
    const clock = new ManualClock(T0);
    const replica = await open(store, clock);
    await replica.hit('k', 4);
    clock.set(T0 + 3 * DAY);
    await replica.hit('k', 1);
    await replica.checkpoint();
    await replica.expire();
    const month: CountRange = { kind: 'window', ms: 30 * DAY };
    expect(replica.count('k', replica.plan(month))).toBe(5);
    // Past the hour tier's 90 days: the old hour bucket goes from the store; the day tier still answers.
    clock.set(T0 + 95 * DAY);
    await replica.expire();
    const origin = replica.identity.origin;
    expect(store.readSlot(origin, Tier.hour, bucketStart(Tier.hour, T0), 'k')).toBeUndefined();
    expect(store.readSlot(origin, Tier.day, bucketStart(Tier.day, T0), 'k')?.count).toBe(4);
    expect(replica.count('k', replica.plan({ kind: 'window', ms: 100 * DAY }))).toBe(5);
    expect(replica.count('k', replica.plan(month))).toBe(0);
    expect(replica.count('k', replica.plan({ kind: 'all' }))).toBe(5);
    await replica.close();
  });

  it('a restart that leaves cold buckets in the store still ranks them exactly (GET /top), with keys of two origins', async () => {
    const { store, dir } = await levelStore();
    const clock = new ManualClock(T0);
    const openRanked = (s: Store): Promise<Replica> => Replica.open({ store: s, id: 'n1', retention: RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9, topExactKeys: 0 });
    const replica = await openRanked(store);
    const day = bucketStart(Tier.day, T0);
    // 300 keys of 100 hits on this node alone fill a day bucket's heap (256); 5 keys of 200 lead, and 5 keys of 150 split evenly
    // between this node and another origin follow, though neither origin's half would enter the heap: only their sum ranks them.
    const keys: string[] = [];
    const totals = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const key = `single-${String(i).padStart(3, '0')}`;
      await replica.hit(key, 100);
      keys.push(key);
      totals.set(key, 100);
    }
    for (let i = 0; i < 5; i++) {
      const key = `lead-${i}`;
      await replica.hit(key, 200);
      keys.push(key);
      totals.set(key, 200);
    }
    for (let i = 0; i < 5; i++) {
      const key = `split-${i}`;
      await replica.hit(key, 75);
      replica.view.apply('n2#00ff', { hits: [], slots: [{ key, tier: Tier.day, start: day, count: 75 }, { key, tier: Tier.lifetime, start: 0, count: 75 }] }, undefined, [i + 1, T0]);
      keys.push(key);
      totals.set(key, 150);
    }
    clock.set(T0 + 3 * DAY);
    await replica.close();
    const reopened = await openRanked((await levelStore(dir)).store);
    expect(heldCoarse(reopened)).toBe(0);
    const plan = reopened.plan({ kind: 'window', ms: 30 * DAY });
    const ranking = await reopened.ranking.rank(plan, 10, '');
    const expected = keys.map((key) => ({ key, count: totals.get(key) ?? 0 })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, 10);
    expect(expected.slice(5).map((e) => e.key)).toEqual(['split-0', 'split-1', 'split-2', 'split-3', 'split-4']);
    expect(ranking.exact).toBe(true);
    expect(ranking.top.map((e) => [e.key, e.count])).toEqual(expected.map((e) => [e.key, e.count]));
    await reopened.close();
  });

  it('a fresh read (?read=majority) that cannot read a cold bucket fails the request, not the node, whether a timer or a peer finishes it', async () => {
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    state.attachColdReader(new ColdSlots(store, 10, logger).read);
    state.addHit('n1#01', 'k', T0, 1, 1);
    await store.commit({ slots: [...state.slots()].map((s) => ({ ...s, seq: 1 })), meta: new Map() });
    void [...state.evictCold(T0 + 3 * DAY, () => false)];
    const asked: number[] = [];
    const reads = new FreshReads({ self: () => 'me', state, members: () => 3, ask: (id) => void asked.push(id) });
    const plan = planWindow(T0 + 3 * DAY - 30 * DAY, T0 + 3 * DAY + 1, T0 + 3 * DAY, DEFAULT_RETENTION);
    const byTimer = reads.read(['k'], plan, 'majority', 20);
    const byPeer = reads.read(['k'], plan, 'majority', 60_000);
    await store.close(); // as while a store that failed a write is reopened
    reads.onReply('n2', { type: 'readReply', id: asked[1] as number, origins: [], rows: [], tooBig: false });
    await expect(byPeer).rejects.toThrow(ColdReadError);
    await expect(byTimer).rejects.toThrow(ColdReadError);
  });

  it('a store that cannot be read refuses the count (ColdReadError) instead of answering short, and the replica goes on', async () => {
    const { store } = await levelStore();
    const clock = new ManualClock(T0);
    const replica = await open(store, clock);
    await replica.hit('k', 2);
    clock.set(T0 + 3 * DAY);
    await replica.checkpoint();
    await replica.expire();
    const original = store.readSlot.bind(store);
    store.readSlot = () => {
      throw new Error('disk gone');
    };
    expect(() => replica.count('k', replica.plan({ kind: 'window', ms: 30 * DAY }))).toThrow(/could not be read from the store: disk gone/);
    store.readSlot = original;
    expect(replica.count('k', replica.plan({ kind: 'window', ms: 30 * DAY }))).toBe(2);
    await replica.close();
  });
});

describe('the cold path over gossip (two nodes, real WebSockets and LevelDB)', () => {
  it('a repair sends what only the store holds: to a new node, and to one that was down for days', async () => {
    const running: RunningNode[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-cold-gossip-'));
    dirs.push(dir);
    const clock = new ManualClock(T0);
    // The wall clock goes on at its pace while the nodes talk; the test jumps it where it says.
    const ticking = setInterval(() => clock.advance(100), 100);
    const flags = ['--retention-1m', '7d', '--checkpoint-interval', '1h', '--gc-interval', '1h'];
    try {
      const { store: storeA } = await levelStore(dir);
      let coldScans = 0;
      const scan = storeA.scanColdSlots.bind(storeA);
      storeA.scanColdSlots = (...args) => {
        coldScans++;
        return scan(...args);
      };
      const a = await startInProcess(running, dir, 'a', flags, { clock, store: storeA });
      const keys = ['p', 'q', 'r'];
      await history(a.replica, clock, keys);
      await a.replica.checkpoint();
      await a.replica.expire();
      expect(heldCoarse(a.replica)).toBeLessThan(60);
      const expected = counts(a.replica, keys);

      const b = await startInProcess(running, dir, 'b', [...flags, ...peersOf([a])], { clock });
      await vi.waitFor(() => expect(counts(b.replica, keys)).toEqual(expected), { timeout: 20_000, interval: 100 });
      expect(coldScans).toBeGreaterThan(0);

      // B goes down; A takes hits for a day and a half, and evicts most of them before B is back.
      await b.stop();
      running.splice(running.indexOf(b), 1);
      const resumed = clock.now();
      for (let step = 0; step < 36; step++) {
        clock.set(resumed + step * HOUR);
        for (const key of keys) await a.replica.hit(key, step + 1);
      }
      clock.set(resumed + 2 * DAY);
      await a.replica.checkpoint();
      await a.replica.expire();
      const scansBefore = coldScans;
      const later = counts(a.replica, keys);
      expect(later).not.toEqual(expected);
      const b2 = await startInProcess(running, dir, 'b', [...flags, ...peersOf([a])], { clock });
      await vi.waitFor(() => expect(counts(b2.replica, keys)).toEqual(later), { timeout: 20_000, interval: 100 });
      expect(coldScans).toBeGreaterThan(scansBefore);
    } finally {
      clearInterval(ticking);
      await Promise.all(running.map((n) => n.stop()));
    }
  });
});
