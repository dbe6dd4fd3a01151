/**
 * Review 2: a repeat is answered "held by two members" (so ?ack=majority of
 * three is a 200 at once) whenever the first observation of one of its tokens
 * has another origin: also when that origin is this node's own earlier
 * incarnation, and also for a batch whose other repeats only this node holds.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { Replica } from '../../node/replica.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const open = (store: MemoryStore, clock: ManualClock): Promise<Replica> =>
  Replica.open({ store, id: 'n1', retention: DEFAULT_RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9 });

describe('holders of a repeat (a review found both claimed two)', () => {
  it('a token this node counted under its previous incarnation is not known to be on two members', async () => {
    const clock = new ManualClock(T0);
    const replica = await open(new MemoryStore(), clock);
    await replica.hitOnce('k', 1, 'tok');
    await replica.startNewIncarnation('test');
    clock.advance(1_000);
    const repeat = await replica.hitOnce('k', 1, 'tok');
    expect(repeat.value.duplicate).toBe(true);
    expect(repeat.holders, "only this node is known to hold it: an ack above local is a 504 at once").toBe(1);
    await replica.close();
  });

  it('a batch of repeats, one of them counted only here, is not known to be on two members', async () => {
    const clock = new ManualClock(T0);
    const replica = await open(new MemoryStore(), clock);
    await replica.hitOnce('k', 1, 'mine');
    replica.view.apply('n2#bb', { hits: [{ key: 'k', second: T0, counts: [1, 1, 1, 1, 1] }], slots: [], tokens: [{ key: 'k', token: 'theirs', at: T0, n: 1 }] }, undefined, [1, T0]);
    const repeat = await replica.hitsOnce([
      { key: 'k', n: 1, id: 'mine' },
      { key: 'k', n: 1, id: 'theirs' },
    ]);
    expect(repeat.value.duplicates).toBe(2);
    expect(repeat.holders, "only this node is known to hold them all").toBe(1);
    await replica.close();
  });
});
