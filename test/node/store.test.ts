import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { StoreError } from '../../node/store.ts';
import { storeContract } from './store-contract.ts';

storeContract('LevelDB', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-store-'));
  return { store: new LevelStore(dir), reopen: () => new LevelStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

storeContract('memory', async () => {
  const store = new MemoryStore();
  return { store, reopen: () => store, cleanup: async () => {} };
});

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
});
