import { SECOND_EPOCH_S, coarseIndex, inCoarseRuns, inSecondRuns, secondIndex, type BucketReads } from './bucket-reads.ts';
import { TIER_SIZE_MS, Tier } from './tiers.ts';

export { EARLIEST_MS, SECOND_EPOCH_S, coarseIndex, secondIndex } from './bucket-reads.ts';

/**
 * A key holding fewer than this many buckets per planned bucket is read by
 * walking what it holds rather than looking up every planned one: a walk
 * reads one map's entries in order, each lookup lands somewhere else in
 * memory, and a key read among ten thousand is not in the cache. Measured in
 * the count bench (10,000 keys, 30 days, ~70 coarse buckets a key), paired
 * rounds of the 30-day window: 56, 73, 73 µs of CPU a request walking
 * against 65, 80, 75 µs looking up (a microbenchmark on warm maps said the
 * opposite; the bench is what counts).
 */
const WALK_PER_LOOKUP = 3;

/**
 * Per origin, what every replica can compare cheaply: `digest`, an order-free
 * sum (mod 2^32) of a hash of every key's lifetime count, and `high`, the
 * highest seq of any change held. Two replicas holding the same complete
 * entry of an origin hold the same data of it exactly when their digests
 * match (up to hash collisions), whatever else they hold beyond it.
 * `hits` is the sum of every key's lifetime count: the origin's hits held
 * here, which the dashboard turns into hits per second per node.
 */
export interface OriginSummary {
  digest: number;
  high: number;
  hits: number;
}

/**
 * One key's buckets of one origin. Indexes are small integers (V8 keeps them
 * unboxed, so a million buckets are not a million heap objects for the GC to
 * trace): seconds since 2020 in `seconds`; bucket number × 4 + tier for the
 * minute, hour and day tiers in `coarse`; the lifetime total apart.
 * `lastSeq` is the origin's seq of the latest change held for the key: what
 * anti-entropy filters on.
 */
export class KeyBuckets {
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
    this.summary.hits += count - this.lifetime;
    this.lifetime = count;
  }

  raiseSeq(seq: number): boolean {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    if (seq > this.summary.high) this.summary.high = seq;
    return true;
  }

  get(tier: Tier, start: number): number {
    if (tier === Tier.second) return this.seconds.get(secondIndex(start)) ?? 0;
    if (tier === Tier.lifetime) return this.lifetime;
    return this.coarse.get(coarseIndex(tier, start)) ?? 0;
  }

  set(tier: Tier, start: number, count: number): void {
    if (tier === Tier.second) this.seconds.set(secondIndex(start), count);
    else if (tier === Tier.lifetime) this.setLifetime(count);
    else this.coarse.set(coarseIndex(tier, start), count);
  }

  /**
   * The sum of the buckets `reads` names: per map, a lookup per planned
   * bucket, or a walk over the buckets held when there are few enough.
   */
  sum(reads: BucketReads): number {
    let total = reads.lifetime ? this.lifetime : 0;
    const { seconds, coarse } = this;
    if (seconds.size > 0 && reads.secondCount > 0) {
      if (seconds.size >= reads.secondCount * WALK_PER_LOOKUP) total += lookUpRuns(seconds, reads.secondRuns, 1);
      else for (const [index, count] of seconds) if (inSecondRuns(reads.secondRuns, index)) total += count;
    }
    if (coarse.size > 0 && reads.coarseCount > 0) {
      if (coarse.size >= reads.coarseCount * WALK_PER_LOOKUP) total += lookUpRuns(coarse, reads.coarseRuns, 4);
      else for (const [index, count] of coarse) if (inCoarseRuns(reads.coarseRuns, index)) total += count;
    }
    return total;
  }

  add(tier: Tier, start: number, n: number): void {
    this.set(tier, start, this.get(tier, start) + n);
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

  /**
   * The same, coarser tiers first (day, hour, minute, second), the lifetime
   * last: what a repair sends. A receiver cut off part-way through a key then
   * holds no finer bucket newer than the coarser bucket around it, so a
   * coarse bucket stays at least the sum of the finer ones inside it (what
   * GET /top's cover bound relies on, crdt/top-rank.ts); the lifetime last
   * keeps the origin's digest from matching before the key is complete.
   */
  *entriesCoarseFirst(): IterableIterator<[Tier, number, number]> {
    for (const tier of [Tier.day, Tier.hour, Tier.minute] as const) {
      for (const [index, count] of this.coarse) if ((((index % 4) + 4) % 4) === tier) yield [tier, ((index - tier) / 4) * TIER_SIZE_MS[tier], count];
    }
    for (const [index, count] of this.seconds) yield [Tier.second, (index + SECOND_EPOCH_S) * 1000, count];
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

/** A well-mixed 32-bit hash of (key, lifetime count); 0 for a count of 0, so an absent key adds nothing. */
function lifetimeHash(keyHash: number, count: number): number {
  if (count === 0) return 0;
  let h = Math.imul(keyHash ^ (count >>> 0), 0x9e3779b1);
  h = Math.imul(h ^ Math.floor(count / 4_294_967_296), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The sum of `map`'s counts at every key of `runs` ([first, last] pairs whose keys step by `step`). */
function lookUpRuns(map: ReadonlyMap<number, number>, runs: readonly number[], step: number): number {
  let total = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const last = runs[i + 1] as number;
    for (let index = runs[i] as number; index <= last; index += step) total += map.get(index) ?? 0;
  }
  return total;
}
