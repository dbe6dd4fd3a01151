import { describe, expect, it } from 'vitest';
import type { Slot } from '../../crdt/slot.ts';
import { TIER_SIZE_MS, Tier } from '../../crdt/tiers.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { logKey, slotKey } from '../../node/slot-codec.ts';
import { shorten, type CorruptRecord, type LogRecord, type Store, type StoredToken } from '../../node/store.ts';

export interface ContractStore {
  readonly store: Store;
  /** The same data in a new instance. */
  readonly reopen: () => Store;
  readonly cleanup: () => Promise<void>;
  /** Put a raw db key and value in the data, bypassing the codec; only while the store is closed. */
  readonly plantRaw: (kind: CorruptRecord['kind'], key: string, value: string) => Promise<void>;
}

/** A bad record, and what the reason for skipping it must mention. */
interface Planted {
  readonly what: string;
  readonly kind: CorruptRecord['kind'];
  readonly key: string;
  readonly value: string;
  readonly reason: RegExp;
}

const ORIGIN = 'n1#aa';
const PLANTED: readonly Planted[] = [
  { what: 'an origin with a NUL byte', kind: 'slot', key: slotKey('n1\u0000#aa', Tier.second, 1_000, 'home'), value: '1:1', reason: /origin/ },
  { what: 'a start of 2^53', kind: 'slot', key: slotKey(ORIGIN, Tier.second, 2 ** 53, 'home'), value: '1:1', reason: /start/ },
  { what: 'a count past 2^53', kind: 'slot', key: slotKey(ORIGIN, Tier.second, 2_000, 'home'), value: '9007199254740993:1', reason: /count.*2\^53/ },
  { what: 'a count with a fraction', kind: 'slot', key: slotKey(ORIGIN, Tier.second, 3_000, 'home'), value: '1.5:1', reason: /<count>:<seq>/ },
  { what: 'a key with a control character', kind: 'slot', key: slotKey(ORIGIN, Tier.second, 4_000, 'a\u0007b'), value: '1:1', reason: /control characters/ },
  { what: 'a misaligned minute start', kind: 'slot', key: slotKey(ORIGIN, Tier.minute, 90_000, 'home'), value: '1:1', reason: /minute bucket/ },
  { what: 'a key over 256 bytes (reported shortened)', kind: 'slot', key: slotKey(ORIGIN, Tier.second, 5_000, 'k'.repeat(300)), value: '1:1', reason: /256 bytes/ },
  { what: 'a log record that is not JSON', kind: 'log', key: logKey(7), value: 'not json', reason: /not JSON/ },
  { what: 'a log record with a bad key', kind: 'log', key: logKey(8), value: JSON.stringify(['a\u0001', 1_000, 1]), reason: /control characters/ },
  { what: 'a log key that is not a number', kind: 'log', key: 'l\u0000seven', value: '[]', reason: /log key/ },
];

/** One contract, run against every Store: `make` gives a fresh store and its data's other handles. */
export function storeContract(name: string, make: () => Promise<ContractStore>, options: { readonly seeksPastSkipped?: boolean } = {}): void {
  const slot = (over: Partial<Slot>): Slot => ({ origin: ORIGIN, key: 'home', tier: Tier.second, start: 1_000, count: 1, seq: 1, ...over });

  async function collect(store: Store): Promise<Slot[]> {
    const out: Slot[] = [];
    for await (const chunk of store.scanSlots()) out.push(...chunk);
    return out;
  }

  describe(`store contract: ${name}`, () => {
    it('a commit is read back after reopening, slots and meta alike', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        await store.open();
        await store.commit({ slots: [slot({}), slot({ key: 'ünï cøde / ?&', tier: Tier.lifetime, start: 0, count: 7 })], meta: new Map([['seq', '1']]) });
        await store.close();
        const again = reopen();
        await again.open();
        expect(await again.getMeta('seq')).toBe('1');
        expect(await again.getMeta('missing')).toBeUndefined();
        const slots = await collect(again);
        expect(slots).toHaveLength(2);
        expect(slots).toContainEqual(slot({ key: 'ünï cøde / ?&', tier: Tier.lifetime, start: 0, count: 7 }));
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('a later commit of the same slot replaces it', async () => {
      const { store, cleanup } = await make();
      try {
        await store.open();
        await store.commit({ slots: [slot({ count: 1, seq: 1 })], meta: new Map() });
        await store.commit({ slots: [slot({ count: 5, seq: 2 })], meta: new Map() });
        expect(await collect(store)).toEqual([slot({ count: 5, seq: 2 })]);
        await store.close();
      } finally {
        await cleanup();
      }
    });

    it('log records come back in seq order and truncation drops a prefix', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        await store.open();
        const record = (seq: number): string => JSON.stringify(['k', seq * 1_000, seq, 'ünï', 0, 1]);
        for (const seq of [2, 10, 1, 100]) await store.commit({ slots: [], meta: new Map(), log: { seq, record: record(seq) } });
        await store.truncateLog(2);
        await store.close();
        const again = reopen();
        await again.open();
        const records: LogRecord[] = [];
        for await (const r of again.scanLog()) records.push(r);
        expect(records).toEqual([
          { seq: 10, increments: [['k', 10_000, 10], ['ünï', 0, 1]] },
          { seq: 100, increments: [['k', 100_000, 100], ['ünï', 0, 1]] },
        ]);
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('deleteBefore removes only that origin and tier, before that start', async () => {
      const { store, cleanup } = await make();
      try {
        await store.open();
        const keep = [
          slot({ start: 5_000 }),
          slot({ origin: 'n2#bb', start: 1_000 }),
          slot({ tier: Tier.minute, start: 0 }),
          slot({ tier: Tier.lifetime, start: 0 }),
          slot({ key: 'a\u00ffb', start: 4_000 }),
        ];
        const drop = [slot({ start: 1_000 }), slot({ key: 'zzz', start: 3_000 })];
        await store.commit({ slots: [...keep, ...drop], meta: new Map() });
        // At most `limit` a call, the oldest first, and how many went.
        expect(await store.deleteBefore('n1#aa', Tier.second, 4_000, 1)).toBe(1);
        expect(await collect(store)).not.toContainEqual(drop[0]);
        expect(await store.deleteBefore('n1#aa', Tier.second, 4_000, 1_000)).toBe(1);
        expect(await store.deleteBefore('n1#aa', Tier.second, 4_000, 1_000)).toBe(0);
        const left = await collect(store);
        expect(left).toHaveLength(keep.length);
        for (const s of keep) expect(left).toContainEqual(s);
        await store.close();
      } finally {
        await cleanup();
      }
    });

    it('deleteBefore in chunks deletes the whole range; what is written behind a chunk, or a range cut short, is deleted by the next pass', async () => {
      const { store, cleanup } = await make();
      try {
        await store.open();
        const keys = Array.from({ length: 2_500 }, (_, i) => `k${String(i).padStart(5, '0')}`);
        const old = keys.map((key, i) => slot({ key, start: 1_000 * (1 + (i % 5)) }));
        const kept = [slot({ key: 'late', start: 9_000 }), slot({ origin: 'n1#ab', start: 1_000 }), slot({ tier: Tier.minute, start: 0 })];
        await store.commit({ slots: [...old, ...kept], meta: new Map() });
        const pass = async (before: number, limit: number, maxChunks = Infinity): Promise<number> => {
          let deleted = 0;
          for (let chunk = 0, n = limit; n === limit && chunk < maxChunks; chunk++) deleted += n = await store.deleteBefore('n1#aa', Tier.second, before, limit);
          return deleted;
        };
        // 500 keys at each start from 1 s to 5 s. A pass cut short (a close does that): the 500 of 1 s and 100 of 2 s.
        expect(await pass(3_000, 300, 2)).toBe(600);
        // One with an older horizon than where that one stopped finds what was written back before it since.
        await store.commit({ slots: [slot({ key: 'k00001', start: 1_000 })], meta: new Map() });
        expect(await pass(2_000, 300)).toBe(1);
        // Behind where the next chunk starts, a peer writes an expired bucket back; the pass goes on to the end.
        expect(await store.deleteBefore('n1#aa', Tier.second, 6_000, 300)).toBe(300);
        await store.commit({ slots: [slot({ key: 'k00000', start: 1_000 })], meta: new Map() });
        // This pass may or may not find it (LevelDB goes on after its last chunk, memory starts over); the next one does.
        const rest = await pass(6_000, 300);
        expect([1_600, 1_601]).toContain(rest);
        expect(rest + (await pass(6_000, 300))).toBe(1_601);
        const order = (slots: Slot[]): string[] => slots.map((s) => JSON.stringify(s)).sort();
        expect(order(await collect(store))).toEqual(order(kept));
        await store.close();
      } finally {
        await cleanup();
      }
    });

    it('a scan with skipBefore returns every slot not before its tier\'s limit, across chunks and origins, and still reports corrupt records it reads', async () => {
      const { store, reopen, plantRaw, cleanup } = await make();
      try {
        await store.open();
        const random = mulberry32(11);
        const origins = ['a1#aa', 'n1#aa', 'z9#zz'];
        const all: Slot[] = [];
        for (const origin of origins) {
          for (let i = 0; i < 1_800; i++) {
            const tier = Math.floor(random() * 5) as Tier;
            const start = tier === Tier.lifetime ? 0 : Math.floor(random() * 40) * TIER_SIZE_MS[tier];
            all.push(slot({ origin, key: `k${i}`, tier, start, count: i + 1, seq: i }));
          }
        }
        await store.commit({ slots: all, meta: new Map() });
        await store.close();
        const skipBefore = { [Tier.second]: 20_000, [Tier.minute]: 30 * 60_000, [Tier.hour]: 0, [Tier.day]: 40 * 86_400_000 };
        // One bad record among the kept, one among the skipped (never read, so never reported).
        await plantRaw('slot', slotKey('n1#aa', Tier.second, 25_000, 'bad\u0007'), '1:1');
        await plantRaw('slot', slotKey('n1#aa', Tier.second, 5_000, 'bad\u0007'), '1:1');
        const again = reopen();
        await again.open();
        const reports: CorruptRecord[] = [];
        const got: Slot[] = [];
        for await (const chunk of again.scanSlots((r) => reports.push(r), skipBefore)) got.push(...chunk);
        const expected = all.filter((s) => s.tier === Tier.lifetime || s.start >= skipBefore[s.tier]);
        expect(expected.length).toBeGreaterThan(1_000);
        expect(expected.length).toBeLessThan(all.length - 1_000);
        expect(new Set(got.map((s) => slotKey(s.origin, s.tier, s.start, s.key)))).toEqual(new Set(expected.map((s) => slotKey(s.origin, s.tier, s.start, s.key))));
        expect(got).toHaveLength(expected.length);
        for (const s of got) expect(s).toEqual(expected.find((e) => e.origin === s.origin && e.key === s.key && e.tier === s.tier && e.start === s.start));
        // LevelDB seeks past a skipped range unread; the memory store reads it and filters.
        const kept = shorten(slotKey('n1#aa', Tier.second, 25_000, 'bad\u0007'), 200);
        const skipped = shorten(slotKey('n1#aa', Tier.second, 5_000, 'bad\u0007'), 200);
        expect(reports.map((r) => r.key)).toEqual(options.seeksPastSkipped ? [kept] : [skipped, kept]);
        // Without it, every slot and both bad records.
        const everything: Slot[] = [];
        const allReports: CorruptRecord[] = [];
        for await (const chunk of again.scanSlots((r) => allReports.push(r))) everything.push(...chunk);
        expect(everything).toHaveLength(all.length);
        expect(allReports).toHaveLength(2);
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('slotOrigins lists every origin with a slot once, origins that are prefixes of others and a corrupt key\'s included', async () => {
      const { store, reopen, plantRaw, cleanup } = await make();
      try {
        await store.open();
        expect(await store.slotOrigins()).toEqual([]);
        const origins = ['ab#x', 'ab#xy', 'a#b', 'b#a', 'ab#x0'];
        await store.commit({ slots: origins.flatMap((origin) => [slot({ origin }), slot({ origin, key: 'z', tier: Tier.lifetime, start: 0 })]), meta: new Map([['seq', '1']]) });
        await store.close();
        await plantRaw('slot', 's\u0000bad\u0007origin', '1:1');
        const again = reopen();
        await again.open();
        expect([...(await again.slotOrigins())].sort()).toEqual([...origins, 'bad\u0007origin'].sort());
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('a store holding corrupt slot and log records opens, yields every good record and reports each bad one once per scan', async () => {
      const { store, reopen, cleanup, plantRaw } = await make();
      try {
        const good = [slot({}), slot({ tier: Tier.lifetime, start: 0, count: 9 }), slot({ origin: 'n2#bb', key: 'z', start: 6_000 })];
        const log = { seq: 9, record: JSON.stringify(['home', 7_000, 2]) };
        await store.open();
        await store.commit({ slots: good, meta: new Map([['seq', '9']]), log });
        await store.close();
        for (const p of PLANTED) await plantRaw(p.kind, p.key, p.value);
        const again = reopen();
        await again.open();
        for (let scan = 0; scan < 2; scan++) {
          const reports: CorruptRecord[] = [];
          const slots: Slot[] = [];
          for await (const chunk of again.scanSlots((r) => reports.push(r))) slots.push(...chunk);
          const records: LogRecord[] = [];
          for await (const r of again.scanLog((c) => reports.push(c))) records.push(r);
          expect(slots).toHaveLength(good.length);
          for (const s of good) expect(slots).toContainEqual(s);
          expect(records).toEqual([{ seq: 9, increments: [['home', 7_000, 2]] }]);
          expect(reports).toHaveLength(PLANTED.length);
          for (const p of PLANTED) {
            const key = shorten(p.key, 200);
            expect(key.length).toBeLessThanOrEqual(200);
            expect(reports.filter((r) => r.key === key), p.what).toEqual([{ kind: p.kind, key, reason: expect.stringMatching(p.reason) as string }]);
          }
        }
        // Without a callback the bad records are skipped all the same.
        expect(await collect(again)).toHaveLength(good.length);
        const records: LogRecord[] = [];
        for await (const r of again.scanLog()) records.push(r);
        expect(records).toHaveLength(1);
        expect(await again.getMeta('seq')).toBe('9');
        await again.close();
      } finally {
        await cleanup();
      }
    });

    it('token observations come back from chunks and kept records; expiry deletes whole chunks by their latest, kept records stay', async () => {
      const { store, reopen, cleanup } = await make();
      const T = Date.UTC(2026, 10, 30, 12);
      const token = (name: string, at: number, origin = ORIGIN): StoredToken => ({ origin, key: 'home', token: name, at, n: 1 });
      try {
        await store.open();
        await store.commit({ slots: [], tokens: [token('a', T), token('b', T + 1_000)], meta: new Map() });
        await store.commit({ slots: [], tokens: [token('c', T + 60_000)], meta: new Map() });
        await store.commit({ slots: [], keptTokens: [{ key: 'home', token: 'a', observations: [{ origin: ORIGIN, at: T, n: 1 }, { origin: 'n2#bb', at: T + 5, n: 1 }] }], meta: new Map() });
        await store.close();
        const again = reopen();
        await again.open();
        const names = async (): Promise<string[]> => {
          const out: string[] = [];
          for await (const t of again.scanTokens()) out.push(`${t.token}@${t.origin}`);
          return out.sort();
        };
        expect(await names()).toEqual(['a@n1#aa', 'a@n1#aa', 'a@n2#bb', 'b@n1#aa', 'c@n1#aa']);
        // The first chunk's latest is T + 1 s: a limit at it keeps the chunk, one past it deletes it (and only it).
        expect(await again.deleteTokensBefore(T + 1_000, 10)).toBe(0);
        expect(await again.deleteTokensBefore(T + 1_001, 10)).toBe(1);
        expect(await names()).toEqual(['a@n1#aa', 'a@n2#bb', 'c@n1#aa']);
        expect(await again.deleteTokensBefore(T + 3_600_000, 10)).toBe(1);
        expect(await names()).toEqual(['a@n1#aa', 'a@n2#bb']);
        await again.close();
      } finally {
        await cleanup();
      }
    });
  });
}
