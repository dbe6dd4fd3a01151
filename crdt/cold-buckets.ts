import { compileReads, type BucketReads } from './bucket-reads.ts';
import type { KeyBuckets } from './key-buckets.ts';
import { TIER_SIZE_MS, Tier } from './tiers.ts';
import type { BucketRef, WindowPlan } from './window-plan.ts';

/**
 * Reads the durable count of one origin's bucket that the in-memory state may
 * no longer hold (0 when none is stored). Synchronous: sums, merges and
 * repairs call it from synchronous code (node/ serves it from LevelDB through
 * a bounded cache).
 */
export type ColdReader = (origin: string, key: string, tier: Tier, start: number) => number;

/** A plan split at the cold line: the reads of its resident buckets, and its cold part. */
export interface ColdSplit {
  readonly hot: BucketReads;
  readonly cold: ColdPart;
}

/**
 * The cold buckets of a plan, one object for every plan that has the same
 * ones (a window re-planned each second keeps its cold part for as long as
 * its start stays in the same bucket and the line stays put): each key's sum
 * over them is remembered here, so a count reads the store once per key, not
 * once per request. `forget` drops a key's sums when one of its cold buckets
 * changes; nothing else changes them (an eviction moves a count from memory
 * to the store unchanged).
 */
export interface ColdPart {
  /** The refs as text: the part's name among the parts kept. */
  readonly id: string;
  readonly refs: readonly BucketRef[];
  /** `refs` compiled: what a key still holds of them is summed like any read. */
  readonly reads: BucketReads;
  readonly sums: Map<string, number>;
}

/** What a read of the store costs in bucket reads of memory (a store read about 5 µs: a 30-day count of ~50 of them took 0.24 ms at p50 on a million keys; a memory read estimated at 25 ns): long answers yield by it. */
export const STORE_READ_WEIGHT = 200;

/** Keys' cold sums remembered in all: at the limit they are all dropped (about 60 B each, so about 6 MB: estimated, not measured). */
export const COLD_SUMS_LIMIT = 100_000;
/** Cold parts kept (each with its sums): a part no plan uses any more goes at the next clear. */
const COLD_PARTS_LIMIT = 64;

/** The shortest bucket that can go cold (a minute): a plan starting within it of the line reads nothing cold. */
const MIN_COLD_SIZE = TIER_SIZE_MS[Tier.minute];

/**
 * Where the hot horizon stands. A minute, hour or day bucket that ends at or
 * before `end` is cold: the state may have evicted it (ReplicaState.evictCold),
 * and then its count is the store's. Second buckets and lifetime totals are
 * never cold. `end` only rises.
 *
 * The rule that makes reads exact whatever was evicted: a held count of a
 * cold bucket is at least the stored one (a merge reads the stored count
 * before it raises it, and a checkpoint writes what is held), and a bucket
 * is evicted only once what is held of it is stored; so a cold bucket's
 * count is the held one when there is one, else the stored one.
 */
export class ColdLine {
  private end_ = Number.NEGATIVE_INFINITY;
  private readonly splits = new WeakMap<WindowPlan, { end: number; split: ColdSplit | undefined }>();
  /** The cold parts by their refs, and how many sums they hold together. */
  private parts = new Map<string, ColdPart>();
  private sums = 0;
  /** Reads of the store so far: long answers count them to know when to yield (STORE_READ_WEIGHT). */
  reads = 0;

  constructor(private reader: ColdReader | undefined = undefined) {}

  get end(): number {
    return this.end_;
  }

  /** Whether anything can be cold: a reader is attached and the line has moved. */
  get active(): boolean {
    return this.reader !== undefined && this.end_ > Number.NEGATIVE_INFINITY;
  }

  attach(reader: ColdReader): void {
    this.reader = reader;
  }

  /** Move the line to `end` (never back). */
  raise(end: number): void {
    if (end > this.end_) this.end_ = end;
  }

  isCold(tier: Tier, start: number): boolean {
    return tier !== Tier.second && tier !== Tier.lifetime && start + TIER_SIZE_MS[tier] <= this.end_;
  }

  /**
   * The count of a bucket of `entry` (one origin's buckets of `key`): the
   * held count, or for a cold bucket held at 0 the stored one. Before the
   * earliest bucket ever evicted from the entry, nothing is stored to read:
   * a key first hit last week reads no buckets of the years before.
   */
  value(entry: KeyBuckets | undefined, key: string, tier: Tier, start: number): number {
    if (entry === undefined) return 0;
    const held = entry.get(tier, start);
    if (held > 0 || this.reader === undefined || !this.isCold(tier, start) || start < entry.coldFrom) return held;
    this.reads++;
    return this.reader(entry.origin, key, tier, start);
  }

  /**
   * `plan` split at the line, or undefined when none of its buckets is cold
   * (every window that starts after the line: a plan tiles [from, to), so no
   * bucket of it ends before from + 1 minute). Cached per plan and line.
   */
  split(plan: WindowPlan): ColdSplit | undefined {
    if (!this.active || plan.from + MIN_COLD_SIZE > this.end_) return undefined;
    const cached = this.splits.get(plan);
    if (cached?.end === this.end_) return cached.split;
    const hot: BucketRef[] = [];
    const cold: BucketRef[] = [];
    for (const ref of plan.buckets) (this.isCold(ref.tier, ref.start) ? cold : hot).push(ref);
    const split = cold.length === 0 ? undefined : { hot: compileReads(hot), cold: this.partOf(cold) };
    this.splits.set(plan, { end: this.end_, split });
    return split;
  }

  /**
   * The sum remembered for `key` over `part`, if any. A part no longer kept
   * (the parts were dropped at their limit) remembers nothing: `forget`
   * reaches only the parts kept, and a plan made before the drop still
   * holds its old part.
   */
  rememberedSum(part: ColdPart, key: string): number | undefined {
    return this.parts.get(part.id) === part ? part.sums.get(key) : undefined;
  }

  remember(part: ColdPart, key: string, sum: number): void {
    if (this.parts.get(part.id) !== part) return;
    if (this.sums >= COLD_SUMS_LIMIT) {
      for (const p of this.parts.values()) p.sums.clear();
      this.sums = 0;
    }
    part.sums.set(key, sum);
    this.sums++;
  }

  /** One of `key`'s cold buckets changed: no sum of it holds. */
  forget(key: string): void {
    for (const part of this.parts.values()) if (part.sums.delete(key)) this.sums--;
  }

  private partOf(refs: readonly BucketRef[]): ColdPart {
    let id = '';
    for (const ref of refs) id += `${ref.tier}:${ref.start},`;
    let part = this.parts.get(id);
    if (part === undefined) {
      if (this.parts.size >= COLD_PARTS_LIMIT) {
        this.parts = new Map();
        this.sums = 0;
      }
      part = { id, refs, reads: compileReads(refs), sums: new Map() };
      this.parts.set(id, part);
    }
    return part;
  }

  /** The per-tier horizons (KeyBuckets.dropBefore) that drop exactly the buckets cold at `end`. */
  static evictionHorizons(end: number): number[] {
    return [Number.NEGATIVE_INFINITY, end - TIER_SIZE_MS[Tier.minute] + 1, end - TIER_SIZE_MS[Tier.hour] + 1, end - TIER_SIZE_MS[Tier.day] + 1];
  }
}
