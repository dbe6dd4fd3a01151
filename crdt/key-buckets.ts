import { SECOND_EPOCH_S, coarseIndex, secondIndex, type BucketReads } from './bucket-reads.ts';
import { dropPairs, pairGet, pairSet, sumRuns, type SortedPairs } from './sorted-pairs.ts';
import { TIER_SIZE_MS, Tier } from './tiers.ts';

export { EARLIEST_MS, SECOND_EPOCH_S, coarseIndex, secondIndex } from './bucket-reads.ts';

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
  // Made on a key's first bucket of each kind: a key holding only its lifetime (most keys, past the finer tiers' retention) holds no array.
  private seconds: SortedPairs | undefined;
  private coarse: SortedPairs | undefined;
  lifetime = 0;
  lastSeq = 0;
  /** Seconds since 2020 of the earliest bucket ever evicted (NO_COLD: none), a small integer so V8 keeps it unboxed. */
  private coldFromS = NO_COLD;

  constructor(
    /** The origin whose buckets these are ('' for sums over origins). */
    readonly origin: string,
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
    if (tier === Tier.second) return pairGet(this.seconds, secondIndex(start));
    if (tier === Tier.lifetime) return this.lifetime;
    return pairGet(this.coarse, coarseIndex(tier, start));
  }

  set(tier: Tier, start: number, count: number): void {
    if (tier === Tier.second) this.seconds = pairSet(this.seconds, secondIndex(start), count);
    else if (tier === Tier.lifetime) this.setLifetime(count);
    else this.coarse = pairSet(this.coarse, coarseIndex(tier, start), count);
  }

  /** How many second buckets, and how many minute, hour and day buckets, are held. */
  get secondCount(): number {
    return (this.seconds?.length ?? 0) / 2;
  }

  get coarseCount(): number {
    return (this.coarse?.length ?? 0) / 2;
  }

  /** The sum of the buckets `reads` names: per run, a binary search and a walk over the buckets held in it. */
  sum(reads: BucketReads): number {
    let total = reads.lifetime ? this.lifetime : 0;
    const { seconds, coarse } = this;
    if (seconds !== undefined) total += sumRuns(seconds, reads.secondRuns, 1);
    if (coarse !== undefined) total += sumRuns(coarse, reads.coarseRuns, 4);
    return total;
  }

  add(tier: Tier, start: number, n: number): void {
    this.set(tier, start, this.get(tier, start) + n);
  }

  get size(): number {
    return this.secondCount + this.coarseCount + (this.lifetime > 0 ? 1 : 0);
  }

  /** Nothing held and nothing evicted: the entry may go. One whose buckets are all in the store stays (a repair cut off before a key's lifetime leaves such keys), or its counts could not be found. */
  get isEmpty(): boolean {
    return this.size === 0 && this.coldFromS === NO_COLD;
  }

  /** Every bucket as (tier, start, count). */
  *entries(): IterableIterator<[Tier, number, number]> {
    yield* this.secondEntries();
    const coarse = this.coarse ?? [];
    for (let at = 0; at < coarse.length; at += 2) {
      const index = coarse[at] as number;
      const tier = (((index % 4) + 4) % 4) as Exclude<Tier, 0 | 4>;
      yield [tier, ((index - tier) / 4) * TIER_SIZE_MS[tier], coarse[at + 1] as number];
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
      const coarse = this.coarse ?? [];
      for (let at = 0; at < coarse.length; at += 2) {
        const index = coarse[at] as number;
        if ((((index % 4) + 4) % 4) === tier) yield [tier, ((index - tier) / 4) * TIER_SIZE_MS[tier], coarse[at + 1] as number];
      }
    }
    yield* this.secondEntries();
    if (this.lifetime > 0) yield [Tier.lifetime, 0, this.lifetime];
  }

  private *secondEntries(): IterableIterator<[Tier, number, number]> {
    const seconds = this.seconds ?? [];
    for (let at = 0; at < seconds.length; at += 2) yield [Tier.second, ((seconds[at] as number) + SECOND_EPOCH_S) * 1000, seconds[at + 1] as number];
  }

  /** The start of the earliest bucket ever evicted from here (Infinity: none): a cold bucket that starts before it holds nothing. */
  get coldFrom(): number {
    return this.coldFromS === NO_COLD ? Number.POSITIVE_INFINITY : (this.coldFromS + SECOND_EPOCH_S) * 1000;
  }

  /** A cold bucket starting at `start` is in the store, not here (a load that does not hold it). */
  noteCold(start: number): void {
    if (start < this.coldFrom) this.coldFromS = Math.max(0, start / 1000 - SECOND_EPOCH_S);
  }

  /** Evict the minute, hour and day buckets dropBefore would drop (ColdLine.evictionHorizons), noting the earliest; returns how many. */
  evictBefore(horizons: readonly number[]): number {
    const coarse = this.coarse;
    if (coarse === undefined) return 0;
    let first = Number.POSITIVE_INFINITY;
    const evicted = dropPairs(coarse, (index) => {
      const tier = (((index % 4) + 4) % 4) as Exclude<Tier, 0 | 4>;
      const start = ((index - tier) / 4) * TIER_SIZE_MS[tier];
      if (!(start < (horizons[tier] ?? Number.NEGATIVE_INFINITY))) return false;
      if (start < first) first = start;
      return true;
    });
    if (coarse.length === 0) this.coarse = undefined;
    if (first < this.coldFrom) this.coldFromS = Math.max(0, first / 1000 - SECOND_EPOCH_S);
    return evicted;
  }

  /** Copy the arrays at their exact length (an array grown by pushes keeps spare room). */
  trim(): void {
    if (this.seconds !== undefined) this.seconds = this.seconds.slice();
    if (this.coarse !== undefined) this.coarse = this.coarse.slice();
  }

  /** Drop buckets that start before their tier's horizon; returns how many. */
  dropBefore(horizons: readonly number[]): number {
    let dropped = 0;
    const secondLimit = (horizons[Tier.second] ?? -Infinity) / 1000 - SECOND_EPOCH_S;
    if (this.seconds !== undefined) {
      dropped += dropPairs(this.seconds, (index) => index < secondLimit);
      if (this.seconds.length === 0) this.seconds = undefined;
    }
    if (this.coarse !== undefined) {
      dropped += dropPairs(this.coarse, (index) => {
        const tier = (((index % 4) + 4) % 4) as Exclude<Tier, 0 | 4>;
        return ((index - tier) / 4) * TIER_SIZE_MS[tier] < (horizons[tier] ?? -Infinity);
      });
      if (this.coarse.length === 0) this.coarse = undefined;
    }
    return dropped;
  }
}

/** coldFromS of a key nothing was evicted from: the largest small integer (2^30 - 1). */
const NO_COLD = 0x3fffffff;

/** A well-mixed 32-bit hash of (key, lifetime count); 0 for a count of 0, so an absent key adds nothing. */
function lifetimeHash(keyHash: number, count: number): number {
  if (count === 0) return 0;
  let h = Math.imul(keyHash ^ (count >>> 0), 0x9e3779b1);
  h = Math.imul(h ^ Math.floor(count / 4_294_967_296), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
