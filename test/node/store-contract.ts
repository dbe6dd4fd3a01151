import { describe, expect, it } from 'vitest';
import type { Slot } from '../../crdt/slot.ts';
import { Tier } from '../../crdt/tiers.ts';
import type { Store } from '../../node/store.ts';

/** One contract, run against every Store: `make` gives a fresh store; `reopen` the same data in a new instance. */
export function storeContract(name: string, make: () => Promise<{ store: Store; reopen: () => Store; cleanup: () => Promise<void> }>): void {
  const slot = (over: Partial<Slot>): Slot => ({ origin: 'n1#aa', key: 'home', tier: Tier.second, start: 1_000, count: 1, seq: 1, ...over });

  async function collect(store: Store): Promise<Slot[]> {
    const out: Slot[] = [];
    for await (const s of store.scanSlots()) out.push(s);
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
        for (const seq of [2, 10, 1, 100]) await store.commit({ slots: [], meta: new Map(), log: { seq, record: `r${seq}` } });
        await store.truncateLog(2);
        await store.close();
        const again = reopen();
        await again.open();
        const records: { seq: number; record: string }[] = [];
        for await (const r of again.scanLog()) records.push(r);
        expect(records).toEqual([
          { seq: 10, record: 'r10' },
          { seq: 100, record: 'r100' },
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
        await store.deleteBefore('n1#aa', Tier.second, 4_000);
        const left = await collect(store);
        expect(left).toHaveLength(keep.length);
        for (const s of keep) expect(left).toContainEqual(s);
        await store.close();
      } finally {
        await cleanup();
      }
    });
  });
}
