import { describe, expect, it } from 'vitest';
import type { Slot } from '../../crdt/slot.ts';
import { TIER_SIZE_MS, Tier, type TimedTier } from '../../crdt/tiers.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { slotKey } from '../../node/slot-codec.ts';
import { shorten, type CorruptRecord, type OnCorrupt, type Store } from '../../node/store.ts';
import type { ContractStore } from './store-contract.ts';

const ORIGIN = 'n1#aa';
/** Bucket starts as real ones are: 13 digits, past 10^12 (a range to MAX_START must still reach them). */
const T0 = Date.UTC(2026, 0, 1);

/** The cold reads' contract (readSlot, scanColdSlots), run against every Store like storeContract. */
export function storeContractCold(name: string, make: () => Promise<ContractStore>): void {
  const slot = (over: Partial<Slot>): Slot => ({ origin: ORIGIN, key: 'home', tier: Tier.second, start: 1_000, count: 1, seq: 1, ...over });
  const dbKey = (s: Slot): string => slotKey(s.origin, s.tier, s.start, s.key);
  const byDbKey = (a: Slot, b: Slot): number => (dbKey(a) < dbKey(b) ? -1 : dbKey(a) > dbKey(b) ? 1 : 0);

  async function chunks(store: Store, origin: string, tier: TimedTier, from: number, to: number, afterSeq: number, onCorrupt?: OnCorrupt): Promise<(readonly Slot[])[]> {
    const out: (readonly Slot[])[] = [];
    for await (const chunk of store.scanColdSlots(origin, tier, from, to, afterSeq, onCorrupt)) out.push(chunk);
    return out;
  }

  describe(`store contract, cold reads: ${name}`, () => {
    it('readSlot returns the count and seq the last commit wrote, undefined for any other origin, tier, start or key, and undefined once deleteBefore removed it', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        await store.open();
        const neighbours = [slot({ origin: 'n1#aab', start: 60_000 }), slot({ key: 'home2', start: 60_000 }), slot({ start: 120_000 }), slot({ tier: Tier.minute, start: 120_000 })];
        await store.commit({ slots: [slot({ start: 60_000, count: 3, seq: 4 }), slot({ tier: Tier.lifetime, start: 0, count: 7, seq: 2 }), ...neighbours], meta: new Map() });
        expect(store.readSlot(ORIGIN, Tier.second, 60_000, 'home')).toEqual({ count: 3, seq: 4 });
        expect(store.readSlot(ORIGIN, Tier.lifetime, 0, 'home')).toEqual({ count: 7, seq: 2 });
        expect(store.readSlot('n2#bb', Tier.second, 60_000, 'home')).toBeUndefined();
        expect(store.readSlot('n1#a', Tier.second, 60_000, 'home')).toBeUndefined();
        expect(store.readSlot(ORIGIN, Tier.minute, 60_000, 'home')).toBeUndefined();
        expect(store.readSlot(ORIGIN, Tier.second, 61_000, 'home')).toBeUndefined();
        expect(store.readSlot(ORIGIN, Tier.second, 60_000, 'hom')).toBeUndefined();
        expect(store.readSlot(ORIGIN, Tier.second, 60_000, 'home3')).toBeUndefined();
        await store.commit({ slots: [slot({ start: 60_000, count: 5, seq: 9 })], meta: new Map() });
        expect(store.readSlot(ORIGIN, Tier.second, 60_000, 'home')).toEqual({ count: 5, seq: 9 });
        await store.close();
        const again = reopen();
        await again.open();
        expect(again.readSlot(ORIGIN, Tier.second, 60_000, 'home')).toEqual({ count: 5, seq: 9 });
        expect(await again.deleteBefore(ORIGIN, Tier.second, 61_000, 10)).toBe(2);
        expect(again.readSlot(ORIGIN, Tier.second, 60_000, 'home')).toBeUndefined();
        expect(again.readSlot(ORIGIN, Tier.second, 60_000, 'home2')).toBeUndefined();
        expect(again.readSlot(ORIGIN, Tier.second, 120_000, 'home')).toEqual({ count: 1, seq: 1 });
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('readSlot of a stored value that does not decode reads as absent and reports it once; the store goes on', async () => {
      const { store, reopen, plantRaw, cleanup } = await make();
      try {
        await store.open();
        await store.commit({ slots: [slot({ count: 2, seq: 3 })], meta: new Map() });
        await store.close();
        const bad = [
          { start: 2_000, value: '12:x', reason: /<count>:<seq>/ },
          { start: 3_000, value: '012:3', reason: /canonical digits/ },
          { start: 4_000, value: '9007199254740993:1', reason: /count.*2\^53/ },
        ];
        for (const b of bad) await plantRaw('slot', slotKey(ORIGIN, Tier.second, b.start, 'home'), b.value);
        const again = reopen();
        await again.open();
        for (const b of bad) {
          const reports: CorruptRecord[] = [];
          expect(again.readSlot(ORIGIN, Tier.second, b.start, 'home', (r) => reports.push(r))).toBeUndefined();
          expect(reports).toEqual([{ kind: 'slot', key: shorten(slotKey(ORIGIN, Tier.second, b.start, 'home'), 200), reason: expect.stringMatching(b.reason) as string }]);
          expect(again.readSlot(ORIGIN, Tier.second, b.start, 'home')).toBeUndefined();
        }
        expect(again.readSlot(ORIGIN, Tier.second, 1_000, 'home')).toEqual({ count: 2, seq: 3 });
        await again.commit({ slots: [slot({ start: 2_000, count: 12, seq: 4 })], meta: new Map() });
        expect(again.readSlot(ORIGIN, Tier.second, 2_000, 'home')).toEqual({ count: 12, seq: 4 });
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('scanColdSlots returns exactly the origin\'s slots of the tier in [from, to) past afterSeq, in (start, key) order, in chunks of at most 1,000', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        await store.open();
        const random = mulberry32(5);
        const all: Slot[] = [];
        for (const origin of [ORIGIN, 'n1#aab', 'n2#bb']) {
          for (let s = 0; s <= 40; s++) for (let k = 0; k < 150; k++) all.push(slot({ origin, key: `k${String(k).padStart(3, '0')}`, start: T0 + s * 1_000, count: k + 1, seq: Math.floor(random() * 1_000) }));
          for (const tier of [Tier.minute, Tier.hour, Tier.day] as const) for (let s = 0; s < 40; s++) all.push(slot({ origin, key: 'k', tier, start: T0 + s * TIER_SIZE_MS[tier], seq: s }));
          all.push(slot({ origin, tier: Tier.lifetime, start: 0, seq: 999 }));
        }
        // Starts near 0, for -Infinity to reach; seq exactly afterSeq is not past it, one more is.
        all.push(slot({ key: 'early', start: 0, seq: 900 }), slot({ key: 'early', start: 1_000, seq: 900 }));
        all.push(slot({ key: 'edge', start: T0 + 10_000, seq: 500 }), slot({ key: 'edge+', start: T0 + 10_000, seq: 501 }));
        await store.commit({ slots: all, meta: new Map() });
        await store.close();
        const again = reopen();
        await again.open();
        const expected = (origin: string, tier: Tier, from: number, to: number, afterSeq: number): Slot[] =>
          all.filter((s) => s.origin === origin && s.tier === tier && s.start >= from && s.start < to && s.seq > afterSeq).sort(byDbKey);

        const got = await chunks(again, ORIGIN, Tier.second, T0 + 10_000, T0 + 30_000, 500);
        const want = expected(ORIGIN, Tier.second, T0 + 10_000, T0 + 30_000, 500);
        expect(want.length).toBeGreaterThan(1_000);
        expect(got.length).toBeGreaterThan(1);
        for (const chunk of got) expect(chunk.length).toBeGreaterThan(0);
        for (const chunk of got) expect(chunk.length).toBeLessThanOrEqual(1_000);
        expect(got.flat()).toEqual(want);
        expect(got.flat().map((s) => s.start)).toContain(T0 + 10_000);
        expect(got.flat().map((s) => s.key)).toContain('edge+');
        expect(got.flat().map((s) => s.key)).not.toContain('edge');
        expect(got.flat().filter((s) => s.start === T0 + 30_000)).toEqual([]);

        // Unbounded, bounds between starts, a range of one start, empty ranges, and other tiers and origins.
        expect((await chunks(again, ORIGIN, Tier.second, -Infinity, Infinity, -1)).flat()).toEqual(expected(ORIGIN, Tier.second, 0, Infinity, -1));
        expect((await chunks(again, ORIGIN, Tier.second, -Infinity, T0, -1)).flat()).toEqual([slot({ key: 'early', start: 0, seq: 900 }), slot({ key: 'early', start: 1_000, seq: 900 })]);
        expect((await chunks(again, 'n1#aab', Tier.second, -Infinity, T0 + 5_000, 800)).flat()).toEqual(expected('n1#aab', Tier.second, 0, T0 + 5_000, 800));
        expect((await chunks(again, ORIGIN, Tier.second, T0 + 20_000, Infinity, -Infinity)).flat()).toEqual(expected(ORIGIN, Tier.second, T0 + 20_000, Infinity, -1));
        expect((await chunks(again, ORIGIN, Tier.second, T0 + 9_500, T0 + 10_500, -1)).flat()).toEqual(expected(ORIGIN, Tier.second, T0 + 10_000, T0 + 11_000, -1));
        expect(await chunks(again, ORIGIN, Tier.second, T0 + 10_000, T0 + 10_000, -1)).toEqual([]);
        expect(await chunks(again, ORIGIN, Tier.second, T0 + 30_000, T0 + 10_000, -1)).toEqual([]);
        expect(await chunks(again, ORIGIN, Tier.second, T0 + 41_000, Infinity, -1)).toEqual([]);
        expect(await chunks(again, ORIGIN, Tier.second, -Infinity, Infinity, 1_000)).toEqual([]);
        expect(await chunks(again, 'n3#cc', Tier.second, -Infinity, Infinity, -1)).toEqual([]);
        const hour = TIER_SIZE_MS[Tier.hour];
        expect((await chunks(again, 'n2#bb', Tier.hour, T0 + 5 * hour, T0 + 30 * hour, 10)).flat()).toEqual(expected('n2#bb', Tier.hour, T0 + 5 * hour, T0 + 30 * hour, 10));
        expect((await chunks(again, 'n2#bb', Tier.day, -Infinity, Infinity, -1)).flat()).toHaveLength(40);
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('scanColdSlots skips and reports each corrupt record in its range, and only those', async () => {
      const { store, reopen, plantRaw, cleanup } = await make();
      try {
        await store.open();
        const good = [slot({ start: 2_000, seq: 1 }), slot({ key: 'z', start: 3_000, seq: 7 }), slot({ start: 9_000 })];
        await store.commit({ slots: good, meta: new Map() });
        await store.close();
        const inRange = [slotKey(ORIGIN, Tier.second, 2_000, 'bad'), slotKey(ORIGIN, Tier.second, 3_000, 'a\u0007b')];
        await plantRaw('slot', inRange[0] ?? '', '12:x');
        await plantRaw('slot', inRange[1] ?? '', '1:1');
        await plantRaw('slot', slotKey(ORIGIN, Tier.second, 5_000, 'a\u0007b'), '1:1');
        await plantRaw('slot', slotKey(ORIGIN, Tier.minute, 0, 'a\u0007b'), '1:1');
        await plantRaw('slot', slotKey('n1#aab', Tier.second, 2_000, 'a\u0007b'), '1:1');
        const again = reopen();
        await again.open();
        for (let scan = 0; scan < 2; scan++) {
          const reports: CorruptRecord[] = [];
          const got = await chunks(again, ORIGIN, Tier.second, 2_000, 5_000, 0, (r) => reports.push(r));
          // Reported whatever their seq: afterSeq filters slots, not records that have none.
          expect(got.flat()).toEqual([good[0], good[1]]);
          expect(reports.map((r) => r.key)).toEqual(inRange.map((key) => shorten(key, 200)));
          expect(reports.map((r) => r.kind)).toEqual(['slot', 'slot']);
        }
        expect((await chunks(again, ORIGIN, Tier.second, 2_000, 5_000, 5)).flat()).toEqual([good[1]]);
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('a consumer that stops scanColdSlots early leaves the store working, and it closes', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        await store.open();
        await store.commit({ slots: Array.from({ length: 2_500 }, (_, i) => slot({ key: `k${String(i).padStart(4, '0')}` })), meta: new Map() });
        let seen = 0;
        for await (const chunk of store.scanColdSlots(ORIGIN, Tier.second, -Infinity, Infinity, 0)) {
          seen += chunk.length;
          break;
        }
        expect(seen).toBeGreaterThan(0);
        expect(seen).toBeLessThanOrEqual(1_000);
        await store.commit({ slots: [slot({ count: 9, seq: 2 })], meta: new Map() });
        expect(store.readSlot(ORIGIN, Tier.second, 1_000, 'home')).toEqual({ count: 9, seq: 2 });
        await store.close();
        const again = reopen();
        await again.open();
        expect((await chunks(again, ORIGIN, Tier.second, -Infinity, Infinity, 0)).flat()).toHaveLength(2_501);
        await again.close();
      } finally {
        await cleanup();
      }
    });
  });
}
