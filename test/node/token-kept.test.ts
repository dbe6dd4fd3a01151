/**
 * A token observed more than once is kept whole, in memory and on disk alike
 * (a second review found two ways they parted): one that stopped proving a
 * duplicate (a new earliest observation more than a window before the old
 * first) kept a stale record on disk that took a counted hit off after a
 * restart; and one dropped in memory by its first observation came back from
 * a later chunk after a restart, so the same retry was a repeat on the
 * restarted node and a new hit on the other. Both failed before the fix.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { openReplica, peerTakes } from './token-helpers.ts';



const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const WINDOW = DEFAULT_RETENTION[0];

describe('kept tokens: kept record after a token stops proving a duplicate', () => {
  it('the lifetime count is the same after a restart', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore();
    let replica = await openReplica(store, clock);
    await replica.hitOnce('k', 1, 'tok'); // A, own, at T0
    const b = T0 + 60_000;
    peerTakes(replica, 'n2#bb', 'k', 'tok', b);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(1); // B is a duplicate of A: kept
    await replica.checkpoint(); // writes the kept record [A, B]
    // A third node's observation, a whole window before A, held back by a partition: now A and B are both past C's window.
    const c = T0 - WINDOW;
    peerTakes(replica, 'n3#cc', 'k', 'tok', c);
    const before = replica.count('k', LIFETIME_PLAN);
    expect(before).toBe(3);
    await replica.checkpoint();
    clock.advance(3 * 3_600_000);
    await replica.expire(); // drops the token in memory (no duplicates) and every chunk; the kept record stays
    expect(replica.count('k', LIFETIME_PLAN)).toBe(before);
    await replica.close();
    replica = await openReplica(store, clock);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(before);
    await replica.close();
  });
});

/**
 * This node counted token t at T0 (A); n2 took it again 2 h 5 min later (B),
 * past A's window, so B is a new hit. At 2 h 20 min retention runs, the node
 * may restart, and a retry of t comes here: what it answers and counts must
 * not depend on the restart.
 */
async function scenario(restart: boolean): Promise<{ duplicate: boolean; count: number }> {
  const clock = new ManualClock(T0);
  const store = new MemoryStore();
  let replica = await openReplica(store, clock);
  await replica.hitOnce('k', 1, 't');
  const b = T0 + WINDOW + 5 * 60_000;
  clock.advance(b - T0);
  peerTakes(replica, 'n2#bb', 'k', 't', b);
  await replica.checkpoint();
  clock.advance(15 * 60_000);
  await replica.expire();
  await replica.checkpoint();
  if (restart) {
    await replica.close();
    replica = await openReplica(store, clock);
  }
  const retry = await replica.hitOnce('k', 1, 't');
  const outcome = { duplicate: retry.value.duplicate, count: replica.count('k', LIFETIME_PLAN) };
  await replica.close();
  return outcome;
}

describe('kept tokens: a dropped token comes back from disk', () => {
  it('a retry is treated the same with and without a restart', async () => {
    const plain = await scenario(false);
    const restarted = await scenario(true);
    expect(restarted).toEqual(plain);
    // Past A's window the token is a new one, and until it is forgotten every retry counts (README: "Past the window").
    expect(plain).toEqual({ duplicate: false, count: 3 });
  });
});
