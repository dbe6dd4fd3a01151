import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Slot } from '../../crdt/slot.ts';
import { Tier } from '../../crdt/tiers.ts';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { StoreError, type LogRecord } from '../../node/store.ts';
import { storeContract, type ContractStore } from './store-contract.ts';
import { storeContractCold } from './store-contract-cold.ts';

async function levelContractStore(): Promise<ContractStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
  return {
    store: new LevelStore(dir),
    reopen: () => new LevelStore(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
    // A raw handle on the same files, as a disk or an older version could have left them.
    plantRaw: async (_kind, key, value) => {
      const raw = new Level<string, string>(dir);
      await raw.open();
      await raw.put(key, value);
      await raw.close();
    },
  };
}

async function memoryContractStore(): Promise<ContractStore> {
  const store = new MemoryStore();
  return {
    store,
    reopen: () => store,
    cleanup: async () => {},
    plantRaw: async (kind, key, value) => store.plantRaw(kind, key, value),
  };
}

storeContract('LevelDB', levelContractStore, { seeksPastSkipped: true });
storeContractCold('LevelDB', levelContractStore);
storeContract('memory', memoryContractStore);
storeContractCold('memory', memoryContractStore);

describe('LevelStore', () => {
  it('says plainly when another node holds the data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
    const first = new LevelStore(dir);
    await first.open();
    try {
      const second = new LevelStore(dir);
      await expect(second.open()).rejects.toThrow(StoreError);
      await expect(second.open()).rejects.toThrow(/in use by another node/);
    } finally {
      await first.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('readSlot on a store that is not open throws a StoreError saying so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
    try {
      const store = new LevelStore(dir);
      await store.open();
      await store.commit({ slots: [{ origin: 'n1#aa', key: 'home', tier: Tier.second, start: 1_000, count: 3, seq: 1 }], meta: new Map() });
      expect(store.readSlot('n1#aa', Tier.second, 1_000, 'home')).toEqual({ count: 3, seq: 1 });
      await store.close();
      expect(() => store.readSlot('n1#aa', Tier.second, 1_000, 'home')).toThrow(StoreError);
      expect(() => store.readSlot('n1#aa', Tier.second, 1_000, 'home')).toThrow(/cannot read the slot of n1#aa .*the store is closed, not open/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('scanColdSlots closes its iterator when the consumer stops early', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
    const made = vi.spyOn(Level.prototype, 'iterator');
    try {
      const store = new LevelStore(dir);
      await store.open();
      await store.commit({ slots: Array.from({ length: 1_500 }, (_, i) => ({ origin: 'n1#aa', key: `k${i}`, tier: Tier.second, start: 1_000, count: 1, seq: 1 })), meta: new Map() });
      for await (const chunk of store.scanColdSlots('n1#aa', Tier.second, -Infinity, Infinity, 0)) {
        // A native read stops at about 16 KiB, so a chunk may hold fewer than 1,000: this one is not the last.
        expect(chunk.length).toBeGreaterThan(0);
        expect(chunk.length).toBeLessThan(1_500);
        break;
      }
      expect(made).toHaveBeenCalledTimes(1);
      const iterator = made.mock.results[0]?.value as ReturnType<Level<string, string>['iterator']>;
      await expect(iterator.nextv(1)).rejects.toMatchObject({ code: 'LEVEL_ITERATOR_NOT_OPEN' });
      await store.close();
    } finally {
      made.mockRestore();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LevelStore with fsync', () => {
  const slot: Slot = { origin: 'n1#aa', key: 'home', tier: Tier.second, start: 1_000, count: 3, seq: 1 };
  const log = { seq: 1, record: JSON.stringify(['home', 1_000, 3]) };
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is off unless asked for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
    try {
      // Each in a directory of its own, closed again: a Level opens itself in the background once made.
      const stores = [new LevelStore(join(dir, 'a')), new LevelStore(join(dir, 'b'), {}), new LevelStore(join(dir, 'c'), { fsync: true })];
      expect(stores.map((store) => store.fsync)).toEqual([false, false, true]);
      for (const store of stores) {
        await store.open();
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // A test cannot pull the power: this shows synced commits work and are read
  // back; the next one that the sync option reaches LevelDB on every commit.
  it('commits a log record and a checkpoint, and reads them back after reopening', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
    try {
      const store = new LevelStore(dir, { fsync: true });
      await store.open();
      await store.commit({ slots: [], meta: new Map(), log });
      await store.commit({ slots: [slot], meta: new Map([['seq', '1']]) });
      await store.truncateLog(0);
      await store.close();
      const again = new LevelStore(dir, { fsync: true });
      await again.open();
      const slots: Slot[] = [];
      for await (const chunk of again.scanSlots()) slots.push(...chunk);
      const records: LogRecord[] = [];
      for await (const r of again.scanLog()) records.push(r);
      expect(slots).toEqual([slot]);
      expect(records).toEqual([{ seq: 1, increments: [['home', 1_000, 3]] }]);
      expect(await again.getMeta('seq')).toBe('1');
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes every batch with sync: true when on (checkpoints too: see LevelStore.commit), and with sync: false when off', async () => {
    const batch = vi.spyOn(Level.prototype, 'batch');
    const syncOf = (call: unknown[]): unknown => (call[1] as { sync?: unknown } | undefined)?.sync;
    for (const fsync of [true, false]) {
      const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
      try {
        batch.mockClear();
        const store = new LevelStore(dir, { fsync });
        await store.open();
        await store.commit({ slots: [], meta: new Map(), log });
        await store.commit({ slots: [slot], meta: new Map([['seq', '1']]) });
        await store.close();
        expect(batch.mock.calls.map(syncOf)).toEqual([fsync, fsync]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});
