import type { ReplicaId } from './gcounter.ts';
import { horizon, type Retention } from './retention.ts';
import { ALL_TIERS, TIMED_TIERS, bucketStart, type Tier } from './tiers.ts';
import type { BucketRef, WindowPlan } from './window-plan.ts';

/** A slot without its sequence number: the lattice value alone. */
export interface SlotValue {
  readonly origin: ReplicaId;
  readonly key: string;
  readonly tier: Tier;
  readonly start: number;
  readonly count: number;
}

/**
 * Every G-Counter of one replica's view, in memory: key → origin → bucket →
 * count. Joining is the max per slot. Bucket starts are multiples of 1000 ms,
 * so `start + tier` names a (tier, bucket) pair uniquely with one number and
 * each (key, origin) needs one Map.
 */
export class ReplicaState {
  private readonly byKey = new Map<string, Map<ReplicaId, Map<number, number>>>();
  private readonly knownOrigins = new Set<ReplicaId>();

  get keyCount(): number {
    return this.byKey.size;
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  /** Every origin ever joined, even one whose buckets have all expired. */
  origins(): ReadonlySet<ReplicaId> {
    return this.knownOrigins;
  }

  get(origin: ReplicaId, key: string, tier: Tier, start: number): number {
    return this.byKey.get(key)?.get(origin)?.get(start + tier) ?? 0;
  }

  /** Raise `origin`'s own slot by `n` (only an origin itself does this). Returns the new count. */
  add(origin: ReplicaId, key: string, tier: Tier, start: number, n: number): number {
    const buckets = this.bucketsOf(key, origin);
    const index = start + tier;
    const count = (buckets.get(index) ?? 0) + n;
    buckets.set(index, count);
    return count;
  }

  /** Count `n` hits of `origin`'s own at instant `t`: its bucket in every tier goes up by `n`. */
  addHit(origin: ReplicaId, key: string, t: number, n: number): void {
    const buckets = this.bucketsOf(key, origin);
    for (const tier of ALL_TIERS) {
      const index = bucketStart(tier, t) + tier;
      buckets.set(index, (buckets.get(index) ?? 0) + n);
    }
  }

  /** Join one slot into the state (max). Returns true if it raised the count. */
  join(slot: SlotValue): boolean {
    const buckets = this.bucketsOf(slot.key, slot.origin);
    const index = slot.start + slot.tier;
    if ((buckets.get(index) ?? 0) >= slot.count) return false;
    buckets.set(index, slot.count);
    return true;
  }

  private bucketsOf(key: string, origin: ReplicaId): Map<number, number> {
    let origins = this.byKey.get(key);
    if (origins === undefined) {
      origins = new Map();
      this.byKey.set(key, origins);
    }
    let buckets = origins.get(origin);
    if (buckets === undefined) {
      buckets = new Map();
      origins.set(origin, buckets);
      this.knownOrigins.add(origin);
    }
    return buckets;
  }

  /** Sum of the planned buckets over every origin. */
  sum(key: string, plan: WindowPlan): number {
    const origins = this.byKey.get(key);
    if (origins === undefined) return 0;
    let total = 0;
    for (const buckets of origins.values()) total += sumBuckets(buckets, plan.buckets);
    return total;
  }

  /** Drop the buckets that retention has expired at `now`. Returns how many went. */
  dropExpired(now: number, retention: Retention): number {
    const horizons = TIMED_TIERS.map((tier) => horizon(tier, now, retention));
    let dropped = 0;
    for (const [key, origins] of this.byKey) {
      for (const [origin, buckets] of origins) {
        for (const index of buckets.keys()) {
          const tier = index % 1000;
          const limit = horizons[tier];
          if (limit !== undefined && index - tier < limit) {
            buckets.delete(index);
            dropped++;
          }
        }
        if (buckets.size === 0) origins.delete(origin);
      }
      if (origins.size === 0) this.byKey.delete(key);
    }
    return dropped;
  }

  /** Every slot, for snapshots and equality checks. */
  *slots(): IterableIterator<SlotValue> {
    for (const [key, origins] of this.byKey) {
      for (const [origin, buckets] of origins) {
        for (const [index, count] of buckets) {
          const tier = (index % 1000) as Tier;
          yield { origin, key, tier, start: index - tier, count };
        }
      }
    }
  }
}

function sumBuckets(buckets: Map<number, number>, refs: readonly BucketRef[]): number {
  let total = 0;
  for (const ref of refs) total += buckets.get(ref.start + ref.tier) ?? 0;
  return total;
}

/** The slots one hit of `n` at instant `t` raises: its bucket in every tier. */
export function hitBuckets(t: number): BucketRef[] {
  return ALL_TIERS.map((tier) => ({ tier, start: bucketStart(tier, t) }));
}
