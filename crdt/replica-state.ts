import type { ReplicaId } from './gcounter.ts';
import { horizon, type Retention } from './retention.ts';
import { ALL_TIERS, TIMED_TIERS, TIER_SIZE_MS, Tier, bucketStart } from './tiers.ts';
import type { BucketRef, WindowPlan } from './window-plan.ts';

/** A slot without its sequence number: the lattice value alone. */
export interface SlotValue {
  readonly origin: ReplicaId;
  readonly key: string;
  readonly tier: Tier;
  readonly start: number;
  readonly count: number;
}

/** Seconds are counted from 2020-01-01 so a second bucket's index stays a small integer until 2088. */
const SECOND_EPOCH_S = 1_577_836_800;
/** The earliest instant any bucket can hold: nothing is counted before 2020-01-01 (UTC). */
export const EARLIEST_MS = SECOND_EPOCH_S * 1000;

/** What a join changed, as bit flags: the slot's count, the key's last seq, both or neither. */
export const COUNT_RAISED = 1;
export const SEQ_RAISED = 2;

/**
 * Per origin, what every replica can compare cheaply: `digest`, an order-free
 * sum (mod 2^32) of a hash of every key's lifetime count, and `high`, the
 * highest seq of any change held. Two replicas holding the same complete
 * entry of an origin hold the same data of it exactly when their digests
 * match (up to hash collisions), whatever else they hold beyond it.
 */
export interface OriginSummary {
  digest: number;
  high: number;
}

/**
 * One key's buckets of one origin. Indexes are small integers (V8 keeps them
 * unboxed, so a million buckets are not a million heap objects for the GC to
 * trace): seconds since 2020 in `seconds`; bucket number × 4 + tier for the
 * minute, hour and day tiers in `coarse`; the lifetime total apart.
 * `lastSeq` is the origin's seq of the latest change held for the key: what
 * anti-entropy filters on.
 */
class KeyOrigin {
  readonly seconds = new Map<number, number>();
  readonly coarse = new Map<number, number>();
  lifetime = 0;
  lastSeq = 0;

  constructor(
    private readonly keyHash: number,
    private readonly summary: OriginSummary,
  ) {}

  private setLifetime(count: number): void {
    this.summary.digest = (this.summary.digest - lifetimeHash(this.keyHash, this.lifetime) + lifetimeHash(this.keyHash, count)) >>> 0;
    this.lifetime = count;
  }

  raiseSeq(seq: number): boolean {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    if (seq > this.summary.high) this.summary.high = seq;
    return true;
  }

  get(tier: Tier, start: number): number {
    if (tier === Tier.second) return this.seconds.get(start / 1000 - SECOND_EPOCH_S) ?? 0;
    if (tier === Tier.lifetime) return this.lifetime;
    return this.coarse.get((start / TIER_SIZE_MS[tier]) * 4 + tier) ?? 0;
  }

  set(tier: Tier, start: number, count: number): void {
    if (tier === Tier.second) this.seconds.set(start / 1000 - SECOND_EPOCH_S, count);
    else if (tier === Tier.lifetime) this.setLifetime(count);
    else this.coarse.set((start / TIER_SIZE_MS[tier]) * 4 + tier, count);
  }

  get size(): number {
    return this.seconds.size + this.coarse.size + (this.lifetime > 0 ? 1 : 0);
  }

  /** Every bucket as (tier, start, count). */
  *entries(): IterableIterator<[Tier, number, number]> {
    for (const [index, count] of this.seconds) yield [Tier.second, (index + SECOND_EPOCH_S) * 1000, count];
    for (const [index, count] of this.coarse) {
      const tier = (((index % 4) + 4) % 4) as Exclude<Tier, 0 | 4>;
      yield [tier, ((index - tier) / 4) * TIER_SIZE_MS[tier], count];
    }
    if (this.lifetime > 0) yield [Tier.lifetime, 0, this.lifetime];
  }

  /** Drop buckets that start before their tier's horizon; returns how many. */
  dropBefore(horizons: readonly number[]): number {
    let dropped = 0;
    const secondLimit = (horizons[Tier.second] ?? -Infinity) / 1000 - SECOND_EPOCH_S;
    for (const index of this.seconds.keys()) {
      if (index < secondLimit) {
        this.seconds.delete(index);
        dropped++;
      }
    }
    for (const index of this.coarse.keys()) {
      const tier = (((index % 4) + 4) % 4) as Exclude<Tier, 0 | 4>;
      if (((index - tier) / 4) * TIER_SIZE_MS[tier] < (horizons[tier] ?? -Infinity)) {
        this.coarse.delete(index);
        dropped++;
      }
    }
    return dropped;
  }
}

/**
 * Every G-Counter of one replica's view, in memory: key → origin → bucket →
 * count. Joining is the max per slot.
 */
export class ReplicaState {
  private readonly byKey = new Map<string, Map<ReplicaId, KeyOrigin>>();
  private readonly knownOrigins = new Map<ReplicaId, OriginSummary>();

  get keyCount(): number {
    return this.byKey.size;
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  /** Every origin ever joined, even one whose buckets have all expired. */
  origins(): IterableIterator<ReplicaId> {
    return this.knownOrigins.keys();
  }

  get originCount(): number {
    return this.knownOrigins.size;
  }

  /** The digest and highest seq of what is held of `origin` (see OriginSummary). */
  summary(origin: ReplicaId): Readonly<OriginSummary> | undefined {
    return this.knownOrigins.get(origin);
  }

  get(origin: ReplicaId, key: string, tier: Tier, start: number): number {
    return this.byKey.get(key)?.get(origin)?.get(tier, start) ?? 0;
  }

  /** Raise `origin`'s own slot by `n` (only an origin itself does this). Returns the new count. */
  add(origin: ReplicaId, key: string, tier: Tier, start: number, n: number, seq: number): number {
    const entry = this.entryOf(key, origin);
    const count = entry.get(tier, start) + n;
    entry.set(tier, start, count);
    entry.raiseSeq(seq);
    return count;
  }

  /**
   * Count `n` hits of `origin`'s own at instant `t`, in batch `seq`: its
   * bucket in every tier goes up by `n`. Returns the five new counts (second,
   * minute, hour, day, lifetime), which is what gossip pushes.
   */
  addHit(origin: ReplicaId, key: string, t: number, n: number, seq: number): [number, number, number, number, number] {
    const entry = this.entryOf(key, origin);
    const counts: [number, number, number, number, number] = [0, 0, 0, 0, 0];
    for (const tier of ALL_TIERS) {
      const start = bucketStart(tier, t);
      const count = entry.get(tier, start) + n;
      entry.set(tier, start, count);
      counts[tier] = count;
    }
    entry.raiseSeq(seq);
    return counts;
  }

  /** Join one slot into the state (max), known to be from `origin`'s batch `seq` or earlier. Returns true if it raised the count. */
  join(slot: SlotValue, seq = 0): boolean {
    return (this.merge(slot, seq) & COUNT_RAISED) !== 0;
  }

  /**
   * Join one slot and say what changed (COUNT_RAISED, SEQ_RAISED). A raised
   * seq matters even when the count did not move: it is what anti-entropy
   * filters on, so it must be made durable like a count.
   */
  merge(slot: SlotValue, seq = 0): number {
    return this.mergeCount(slot.origin, slot.key, slot.tier, slot.start, slot.count, seq);
  }

  /** The same without a slot object (the receiving end of a big repair joins millions). */
  mergeCount(origin: ReplicaId, key: string, tier: Tier, start: number, count: number, seq: number): number {
    const entry = this.entryOf(key, origin);
    const changed = entry.raiseSeq(seq) ? SEQ_RAISED : 0;
    if (entry.get(tier, start) >= count) return changed;
    entry.set(tier, start, count);
    return changed | COUNT_RAISED;
  }

  /**
   * One key's buckets of one origin, per timed tier those starting in
   * [spans[2t], spans[2t+1]], and its lifetime: what a checkpoint writes for a
   * key gossip changed. Steps through the bucket starts in range, or through
   * the buckets held when there are fewer: a hot key holds hours of seconds,
   * and a push changed one.
   */
  *bucketsIn(origin: ReplicaId, key: string, spans: ArrayLike<number>): IterableIterator<[Tier, number, number]> {
    const entry = this.byKey.get(key)?.get(origin);
    if (entry === undefined) return;
    for (const tier of TIMED_TIERS) {
      const first = spans[2 * tier] ?? Number.POSITIVE_INFINITY;
      const last = spans[2 * tier + 1] ?? Number.NEGATIVE_INFINITY;
      if (!(first <= last)) continue;
      const size = TIER_SIZE_MS[tier];
      if ((last - first) / size + 1 <= (tier === Tier.second ? entry.seconds.size : entry.coarse.size)) {
        for (let start = first; start <= last; start += size) {
          const count = entry.get(tier, start);
          if (count > 0) yield [tier, start, count];
        }
        continue;
      }
      for (const bucket of entry.entries()) if (bucket[0] === tier && bucket[1] >= first && bucket[1] <= last) yield bucket;
    }
    if (entry.lifetime > 0) yield [Tier.lifetime, 0, entry.lifetime];
  }

  /** The last seq of `origin` that changed `key` (0: none held). */
  lastSeq(origin: ReplicaId, key: string): number {
    return this.byKey.get(key)?.get(origin)?.lastSeq ?? 0;
  }

  /**
   * The slots of `origin` that may have changed after its batch `seq` whose
   * last hit was at `at`: keys changed after `seq`, and of those the buckets
   * that end after `at` (an origin stamps hits in order, so nothing older can
   * have changed since).
   */
  *changedSince(origin: ReplicaId, seq: number, at: number): IterableIterator<SlotValue> {
    for (const change of this.changedKeys(origin, seq, at)) {
      for (const [tier, start, count] of change.buckets) yield { origin, key: change.key, tier, start, count };
    }
  }

  /**
   * The same, one key at a time (its buckets as [tier, start, count], the
   * lifetime last), read lazily: a repair of a million keys is produced a
   * chunk at a time between turns of the event loop. Keys added while it is
   * under way are visited too (Map iteration order).
   */
  *changedKeys(origin: ReplicaId, seq: number, at: number): IterableIterator<KeyChange> {
    for (const [key, origins] of this.byKey) {
      const entry = origins.get(origin);
      if (entry === undefined || entry.lastSeq <= seq) continue;
      const buckets: [Tier, number, number][] = [];
      for (const bucket of entry.entries()) {
        const [tier, start] = bucket;
        if (tier === Tier.lifetime || start + TIER_SIZE_MS[tier] > at) buckets.push(bucket);
      }
      yield { key, buckets };
    }
  }

  /** Sum of the planned buckets over every origin. */
  sum(key: string, plan: WindowPlan): number {
    const origins = this.byKey.get(key);
    if (origins === undefined) return 0;
    let total = 0;
    for (const entry of origins.values()) {
      for (const ref of plan.buckets) total += entry.get(ref.tier, ref.start);
    }
    return total;
  }

  /** Drop the buckets that retention has expired at `now`. Returns how many went. */
  dropExpired(now: number, retention: Retention): number {
    const horizons = TIMED_TIERS.map((tier) => horizon(tier, now, retention));
    let dropped = 0;
    for (const [key, origins] of this.byKey) {
      for (const [origin, entry] of origins) {
        dropped += entry.dropBefore(horizons);
        if (entry.size === 0) origins.delete(origin);
      }
      if (origins.size === 0) this.byKey.delete(key);
    }
    return dropped;
  }

  /** Every slot, for snapshots and equality checks. */
  *slots(): IterableIterator<SlotValue> {
    for (const [key, origins] of this.byKey) {
      for (const [origin, entry] of origins) {
        for (const [tier, start, count] of entry.entries()) yield { origin, key, tier, start, count };
      }
    }
  }

  private entryOf(key: string, origin: ReplicaId): KeyOrigin {
    let origins = this.byKey.get(key);
    if (origins === undefined) {
      origins = new Map();
      this.byKey.set(key, origins);
    }
    let entry = origins.get(origin);
    if (entry === undefined) {
      let summary = this.knownOrigins.get(origin);
      if (summary === undefined) {
        summary = { digest: 0, high: 0 };
        this.knownOrigins.set(origin, summary);
      }
      entry = new KeyOrigin(stringHash(key), summary);
      origins.set(origin, entry);
    }
    return entry;
  }
}

/** One key's buckets of one origin, as a repair carries them. */
export interface KeyChange {
  readonly key: string;
  readonly buckets: readonly (readonly [Tier, number, number])[];
}

/** FNV-1a over the UTF-16 units of a string: computed once per (key, origin). */
function stringHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A well-mixed 32-bit hash of (key, lifetime count); 0 for a count of 0, so an absent key adds nothing. */
function lifetimeHash(keyHash: number, count: number): number {
  if (count === 0) return 0;
  let h = Math.imul(keyHash ^ (count >>> 0), 0x9e3779b1);
  h = Math.imul(h ^ Math.floor(count / 4_294_967_296), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The slots one hit at instant `t` raises: its bucket in every tier. */
export function hitBuckets(t: number): BucketRef[] {
  return ALL_TIERS.map((tier) => ({ tier, start: bucketStart(tier, t) }));
}
