import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { Tier } from '../../crdt/tiers.ts';
import { ManualClock } from '../../node/clock.ts';
import { IdentityMismatchError } from '../../node/identity.ts';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { Replica, ShuttingDownError } from '../../node/replica.ts';
import type { Store } from '../../node/store.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 28, 12, 0, 0, 250);
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-replica-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function open(store: Store, clock = new ManualClock(T0), id = 'n1', metrics?: NodeMetrics): Promise<Replica> {
  return Replica.open({ store, id, retention: DEFAULT_RETENTION, clock, logger, ...(metrics ? { metrics } : {}) });
}

class CountingStore extends MemoryStore {
  commits = 0;
  override async commit(batch: Parameters<MemoryStore['commit']>[0]): Promise<void> {
    this.commits++;
    await super.commit(batch);
  }
}

describe('replica', () => {
  it('concurrent hits join one group commit and are acknowledged together', async () => {
    const store = new CountingStore();
    const replica = await open(store);
    const before = store.commits;
    await Promise.all(Array.from({ length: 500 }, (_, i) => replica.hit(`k${i % 7}`, 1)));
    expect(store.commits - before).toBe(1);
    expect(replica.seq).toBe(1);
    const plan = replica.plan({ kind: 'all' });
    let total = 0;
    for (let i = 0; i < 7; i++) total += replica.count(`k${i}`, plan);
    expect(total).toBe(500);
    await replica.close();
  });

  it('hits that arrive during a write form the next batch, with the next seq', async () => {
    const store = new CountingStore();
    const replica = await open(store);
    const first = replica.hit('a', 1);
    await new Promise((resolve) => setImmediate(resolve)); // the first batch is now being written
    const second = Promise.all([replica.hit('a', 2), replica.hits([{ key: 'b', n: 3 }])]);
    await Promise.all([first, second]);
    expect(replica.seq).toBe(2);
    expect(replica.count('a', replica.plan({ kind: 'all' }))).toBe(3);
    await replica.close();
  });

  it('a failed write rejects every hit of its batch and counts none of them', async () => {
    const store = new MemoryStore();
    const metrics = new NodeMetrics({ node: 'n1' });
    const replica = await open(store, new ManualClock(T0), 'n1', metrics);
    store.failNext = new Error('disk full');
    const results = await Promise.allSettled([replica.hit('a', 1), replica.hit('b', 2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(replica.count('a', replica.plan({ kind: 'all' }))).toBe(0);
    expect(replica.seq).toBe(0);
    await replica.storeSettled(); // the store is reopened before hits are taken again
    await replica.hit('a', 1);
    expect(replica.count('a', replica.plan({ kind: 'all' }))).toBe(1);
    expect(replica.seq).toBe(1);
    expect((await metrics.registry.getSingleMetricAsString('hitmesh_store_write_errors_total'))).toMatch(/ 1$/m);
    await replica.close();
  });

  it('counts hits in every tier and answers windows from them', async () => {
    const clock = new ManualClock(T0);
    const replica = await open(new MemoryStore(), clock);
    await replica.hit('k', 1);
    clock.advance(90_000);
    await replica.hit('k', 10);
    expect(replica.count('k', replica.plan({ kind: 'window', ms: 60_000 }))).toBe(10);
    expect(replica.count('k', replica.plan({ kind: 'window', ms: 120_000 }))).toBe(11);
    expect(replica.count('k', replica.plan({ kind: 'range', from: T0 - 250, to: T0 + 750 }))).toBe(1);
    expect(replica.state.get(replica.identity.origin, 'k', Tier.hour, Date.UTC(2026, 10, 28, 12))).toBe(11);
    await replica.close();
  });

  it('rebuilds its counts, identity and seq from LevelDB on restart', async () => {
    const dir = await tempDir();
    const first = await open(new LevelStore(dir));
    await first.hits([{ key: 'a', n: 4 }, { key: 'b', n: 1 }]);
    await first.hit('a', 2);
    const { incarnation } = first.identity;
    await first.close();

    const second = await open(new LevelStore(dir));
    expect(second.identity.incarnation).toBe(incarnation);
    expect(second.seq).toBe(2);
    expect(second.count('a', second.plan({ kind: 'all' }))).toBe(6);
    expect(second.count('a', second.plan({ kind: 'window', ms: 60_000 }))).toBe(6);
    await second.hit('a', 1);
    expect(second.seq).toBe(3);
    await second.close();
  });

  it('a wiped directory is a new incarnation; another --id on the same data is refused', async () => {
    const dir = await tempDir();
    const first = await open(new LevelStore(dir));
    const old = first.identity.incarnation;
    await first.close();
    await expect(open(new LevelStore(dir), new ManualClock(T0), 'other')).rejects.toThrow(IdentityMismatchError);
    await rm(dir, { recursive: true, force: true });
    const fresh = await open(new LevelStore(dir));
    expect(fresh.identity.incarnation).not.toBe(old);
    expect(fresh.identity.origin).toBe(`n1#${fresh.identity.incarnation}`);
    await fresh.close();
  });

  it('deletes expired buckets from LevelDB in the background and keeps the lifetime total', async () => {
    const dir = await tempDir();
    const clock = new ManualClock(T0);
    const replica = await Replica.open({ store: new LevelStore(dir), id: 'n1', retention: DEFAULT_RETENTION, clock, logger, gcIntervalMs: 20 });
    await replica.hit('k', 3);
    clock.advance(3 * 3_600_000); // past the 1 s tier's 2 h
    await new Promise((resolve) => setTimeout(resolve, 100));
    await replica.close();

    const store = new LevelStore(dir);
    await store.open();
    const tiers: number[] = [];
    for await (const chunk of store.scanSlots()) for (const slot of chunk) tiers.push(slot.tier);
    await store.close();
    expect(tiers.sort()).toEqual([Tier.minute, Tier.hour, Tier.day, Tier.lifetime]);

    const reopened = await open(new LevelStore(dir), clock);
    expect(reopened.count('k', reopened.plan({ kind: 'all' }))).toBe(3);
    await reopened.close();
  });

  it.each(['closed', 'killed'] as const)('a restart (%s) loads every live bucket and none of the expired ones', async (how) => {
    const dir = await tempDir();
    const memory = new MemoryStore();
    const storeOf = (): Store => (how === 'closed' ? new LevelStore(dir) : memory);
    const clock = new ManualClock(T0 - 3 * 3_600_000);
    const options = { id: 'n1', retention: DEFAULT_RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9 };
    const first = await Replica.open({ store: storeOf(), ...options });
    await first.hit('k', 1); // its second is expired by the restart
    clock.set(T0 + 15_000);
    await first.hit('k', 2); // its second is still held, and read at the start of the window below
    if (how === 'closed') await first.close(); // else dropped with the hits in its log only, as after kill -9
    // A window starting at T0 + 10 s ends now; the 1 s tier holds from the minute before T0 on.
    const windowMs = 2 * 3_600_000 - 60_000;
    clock.set(T0 + 10_000 + windowMs);
    const second = await Replica.open({ store: storeOf(), ...options });
    const origin = second.identity.origin;
    expect(second.state.get(origin, 'k', Tier.second, Math.floor((T0 + 15_000) / 1_000) * 1_000)).toBe(2);
    expect(second.state.get(origin, 'k', Tier.second, T0 - 3 * 3_600_000)).toBe(0);
    expect(second.count('k', second.plan({ kind: 'window', ms: windowMs }))).toBe(2);
    expect(second.count('k', second.plan({ kind: 'all' }))).toBe(3);
    expect(second.count('k', second.plan({ kind: 'window', ms: 6 * 3_600_000 }))).toBe(3);
    await second.close();
  });

  it('after close it takes no hits, and close writes what was pending first', async () => {
    const dir = await tempDir();
    const replica = await open(new LevelStore(dir));
    const pending = replica.hit('a', 5);
    const closing = replica.close();
    await pending;
    await closing;
    await expect(replica.hit('a', 1)).rejects.toThrow(ShuttingDownError);
    const again = await open(new LevelStore(dir));
    expect(again.count('a', again.plan({ kind: 'all' }))).toBe(5);
    await again.close();
  });
});
