// Races found by a hostile review of the fail-stop store: a new incarnation
// racing the resync after a reopen, a checkpoint racing a new incarnation, a
// shutdown while the store is failed, and retention during a sliced answer.
// Real LevelDB where it matters, hooks at the exact step, no delays.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { countKeys } from '../../api/read-budget.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { IDENTITY_META } from '../../node/identity.ts';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { Replica } from '../../node/replica.ts';
import type { CommitBatch, Store } from '../../node/store.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 28, 12, 0, 0, 250);
const ALL = { kind: 'all' } as const;
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-races-'));
  dirs.push(dir);
  return dir;
}

const open = (store: Store, clock = new ManualClock(T0), storeRetryMs = 5): Promise<Replica> =>
  Replica.open({ store, id: 'n1', retention: DEFAULT_RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9, storeRetryMs });

/** LevelDB whose next commit can fail (as ENOSPC would) and which runs a hook at chosen steps. */
class HookedLevel extends LevelStore {
  failNext = false;
  beforeDropLog: (() => void) | undefined;
  beforeIdentity: (() => void) | undefined;

  override async commit(batch: CommitBatch): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('ENOSPC: no space left on device');
    }
    if (batch.meta.has(IDENTITY_META)) take(this, 'beforeIdentity')?.();
    return super.commit(batch);
  }

  override async dropLogAfter(seq: number): Promise<void> {
    take(this, 'beforeDropLog')?.();
    return super.dropLogAfter(seq);
  }
}

function take(store: HookedLevel, name: 'beforeDropLog' | 'beforeIdentity'): (() => void) | undefined {
  const hook = store[name];
  store[name] = undefined;
  return hook;
}

/** kill -9: the store is closed under the replica, with no last checkpoint; the restart reads what is on disk. */
async function killAndRestart(store: LevelStore, dir: string): Promise<Replica> {
  await store.close();
  return open(new LevelStore(dir));
}

describe('races around a new incarnation', () => {
  it('a new incarnation asked for while the store is being resynced after a failure loses no acknowledged hit', async () => {
    const dir = await tempDir();
    const store = new HookedLevel(dir);
    const replica = await open(store);
    for (let i = 0; i < 5; i++) await replica.hit('k', 1);
    await replica.checkpoint();
    store.failNext = true;
    await expect(replica.hit('k', 1)).rejects.toThrow(/failed to write/);
    let rotation: Promise<void> | undefined;
    store.beforeDropLog = () => {
      rotation = replica.startNewIncarnation('a peer holds more of this origin');
    };
    await replica.storeSettled();
    await rotation;
    const origin = replica.identity.origin;
    for (let i = 0; i < 10; i++) await replica.hit('k', 1);
    const after = await killAndRestart(store, dir);
    expect(after.identity.origin, 'the new incarnation is the one on disk').toBe(origin);
    expect(after.count('k', after.plan(ALL))).toBe(15);
    await after.close();
  });

  it('a checkpoint that starts while the new identity is written does not truncate the new incarnation’s log', async () => {
    const dir = await tempDir();
    const store = new HookedLevel(dir);
    const replica = await open(store);
    for (let i = 0; i < 5; i++) await replica.hit('k', 1);
    store.beforeIdentity = () => {
      // Gossip brings 2,000 keys and the checkpoint timer fires, right as the new identity is being written.
      const hits = Array.from({ length: 2_000 }, (_, i) => ({ key: `r${i}`, second: T0 - 250, counts: [1, 1, 1, 1, 1] as [number, number, number, number, number] }));
      replica.view.apply('n2#beef', { hits, slots: [] }, undefined, [1, T0]);
      void replica.checkpoint();
    };
    const rotation = replica.startNewIncarnation('a peer holds more of this origin');
    const hits = Array.from({ length: 5 }, () => replica.hit('k', 1));
    await rotation;
    await Promise.all(hits);
    await replica.checkpoint();
    const after = await killAndRestart(store, dir);
    expect(after.count('k', after.plan(ALL))).toBe(10);
    await after.close();
  });
});

describe('shutdown and reads while the store is failed', () => {
  it('a clean stop before the reopen was tried still drops the failed batch: it never counts after the restart', async () => {
    const store = new MemoryStore();
    const replica = await open(store, new ManualClock(T0), 60_000); // the reopen is not tried before SIGTERM
    await replica.hit('k', 1);
    store.failWrites(new Error('EIO'), { written: true });
    await expect(replica.hit('k', 7)).rejects.toThrow(/failed to write/);
    store.heal();
    await replica.close();
    const after = await open(store);
    expect(after.count('k', after.plan(ALL))).toBe(1);
    await after.close();
  });

  it('a retention pass during a sliced answer changes none of its counts', async () => {
    const H = 3_600_000;
    const clock = new ManualClock(Date.UTC(2026, 10, 28, 12, 0, 10) - 2 * H + 20_000); // 20 s inside a 2 h window: second buckets
    const replica = await open(new MemoryStore(), clock);
    const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`);
    await replica.hits(keys.map((key) => ({ key })));
    clock.set(Date.UTC(2026, 10, 28, 12, 0, 10));
    const plan = replica.plan({ kind: 'window', ms: 2 * H });
    const answer = countKeys(replica, keys, plan);
    setImmediate(() => {
      clock.advance(60_000); // the timer's pass lands during a yield, a minute on
      void replica.expire();
    });
    const counts = Object.values(await answer);
    expect(new Set(counts)).toEqual(new Set([1]));
    await replica.close();
  });
});
