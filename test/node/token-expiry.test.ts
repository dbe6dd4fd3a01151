/**
 * What expiring tokens does to counts (both found by a review, both failed before the fix):
 *
 * 1. A token that proved a duplicate is forgotten once the day tier drops its
 *    day, but the lifetime tier keeps the hits of both observations forever.
 *    In memory the duplicate stays subtracted from the lifetime bucket; after
 *    a restart it is not: `window=all` goes up by the duplicate.
 * 2. Nodes forget single-observation tokens on their own timers (gc every
 *    60 s, their own clocks), about 2 h 1-2 min after the hit. A retry taken
 *    at 1 h 59 min on the other side of a cut of a few minutes reaches a node
 *    that already forgot the first: it counts twice there (the partition was
 *    far shorter than the window), but once on a node whose gc runs a minute
 *    later. The two hold the same slots and compute different counts for good.
 */
import { describe, expect, it } from 'vitest';
import { ReplicaState } from '../../crdt/replica-state.ts';
import type { Retention } from '../../crdt/retention.ts';
import { ALL_TIERS, Tier, bucketStart } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import type { Replica } from '../../node/replica.ts';
import type { Store } from '../../node/store.ts';
import { openReplica, peerTakes } from './token-helpers.ts';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const DAY = 86_400_000;
// The shortest retention the config allows for the day tier (a day), all tiers valid.
const SHORT: Retention = { [Tier.second]: 3_600_000, [Tier.minute]: 3_600_000, [Tier.hour]: DAY, [Tier.day]: DAY };

const open = (store: Store, clock: ManualClock): Promise<Replica> => openReplica(store, clock, SHORT);

describe('token expiry', () => {
  it('the lifetime count of a key whose duplicated token expired is the same before and after a restart', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore();
    let replica = await open(store, clock);
    await replica.hitOnce('k', 1, 'both-sides');
    const at = T0 + 5_000;
    // The other side of a partition took the same token: its hit and observation arrive by gossip.
    peerTakes(replica, 'n2#bb', 'k', 'both-sides', at, true);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(1);
    await replica.checkpoint(); // as the 5 s checkpoint timer does long before the tokens expire
    clock.advance(3 * DAY);
    await replica.expire();
    await replica.checkpoint();
    const before = replica.count('k', LIFETIME_PLAN);
    expect(before).toBe(1);
    await replica.close();
    replica = await open(store, clock);
    // The same state on disk, the same lifetime slots (1 + 1): the count must not move.
    expect(replica.count('k', LIFETIME_PLAN)).toBe(before);
    await replica.close();
  });

  it('two nodes that hold the same observations compute the same count even when they expired tokens a minute apart', () => {
    // A and C both learnt A's observation of token t at T0; B (cut off) took a retry at T0 + 1h59m.
    const A = 'a#1';
    const B = 'b#1';
    const nodeA = new ReplicaState();
    const nodeC = new ReplicaState();
    const retention: Retention = { [Tier.second]: 2 * 3_600_000, [Tier.minute]: 48 * 3_600_000, [Tier.hour]: 90 * DAY, [Tier.day]: 5 * 365 * DAY };
    const hitOf = (state: ReplicaState, origin: string, at: number, seq: number): void => {
      for (const tier of ALL_TIERS) state.mergeCount(origin, 'k', tier, bucketStart(tier, at), 1, seq);
      state.observe('k', 't', { origin, at, n: 1 });
    };
    hitOf(nodeA, A, T0, 1);
    hitOf(nodeC, A, T0, 1);
    const retryAt = T0 + 2 * 3_600_000 - 60_000; // inside the 1 s tier's retention of the first
    // Node A's gc runs a little after the 2 h (+ grace) mark; node C's runs a minute later (60 s gc interval).
    const gcA = T0 + 2 * 3_600_000 + 2 * 60_000;
    nodeA.dropExpired(gcA, retention);
    // B's hit and observation arrive at both (the partition heals) between the two gc passes.
    for (const state of [nodeA, nodeC]) {
      for (const tier of ALL_TIERS) state.mergeCount(B, 'k', tier, bucketStart(tier, retryAt), 1, 1);
      state.observe('k', 't', { origin: B, at: retryAt, n: 1 });
    }
    nodeC.dropExpired(gcA + 60_000, retention);
    nodeA.dropExpired(gcA + 60_000, retention);
    // Both hold exactly the same slots (a's 1 and b's 1 in the lifetime tier).
    const lifetime = (s: ReplicaState): number[] => [s.get(A, 'k', Tier.lifetime, 0), s.get(B, 'k', Tier.lifetime, 0)];
    expect(lifetime(nodeA)).toEqual(lifetime(nodeC));
    // The hit was retried within the 1 s tier's retention: it should count once, and the same on both.
    expect({ a: nodeA.sum('k', LIFETIME_PLAN), c: nodeC.sum('k', LIFETIME_PLAN) }).toEqual({ a: 1, c: 1 });
  });
});
