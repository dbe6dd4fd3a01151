import type { ReplicaId } from './gcounter.ts';
import { compileReads } from './bucket-reads.ts';
import { ColdLine, type ColdPart, type ColdReader } from './cold-buckets.ts';
import { KeyBuckets, type OriginSummary } from './key-buckets.ts';
export { EARLIEST_MS, type OriginSummary } from './key-buckets.ts';
import { DEFAULT_RETENTION, horizon, type Retention } from './retention.ts';
import { TopIndex } from './top-index.ts';
import { TokenState, type TokenRow } from './token-state.ts';
import type { Observation } from './key-tokens.ts';
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

/** Buckets looked at per slice of a retention pass: about a millisecond of work. */
const EXPIRE_SLICE_BUCKETS = 20_000;

/** What a join changed, as bit flags: the slot's count, the key's last seq, both or neither. */
export const COUNT_RAISED = 1;
export const SEQ_RAISED = 2;

/**
 * Every G-Counter of one replica's view, in memory: key → origin → bucket →
 * count. Joining is the max per slot.
 *
 * A key that more than one origin holds also keeps `totals`, each bucket's sum
 * over its origins, kept up to date on every change: a count reads each
 * planned bucket once, however many origins hit the key (a node that restarted
 * a few times holds several origins of itself). A key of one origin reads that
 * origin's buckets, and costs no memory more.
 */
export class ReplicaState {
  /** A key's buckets: its one origin's (most keys: no map of one entry per key), or per origin. */
  private readonly byKey = new Map<string, KeyOrigins>();
  private readonly totals = new Map<string, KeyBuckets>();
  private readonly knownOrigins = new Map<ReplicaId, OriginSummary>();
  /** Every key's idempotency tokens and the duplicates they prove (see TokenState). */
  readonly tokens: TokenState;

  /** The ranking index (`GET /top`), raised wherever a bucket's total rises; undefined when the node runs without it. */
  readonly top: TopIndex | undefined;
  /** Which buckets may be evicted, and where their counts are read from then (see ColdLine). */
  readonly cold = new ColdLine();

  /** `tokenWindowMs`: how long a token counts once (the 1 s tier's retention, which every node must share). */
  constructor(tokenWindowMs: number = DEFAULT_RETENTION[Tier.second], options: { readonly topIndex?: boolean } = {}) {
    this.tokens = new TokenState(tokenWindowMs);
    this.top = options.topIndex === false ? undefined : new TopIndex();
  }

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

  /** The sum of every key's lifetime count of `origin` held here: the hits it took, as far as this replica knows. */
  originHits(origin: ReplicaId): number {
    return this.knownOrigins.get(origin)?.hits ?? 0;
  }

  get(origin: ReplicaId, key: string, tier: Tier, start: number): number {
    return this.cold.value(originEntry(this.byKey.get(key), origin), key, tier, start);
  }

  /** Serve evicted buckets from `reader` (the store). */
  attachColdReader(reader: ColdReader): void {
    this.cold.attach(reader);
  }

  /** Raise `origin`'s own slot by `n` (only an origin itself does this). Returns the new count. */
  add(origin: ReplicaId, key: string, tier: Tier, start: number, n: number, seq: number): number {
    const entry = this.entryOf(key, origin);
    const count = this.cold.value(entry, key, tier, start) + n;
    entry.set(tier, start, count);
    if (this.cold.isCold(tier, start)) this.cold.forget(key);
    entry.raiseSeq(seq);
    this.raiseTotal(key, tier, start, n, count, this.totals.get(key));
    return count;
  }

  /**
   * Count `n` hits of `origin`'s own at instant `t`, in batch `seq`: its
   * bucket in every tier goes up by `n`. Returns the five new counts (second,
   * minute, hour, day, lifetime), which is what gossip pushes.
   */
  addHit(origin: ReplicaId, key: string, t: number, n: number, seq: number): [number, number, number, number, number] {
    const entry = this.entryOf(key, origin);
    const totals = this.totals.get(key);
    const counts: [number, number, number, number, number] = [0, 0, 0, 0, 0];
    for (const tier of ALL_TIERS) {
      const start = bucketStart(tier, t);
      // A hit is never cold but when the log replays a batch older than the hot horizon.
      const count = this.cold.value(entry, key, tier, start) + n;
      entry.set(tier, start, count);
      if (this.cold.isCold(tier, start)) this.cold.forget(key);
      this.raiseTotal(key, tier, start, n, count, totals);
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
    const old = this.cold.value(entry, key, tier, start);
    if (old >= count) return changed;
    entry.set(tier, start, count);
    if (this.cold.isCold(tier, start)) this.cold.forget(key);
    this.raiseTotal(key, tier, start, count - old, count, this.totals.get(key));
    return changed | COUNT_RAISED;
  }

  /**
   * A stored slot past the cold line, at load: not held. The key's entry
   * notes it (its seq, and how far back its cold buckets go), and the
   * ranking counts it: a bucket's total adds up as each origin's slot comes
   * (a load reads each stored slot once).
   */
  loadCold(origin: ReplicaId, key: string, tier: Tier, start: number, count: number, seq: number): void {
    const entry = this.entryOf(key, origin);
    entry.raiseSeq(seq);
    entry.noteCold(start);
    this.top?.add(key, tier, start, count);
  }

  /**
   * One key's buckets of one origin, per timed tier those starting in
   * [spans[2t], spans[2t+1]], and its lifetime: what a checkpoint writes for a
   * key gossip changed. Steps through the bucket starts in range, or through
   * the buckets held when there are fewer: a hot key holds hours of seconds,
   * and a push changed one.
   */
  *bucketsIn(origin: ReplicaId, key: string, spans: ArrayLike<number>): IterableIterator<[Tier, number, number]> {
    const entry = originEntry(this.byKey.get(key), origin);
    if (entry === undefined) return;
    for (const tier of TIMED_TIERS) {
      const first = spans[2 * tier] ?? Number.POSITIVE_INFINITY;
      const last = spans[2 * tier + 1] ?? Number.NEGATIVE_INFINITY;
      if (!(first <= last)) continue;
      const size = TIER_SIZE_MS[tier];
      if ((last - first) / size + 1 <= (tier === Tier.second ? entry.secondCount : entry.coarseCount)) {
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
    return originEntry(this.byKey.get(key), origin)?.lastSeq ?? 0;
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
   * The same, one key at a time (its buckets as [tier, start, count],
   * coarser tiers first and the lifetime last: see
   * KeyBuckets.entriesCoarseFirst), read lazily: a repair of a million keys is produced a
   * chunk at a time between turns of the event loop. Keys added while it is
   * under way are visited too (Map iteration order).
   *
   * `part` picks what of each key: all of it; its held minute, hour and
   * day buckets and its tokens; or its second buckets and lifetime. A
   * repair that also reads evicted buckets from the store sends those in
   * between (node/cold-repair.ts): a second's minute may be in the store
   * only, and a lifetime goes last.
   */
  *changedKeys(origin: ReplicaId, seq: number, at: number, part: 'whole' | 'coarse' | 'rest' = 'whole'): IterableIterator<KeyChange> {
    for (const [key, origins] of this.byKey) {
      const entry = originEntry(origins, origin);
      if (entry === undefined || entry.lastSeq <= seq) continue;
      const buckets: [Tier, number, number][] = [];
      for (const bucket of entry.entriesCoarseFirst()) {
        const [tier, start] = bucket;
        const wanted = part === 'whole' || (part === 'coarse') === (tier !== Tier.second && tier !== Tier.lifetime);
        if (wanted && (tier === Tier.lifetime || start + TIER_SIZE_MS[tier] > at)) buckets.push(bucket);
      }
      if (part === 'rest') {
        if (buckets.length > 0) yield { key, buckets };
        continue;
      }
      // The tokens it observed in those batches: stamps follow seqs, so none is older than `at`.
      const tokens = this.tokens.rowsOf(key, origin, at);
      if (part === 'coarse' && buckets.length === 0 && tokens.length === 0) continue;
      yield tokens.length === 0 ? { key, buckets } : { key, buckets, tokens };
    }
  }

  /** Sum of the planned buckets over every origin, less the duplicates the key's tokens prove. */
  sum(key: string, plan: WindowPlan): number {
    const buckets = this.bucketsOf(key);
    if (buckets === undefined) return 0;
    const split = this.cold.split(plan);
    let total = buckets.sum(split?.hot ?? plan.reads ?? compileReads(plan.buckets));
    // Cold buckets origin by origin: totals over origins are never kept for them.
    if (split !== undefined) total += this.coldSum(key, split.cold);
    const duplicates = this.tokens.duplicatesOf(key);
    if (duplicates !== undefined) {
      // Each origin's duplicates off that origin's own count, never below zero (see TokenState).
      const origins = this.byKey.get(key);
      for (const [origin, dup] of duplicates) {
        const own = originEntry(origins, origin);
        for (const ref of plan.buckets) {
          const d = dup.get(ref.tier, ref.start);
          if (d > 0) total -= Math.min(d, this.cold.value(own, key, ref.tier, ref.start));
        }
      }
    }
    // Past 2^53 a sum is no longer exact; it can get there only across origins (each is bounded where hits enter).
    return Math.min(total, Number.MAX_SAFE_INTEGER);
  }

  /** Join one origin's observation of `token` on `key` (see TokenState.join: 0 when it changed nothing). */
  observe(key: string, token: string, observation: Observation): number {
    return this.tokens.join(key, token, observation);
  }

  /**
   * `key`'s counts at `refs`, origin by origin (non-zero ones only), as
   * [origin, index into refs, count]: what a peer answers a fresh read with.
   */
  *originCounts(key: string, refs: readonly BucketRef[]): IterableIterator<[ReplicaId, number, number]> {
    for (const entry of eachOrigin(this.byKey.get(key))) {
      const origin = entry.origin;
      for (let i = 0; i < refs.length; i++) {
        const ref = refs[i] as BucketRef;
        const count = this.cold.value(entry, key, ref.tier, ref.start);
        if (count > 0) yield [origin, i, count];
      }
    }
  }

  /** The lifetime total of `key` over every origin. */
  lifetimeTotal(key: string): number {
    return this.bucketsOf(key)?.lifetime ?? 0;
  }

  /** What a read of `key` reads: its totals over origins, or its one origin's buckets. */
  private bucketsOf(key: string): KeyBuckets | undefined {
    const totals = this.totals.get(key);
    if (totals !== undefined) return totals;
    const origins = this.byKey.get(key);
    if (origins === undefined || origins instanceof KeyBuckets) return origins;
    for (const only of origins.values()) return only;
    return undefined;
  }

  /**
   * Drop the buckets that retention has expired at `now`, and the tokens past
   * their window (`droppedToken` hears of each). Returns how many buckets went.
   */
  dropExpired(now: number, retention: Retention, droppedToken?: (key: string, token: string, observations: readonly Observation[]) => void): number {
    let dropped = 0;
    for (const sofar of this.expireInSlices(now, retention, droppedToken)) dropped = sofar;
    return dropped;
  }

  /**
   * The same, a slice at a time: it yields the buckets dropped so far after
   * every EXPIRE_SLICE_BUCKETS buckets looked at, so a caller can let other
   * work run in between (a pass over a million keys is seconds of work). Each
   * key is done within one slice. A key changed between slices is visited if
   * not visited yet (Map order); what is merged into a visited one waits for
   * the next pass, which the planner never reads anyway.
   */
  *expireInSlices(now: number, retention: Retention, droppedToken?: (key: string, token: string, observations: readonly Observation[]) => void): Generator<number, number> {
    const horizons = TIMED_TIERS.map((tier) => horizon(tier, now, retention));
    this.tokens.dropExpired(horizons, droppedToken);
    this.top?.dropBefore(horizons);
    let dropped = 0;
    let looked = 0;
    for (const [key, origins] of this.byKey) {
      if (origins instanceof KeyBuckets) {
        looked += origins.size;
        dropped += origins.dropBefore(horizons);
        if (origins.isEmpty) this.byKey.delete(key);
      } else {
        for (const [origin, entry] of origins) {
          looked += entry.size;
          dropped += entry.dropBefore(horizons);
          if (entry.isEmpty) origins.delete(origin);
        }
        // Every origin dropped the same buckets, so their totals go too; with one origin left, it is its own total.
        const totals = this.totals.get(key);
        if (totals !== undefined) {
          if (origins.size <= 1) this.totals.delete(key);
          else totals.dropBefore(horizons);
        }
        if (origins.size === 0) this.byKey.delete(key);
        else if (origins.size === 1) for (const only of origins.values()) this.byKey.set(key, only);
      }
      if (looked >= EXPIRE_SLICE_BUCKETS) {
        looked = 0;
        yield dropped;
      }
    }
    yield dropped;
    return dropped;
  }

  /**
   * Evict the buckets that are cold once the line is at `end` (ColdLine),
   * a slice at a time like expireInSlices, except those of (key, origin)
   * pairs `unwritten` names: what is held of them may not be in the store
   * yet. The line moves first, so a read meanwhile finds an evicted bucket
   * in the store. Totals over origins lose their cold buckets whatever
   * `unwritten` says: reads never use them. Yields buckets evicted so far.
   */
  *evictCold(end: number, unwritten: (key: string, origin: ReplicaId) => boolean): Generator<number, number> {
    this.cold.raise(end);
    const horizons = ColdLine.evictionHorizons(this.cold.end);
    let evicted = 0;
    let looked = 0;
    for (const [key, origins] of this.byKey) {
      for (const entry of eachOrigin(origins)) {
        looked += 1 + entry.coarseCount;
        if (entry.coarseCount > 0 && !unwritten(key, entry.origin)) evicted += entry.evictBefore(horizons);
      }
      this.totals.get(key)?.dropBefore(horizons);
      if (looked >= EXPIRE_SLICE_BUCKETS) {
        looked = 0;
        yield evicted;
      }
    }
    yield evicted;
    return evicted;
  }

  /** The sum over origins of `key`'s cold buckets: what each holds of them, and from the earliest it evicted, what the store holds where it holds none (remembered: see ColdPart). */
  private coldSum(key: string, part: ColdPart): number {
    const remembered = this.cold.rememberedSum(part, key);
    if (remembered !== undefined) return remembered;
    let total = 0;
    for (const entry of eachOrigin(this.byKey.get(key))) {
      if (entry.coarseCount > 0) total += entry.sum(part.reads);
      const from = entry.coldFrom;
      if (from === Number.POSITIVE_INFINITY) continue;
      for (const ref of part.refs) if (ref.start >= from && entry.get(ref.tier, ref.start) === 0) total += this.cold.value(entry, key, ref.tier, ref.start);
    }
    this.cold.remember(part, key, total);
    return total;
  }

  /** The sum over origins of a cold bucket of `key`. */
  private coldTotal(key: string, tier: Tier, start: number): number {
    let total = 0;
    for (const entry of eachOrigin(this.byKey.get(key))) total += this.cold.value(entry, key, tier, start);
    return total;
  }

  /** Give back the spare room of every key's arrays: after a load, which grows them a bucket at a time. */
  trim(): void {
    for (const origins of this.byKey.values()) for (const entry of eachOrigin(origins)) entry.trim();
    for (const totals of this.totals.values()) totals.trim();
  }

  /** Every slot, for snapshots and equality checks. */
  *slots(): IterableIterator<SlotValue> {
    for (const [key, origins] of this.byKey) {
      for (const entry of eachOrigin(origins)) {
        const origin = entry.origin;
        for (const [tier, start, count] of entry.entries()) yield { origin, key, tier, start, count };
      }
    }
  }

  /** An origin's slot of `key` rose by `n` to `count`: so does the key's total over origins (kept when it has several), in the ranking index too. */
  private raiseTotal(key: string, tier: Tier, start: number, n: number, count: number, totals: KeyBuckets | undefined): void {
    if (totals !== undefined && this.cold.isCold(tier, start)) {
      // Cold buckets have no totals over origins (reads sum them origin by origin): the ranking gets the sum.
      this.top?.raise(key, tier, start, this.coldTotal(key, tier, start));
      return;
    }
    totals?.add(tier, start, n);
    this.top?.raise(key, tier, start, totals === undefined ? count : totals.get(tier, start));
  }

  private entryOf(key: string, origin: ReplicaId): KeyBuckets {
    const origins = this.byKey.get(key);
    if (origins instanceof KeyBuckets) {
      if (origins.origin === origin) return origins;
    } else if (origins !== undefined) {
      const entry = origins.get(origin);
      if (entry !== undefined) return entry;
    }
    let summary = this.knownOrigins.get(origin);
    if (summary === undefined) {
      summary = { digest: 0, high: 0, hits: 0 };
      this.knownOrigins.set(origin, summary);
    }
    const entry = new KeyBuckets(origin, stringHash(key), summary);
    if (origins === undefined) {
      this.byKey.set(key, entry);
    } else if (origins instanceof KeyBuckets) {
      // A second origin: the totals start as the first one's buckets.
      const totals = new KeyBuckets('', 0, { digest: 0, high: 0, hits: 0 });
      for (const [tier, start, count] of origins.entries()) totals.set(tier, start, count);
      this.totals.set(key, totals);
      this.byKey.set(key, new Map([[origins.origin, origins], [origin, entry]]));
    } else {
      origins.set(origin, entry);
    }
    return entry;
  }
}

type KeyOrigins = KeyBuckets | Map<ReplicaId, KeyBuckets>;

function originEntry(origins: KeyOrigins | undefined, origin: ReplicaId): KeyBuckets | undefined {
  if (origins instanceof KeyBuckets) return origins.origin === origin ? origins : undefined;
  return origins?.get(origin);
}

function eachOrigin(origins: KeyOrigins | undefined): Iterable<KeyBuckets> {
  if (origins === undefined) return [];
  return origins instanceof KeyBuckets ? [origins] : origins.values();
}

/** One key's buckets of one origin, as a repair carries them. */
export interface KeyChange {
  readonly key: string;
  readonly buckets: readonly (readonly [Tier, number, number])[];
  /** The tokens the origin observed on the key in the same batches. */
  readonly tokens?: readonly TokenRow[];
}

/** FNV-1a over the UTF-16 units of a string: computed once per (key, origin). */
function stringHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The slots one hit at instant `t` raises: its bucket in every tier. */
export function hitBuckets(t: number): BucketRef[] {
  return ALL_TIERS.map((tier) => ({ tier, start: bucketStart(tier, t) }));
}
