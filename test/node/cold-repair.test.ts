import { Packr } from 'msgpackr';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import type { Slot } from '../../crdt/slot.ts';
import { TIER_SIZE_MS, Tier, bucketStart } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN, planWindow } from '../../crdt/window-plan.ts';
import { RepairChunks } from '../../gossip/chunks.ts';
import { decodeDelta } from '../../gossip/delta-codec.ts';
import { parseMessage, timeBounds, type Delta } from '../../gossip/messages.ts';
import type { SlotRow } from '../../gossip/replica-view.ts';
import { COLD_PAGE_SLOTS, ColdRepair } from '../../node/cold-repair.ts';
import { MemoryStore } from '../../node/memory-store.ts';

const logger = pino({ level: 'silent' });
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 11, 4, 15, 0, 0);
const ORIGIN = 'n1#0a';
const KEYS = 1_300; // each with a cold day, hour and minute: more than two pages per tier

/** A state whose cold buckets are only in the store, and a copy that holds everything. */
async function evictedState(): Promise<{ state: ReplicaState; full: ReplicaState; store: MemoryStore }> {
  const store = new MemoryStore();
  await store.open();
  const state = new ReplicaState();
  const full = new ReplicaState();
  state.attachColdReader((origin, key, tier, start) => store.readSlot(origin, tier, start, key)?.count ?? 0);
  let seq = 0;
  for (let k = 0; k < KEYS; k++) {
    for (const [t, n] of [[NOW - 3 * DAY - k * 1000, 2], [NOW - 1.5 * DAY, 1], [NOW - 3 * HOUR, 1], [NOW - 60_000, 3]] as const) {
      seq++;
      state.addHit(ORIGIN, `key-${k}`, t, n, seq);
      full.addHit(ORIGIN, `key-${k}`, t, n, seq);
    }
  }
  const slots: Slot[] = [...state.slots()].map((s) => ({ ...s, seq: state.lastSeq(s.origin, s.key) }));
  for (let i = 0; i < slots.length; i += 500) await store.commit({ slots: slots.slice(i, i + 500), meta: new Map() });
  void [...state.evictCold(NOW - 2 * HOUR, () => false)];
  return { state, full, store };
}

/** Drive a repair as a peer link does: a frame whenever it is ready, the event loop between. */
async function drive(source: RepairChunks): Promise<Delta[]> {
  const out: Delta[] = [];
  while (!source.done) {
    if (!source.ready) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    out.push(parseMessage(packr.unpack(packr.pack(source.next())), NOW) as Delta);
  }
  return out;
}

const tierOf = (row: SlotRow): Tier => row.tier;

describe('a repair that reads the store (ColdRepair)', () => {
  it('sends every changed bucket, evicted ones from the store a page at a time, coarser tiers first, seconds and lifetimes last', async () => {
    const { state, full, store } = await evictedState();
    let pages = 0;
    const scan = store.scanColdSlots.bind(store);
    store.scanColdSlots = (...args) => {
      pages++;
      return scan(...args);
    };
    const frames = await drive(new RepairChunks(ORIGIN, 0, [4 * KEYS, NOW], new ColdRepair({ state, store, logger }, ORIGIN, 0, Number.NEGATIVE_INFINITY)));
    expect(frames.at(-1)?.from).toBe(0);
    expect(frames.slice(0, -1).every((f) => f.from === null)).toBe(true);
    expect(pages).toBeGreaterThanOrEqual(3 * Math.ceil(KEYS / COLD_PAGE_SLOTS));
    const rows = frames.flatMap((f) => decodeDelta(f, timeBounds(NOW)).slots);
    const peer = new ReplicaState();
    for (const row of rows) peer.mergeCount(ORIGIN, row.key, row.tier, row.start, row.count, 4 * KEYS);
    for (const [from, to] of [[NOW - 30 * DAY, NOW + 1], [NOW - 2 * DAY, NOW + 1], [NOW - 3 * DAY - 2 * HOUR, NOW - 3 * DAY + HOUR]]) {
      const plan = planWindow(from as number, to as number, NOW, DEFAULT_RETENTION);
      for (let k = 0; k < KEYS; k += 97) expect(peer.sum(`key-${k}`, plan)).toBe(full.sum(`key-${k}`, plan));
    }
    for (let k = 0; k < KEYS; k += 97) expect(peer.sum(`key-${k}`, LIFETIME_PLAN)).toBe(7);
    // Order: the held part first, then the store's days, hours and minutes, then every lifetime.
    const cold = (row: SlotRow): boolean => row.tier !== Tier.second && row.tier !== Tier.lifetime && row.start + TIER_SIZE_MS[row.tier] <= NOW - 2 * HOUR;
    const coldRows = rows.filter(cold);
    const firstHour = coldRows.findIndex((r) => tierOf(r) === Tier.hour);
    const firstMinute = coldRows.findIndex((r) => tierOf(r) === Tier.minute);
    expect(coldRows.slice(0, firstHour).every((r) => tierOf(r) === Tier.day)).toBe(true);
    expect(coldRows.slice(firstHour, firstMinute).every((r) => tierOf(r) === Tier.hour)).toBe(true);
    expect(coldRows.slice(firstMinute).every((r) => tierOf(r) === Tier.minute)).toBe(true);
    // Then seconds and lifetimes, a key's lifetime after every bucket of it.
    const lastCold = rows.lastIndexOf(coldRows.at(-1) as SlotRow);
    expect(rows.findIndex((r) => r.tier === Tier.lifetime)).toBeGreaterThan(lastCold);
    expect(rows.findIndex((r) => r.tier === Tier.second)).toBeGreaterThan(lastCold);
    expect(rows.slice(lastCold + 1).every((r) => r.tier === Tier.second || r.tier === Tier.lifetime)).toBe(true);
    const lifetimeAt = new Map(rows.flatMap((r, i) => (r.tier === Tier.lifetime ? [[r.key, i] as const] : [])));
    for (const [i, r] of rows.entries()) if (r.tier !== Tier.lifetime) expect(i).toBeLessThan(lifetimeAt.get(r.key) ?? -1);
    // A cold minute of today comes after the held hour and day around it (the cover bound of GET /top).
    let today = 0;
    for (const [i, row] of rows.entries()) {
      if (!cold(row) || row.tier === Tier.day) continue;
      const dayStart = bucketStart(Tier.day, row.start);
      if (dayStart + DAY <= NOW - 2 * HOUR) continue;
      today++;
      const before = rows.slice(Math.max(0, i - 3), i);
      expect(before.some((r) => r.key === row.key && r.tier === Tier.day && r.start === dayStart && r.count === full.get(ORIGIN, row.key, Tier.day, dayStart))).toBe(true);
    }
    expect(today).toBe(2 * KEYS);
  });

  it('sends only buckets that end after the peer\'s time, with a seq past its seq', async () => {
    const { state, store } = await evictedState();
    const since = NOW - 2 * DAY;
    const frames = await drive(new RepairChunks(ORIGIN, 5, [4 * KEYS, NOW], new ColdRepair({ state, store, logger }, ORIGIN, 5, since)));
    const rows = frames.flatMap((f) => decodeDelta(f, timeBounds(NOW)).slots);
    for (const row of rows) if (row.tier !== Tier.lifetime) expect(row.start + TIER_SIZE_MS[row.tier]).toBeGreaterThan(since);
    expect(rows.some((r) => r.tier === Tier.hour && r.start === bucketStart(Tier.hour, NOW - 1.5 * DAY))).toBe(true);
  });

  it('a page the store fails to read ends the repair early, and its last frame vouches for nothing', async () => {
    const { state, store } = await evictedState();
    let pages = 0;
    const scan = store.scanColdSlots.bind(store);
    store.scanColdSlots = (...args) => {
      if (++pages === 2) throw new Error('disk gone');
      return scan(...args);
    };
    const repair = new ColdRepair({ state, store, logger }, ORIGIN, 0, Number.NEGATIVE_INFINITY);
    const frames = await drive(new RepairChunks(ORIGIN, 0, [4 * KEYS, NOW], repair));
    expect(repair.failed).toBe(true);
    expect(frames.every((f) => f.from === null)).toBe(true);
    // What came before the failure stands: the first page of days.
    expect(frames.flatMap((f) => decodeDelta(f, timeBounds(NOW)).slots).filter((r) => r.tier === Tier.day).length).toBeGreaterThan(0);
  });

  it('sends a cold bucket whose stored seq lags its key\'s: the key changed after the peer\'s seq, whatever seq the slot was stored with', async () => {
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    state.attachColdReader((origin, key, tier, start) => store.readSlot(origin, tier, start, key)?.count ?? 0);
    const t = NOW - 3 * HOUR;
    // A repair brought k's buckets under seq 100 with counts that already held seq 105; the push of 105 then raised only the key's seq.
    for (const tier of [Tier.minute, Tier.hour, Tier.day, Tier.lifetime] as const) state.mergeCount(ORIGIN, 'k', tier, tier === Tier.lifetime ? 0 : bucketStart(tier, t), 1, 100);
    state.mergeCount(ORIGIN, 'k', Tier.second, bucketStart(Tier.second, t), 1, 105);
    const stored: Slot[] = [...state.slots()].map((s) => ({ ...s, seq: s.tier === Tier.second || s.tier === Tier.lifetime ? 105 : 100 }));
    await store.commit({ slots: stored, meta: new Map() });
    void [...state.evictCold(NOW - 2 * HOUR, () => false)];
    const frames = await drive(new RepairChunks(ORIGIN, 102, [105, NOW], new ColdRepair({ state, store, logger }, ORIGIN, 102, NOW - 4 * HOUR)));
    const rows = frames.flatMap((f) => decodeDelta(f, timeBounds(NOW)).slots);
    expect(rows.filter((r) => r.tier === Tier.minute || r.tier === Tier.hour).map((r) => [r.tier, r.start])).toEqual([
      [Tier.hour, bucketStart(Tier.hour, t)],
      [Tier.minute, bucketStart(Tier.minute, t)],
    ]);
  });

  it('a peer cut off when the repair first waits on the store holds no second whose minute it lacks (GET /top\'s cover bound)', async () => {
    const store = new MemoryStore();
    await store.open();
    const state = new ReplicaState();
    state.attachColdReader((origin, key, tier, start) => store.readSlot(origin, tier, start, key)?.count ?? 0);
    // A 30 min hot horizon: a minute 45 min ago is evicted while its seconds (kept 2 h) are held.
    const minute = bucketStart(Tier.minute, NOW - 45 * 60_000);
    for (let i = 0; i < 10; i++) state.addHit(ORIGIN, 'hot', minute + 5_000 + i * 1000, 10, 1);
    await store.commit({ slots: [...state.slots()].map((s) => ({ ...s, seq: 1 })), meta: new Map() });
    void [...state.evictCold(NOW - 30 * 60_000, () => false)];
    const source = new RepairChunks(ORIGIN, 0, [1, NOW], new ColdRepair({ state, store, logger }, ORIGIN, 0, Number.NEGATIVE_INFINITY));
    const rows: SlotRow[] = [];
    while (source.ready && !source.done) rows.push(...decodeDelta(source.next(), timeBounds(NOW)).slots);
    expect(rows.filter((r) => r.tier === Tier.second)).toEqual([]);
    // The rest of the repair brings the minute before any of its seconds.
    rows.push(...(await drive(source)).flatMap((f) => decodeDelta(f, timeBounds(NOW)).slots));
    const firstSecond = rows.findIndex((r) => r.tier === Tier.second);
    expect(firstSecond).toBeGreaterThan(rows.findIndex((r) => r.tier === Tier.minute && r.start === minute));
    expect(rows.filter((r) => r.tier === Tier.second)).toHaveLength(10);
  });
});
