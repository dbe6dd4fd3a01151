/**
 * Review 2: a repeat is answered "held by two members" (so ?ack=majority of
 * three is a 200 at once) whenever the first observation of one of its tokens
 * has another origin: also when that origin is this node's own earlier
 * incarnation, and also for a batch whose other repeats only this node holds.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { openReplica, peerTakes } from './token-helpers.ts';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

describe('holders of a repeat (a review found both claimed two)', () => {
  it('a token this node counted under its previous incarnation is not known to be on two members', async () => {
    const clock = new ManualClock(T0);
    const replica = await openReplica(new MemoryStore(), clock);
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
    const replica = await openReplica(new MemoryStore(), clock);
    await replica.hitOnce('k', 1, 'mine');
    peerTakes(replica, 'n2#bb', 'k', 'theirs', T0);
    const repeat = await replica.hitsOnce([
      { key: 'k', n: 1, id: 'mine' },
      { key: 'k', n: 1, id: 'theirs' },
    ]);
    expect(repeat.value.duplicates).toBe(2);
    expect(repeat.holders, "only this node is known to hold them all").toBe(1);
    await replica.close();
  });
});
