import type { ReplicaId } from './gcounter.ts';
import { KeyBuckets } from './key-buckets.ts';
import { KeyTokens, type Observation } from './key-tokens.ts';
import { ALL_TIERS, Tier, bucketStart } from './tiers.ts';
import type { BucketRef } from './window-plan.ts';

/**
 * How long past the 1 s tier's horizon a token seen once is kept: an
 * observation held back by a partition up to this long still finds the first
 * on every node (nodes drop tokens on their own timers; see KeyTokens).
 */
export const LATE_OBSERVATION_MS = 15 * 60_000;

/** The oldest first observation a token seen once may have to be kept, given the 1 s tier's horizon. */
export function tokenDropLimit(secondHorizon: number): number {
  return secondHorizon - LATE_OBSERVATION_MS;
}

/** What a join did (bit flags): changed the state; left the token proving a duplicate. */
export const TOKEN_CHANGED = 1;
export const TOKEN_KEPT = 2;

/** One observation as a repair or a push carries it: [token, at, n] of the origin it goes with. */
export type TokenRow = readonly [token: string, at: number, n: number];

/**
 * Every key's token map, and what they prove: per key and origin, the hits
 * that are duplicates, in the buckets (every tier) of that origin's
 * observations that were not the earliest of their token. A count takes them
 * off that origin's count of the bucket, and never more than it holds there:
 * a peer's duplicates only ever lower what that peer counted (a lying peer
 * cannot take off anyone else's hits, and a duplicate known before its hits
 * arrive takes nothing off yet). They are kept up to date on every join, so a
 * read costs a little more for a key that has any, and nothing for the rest.
 */
export class TokenState {
  private readonly byKey = new Map<string, KeyTokens>();
  private readonly duplicates = new Map<string, Map<ReplicaId, KeyBuckets>>();
  private tokens = 0;
  /** The limit of the last drop: a token whose observations are all at or after it was never dropped. */
  droppedBefore = Number.NEGATIVE_INFINITY;

  /** `windowMs`: how long after a token's first observation another is a duplicate of it (the 1 s tier's retention). */
  constructor(readonly windowMs: number) {}

  /** Tokens held, over all keys. */
  get size(): number {
    return this.tokens;
  }

  /** The observation of `token` on `key` that counts, or undefined. */
  first(key: string, token: string): Observation | undefined {
    return this.byKey.get(key)?.first(token);
  }

  /** Is a hit with `token` on `key` at `now` a repeat of one counted (the first observation is within the window)? Returns that one. */
  repeatOf(key: string, token: string, now: number): Observation | undefined {
    const first = this.first(key, token);
    return first !== undefined && now - first.at < this.windowMs ? first : undefined;
  }

  /** `key`'s tokens observed more than once, with their observations. */
  *keptIn(key: string): IterableIterator<[string, readonly Observation[]]> {
    const tokens = this.byKey.get(key);
    if (tokens !== undefined) yield* tokens.kept();
  }

  /** The observations of `token` on `key` held here. */
  observationsOf(key: string, token: string): readonly Observation[] {
    return this.byKey.get(key)?.observations(token) ?? [];
  }

  /** The duplicates among any observations of one token, as this map would join them (what a fresh read works out over what members hold). */
  duplicatesAmong(observations: readonly Observation[]): Observation[] {
    const scratch = new KeyTokens(this.windowMs);
    for (const o of observations) scratch.join('t', o);
    return scratch.duplicates(scratch.observations('t'));
  }

  /** Every observation of a token observed more than once (what is kept for good), else undefined. */
  keptOf(key: string, token: string): readonly Observation[] | undefined {
    const list = this.byKey.get(key)?.observations(token) ?? [];
    return list.length > 1 ? list : undefined;
  }

  /** Does this replica hold `origin`'s observation of `token` on `key` (a checkpoint writes only what is still held)? */
  holds(key: string, token: string, origin: string): boolean {
    return this.byKey.get(key)?.observations(token).some((o) => o.origin === origin) === true;
  }

  /**
   * Join one observation. Returns 0 when nothing changed, else TOKEN_CHANGED,
   * with TOKEN_KEPT when the token is observed more than once (it is kept for
   * good, and its record of its own is written again).
   */
  join(key: string, token: string, observation: Observation): number {
    let tokens = this.byKey.get(key);
    if (tokens === undefined) {
      tokens = new KeyTokens(this.windowMs);
      this.byKey.set(key, tokens);
    }
    const before = tokens.size;
    const change = tokens.join(token, observation);
    if (change === undefined) return 0;
    this.tokens += tokens.size - before;
    for (const o of change.removed) this.addDuplicate(key, o, -1);
    for (const o of change.added) this.addDuplicate(key, o, 1);
    return tokens.isKept(token) ? TOKEN_CHANGED | TOKEN_KEPT : TOKEN_CHANGED;
  }

  /** Join every observation of `other` (the state-based join of two token maps). */
  merge(other: TokenState): void {
    for (const { key, token, origin, at, n } of other.observations()) this.join(key, token, { origin, at, n });
  }

  /** The duplicate hits of `key` in one bucket, over every origin (before each is capped by what its origin holds). */
  duplicatesIn(key: string, tier: Tier, start: number): number {
    let total = 0;
    for (const buckets of this.duplicates.get(key)?.values() ?? []) total += buckets.get(tier, start);
    return total;
  }

  /** Per origin, the buckets of duplicates of `key`, when it has any: what a count takes off. */
  duplicatesOf(key: string): ReadonlyMap<ReplicaId, KeyBuckets> | undefined {
    return this.duplicates.get(key);
  }

  /** `key`'s duplicates at `refs` (non-zero only), as [origin, index into refs, count]: what a fresh read answers beside the counts. */
  *duplicateCounts(key: string, refs: readonly BucketRef[]): IterableIterator<[ReplicaId, number, number]> {
    for (const [origin, buckets] of this.duplicates.get(key) ?? []) {
      for (let i = 0; i < refs.length; i++) {
        const ref = refs[i] as BucketRef;
        const count = buckets.get(ref.tier, ref.start);
        if (count > 0) yield [origin, i, count];
      }
    }
  }

  /** The observations `origin` made of `key`'s tokens at or after `at`: what a repair of that origin carries. */
  rowsOf(key: string, origin: ReplicaId, at: number): TokenRow[] {
    const rows: TokenRow[] = [];
    const tokens = this.byKey.get(key);
    if (tokens === undefined) return rows;
    for (const [token, list] of tokens.entries()) {
      for (const o of list) if (o.origin === origin && o.at >= at) rows.push([token, o.at, o.n]);
    }
    return rows;
  }

  /** Every observation, for snapshots and equality checks. */
  *observations(): IterableIterator<{ key: string; token: string } & Observation> {
    for (const [key, tokens] of this.byKey) {
      for (const [token, list] of tokens.entries()) for (const o of list) yield { key, token, ...o };
    }
  }

  /**
   * Forget tokens that can no longer matter (see KeyTokens.dropBefore) and the
   * duplicate buckets retention dropped. `dropped` hears of every observation
   * forgotten (the store deletes them). Returns how many tokens went.
   */
  dropExpired(horizons: readonly number[], dropped?: (key: string, token: string, observations: readonly Observation[]) => void): number {
    const limit = tokenDropLimit(horizons[Tier.second] ?? Number.NEGATIVE_INFINITY);
    this.droppedBefore = Math.max(this.droppedBefore, limit);
    let count = 0;
    for (const [key, tokens] of this.byKey) {
      count += tokens.dropBefore(limit, dropped === undefined ? undefined : (token, list) => dropped(key, token, list));
      if (tokens.size === 0) this.byKey.delete(key);
    }
    for (const [key, origins] of this.duplicates) {
      for (const [origin, buckets] of origins) {
        buckets.dropBefore(horizons);
        if (buckets.size === 0) origins.delete(origin);
      }
      if (origins.size === 0) this.duplicates.delete(key);
    }
    this.tokens -= count;
    return count;
  }

  private addDuplicate(key: string, o: Observation, sign: 1 | -1): void {
    let origins = this.duplicates.get(key);
    if (origins === undefined) {
      origins = new Map();
      this.duplicates.set(key, origins);
    }
    let buckets = origins.get(o.origin);
    if (buckets === undefined) {
      buckets = new KeyBuckets(o.origin, 0, { digest: 0, high: 0, hits: 0 });
      origins.set(o.origin, buckets);
    }
    for (const tier of ALL_TIERS) buckets.add(tier, bucketStart(tier, o.at), sign * o.n);
  }
}
