import type { KeyChange, ReplicaState } from '../crdt/replica-state.ts';
import type { Slot } from '../crdt/slot.ts';
import { TIER_SIZE_MS, Tier, bucketStart, type TimedTier } from '../crdt/tiers.ts';
import type { KeyChanges } from '../gossip/replica-view.ts';
import type { Logger } from './logger.ts';
import type { CorruptRecord, Store } from './store.ts';

/** Cold tiers in the order a repair sends them: coarsest first (see below). */
const COLD_TIERS = [Tier.day, Tier.hour, Tier.minute] as const;

/** Slots read from the store at a time; one page is read ahead, so at most two are held (about 200 B a slot). */
export const COLD_PAGE_SLOTS = 1_000;

/**
 * A repair of `origin` for a peer that holds it only up to a time the hot
 * horizon has passed: some of what changed since lives only in the store.
 * Three parts, in this order:
 *
 * 1. The held minute, hour and day buckets and the tokens of every changed
 *    key, from memory (ReplicaState.changedKeys 'coarse').
 * 2. The store's cold buckets of the origin's changed keys (a key's last
 *    seq past the peer's), day, then hour, then minute tier, a page at a
 *    time (`ready` is false while a page is being read). It starts after
 *    part 1, and reads up to where the cold line is then: a bucket evicted
 *    before part 1 reached its key was in the store before eviction, so
 *    part 2 finds it.
 * 3. Every changed key's second buckets and lifetime, from memory
 *    ('rest'): a second's minute may be in the store only, so it comes
 *    after part 2; the lifetime last, so that a peer cut off part-way holds
 *    no lifetime its buckets do not add up to (the origin's digest, a sum
 *    over lifetimes, does not match before it is whole).
 *
 * The order keeps GET /top's cover bound on a peer cut off part-way: every
 * bucket sent comes after the coarser bucket around it (part 1 sends a key
 * coarsest first, and a held bucket's containers are held too, since they
 * end later; a cold bucket's cold container went in an earlier tier of part
 * 2, and its held containers, which part 1 sent, are sent again with it at
 * their current counts; seconds come after every minute).
 *
 * A page that cannot be read (the store failed) ends the changes early with
 * `failed` set: the repair then vouches for nothing (RepairChunks).
 */
export class ColdRepair implements KeyChanges {
  private part: 1 | 2 | 3 | 4 = 1;
  private readonly held: Iterator<KeyChange>;
  /** Part 1's next change, taken to learn whether part 1 is over. */
  private peeked: IteratorResult<KeyChange> | undefined;
  private rest: Iterator<KeyChange> | undefined;
  private tier = 0;
  private page: readonly Slot[] = [];
  private at = 0;
  /** The page read ahead (one read at a time), where the next read resumes, and whether no read is left. */
  private ahead: { slots: readonly Slot[]; last: Slot | undefined; end: boolean } | undefined;
  private after: Slot | undefined;
  private exhausted = false;
  private coldEnd = Number.NEGATIVE_INFINITY;
  failed = false;

  constructor(
    private readonly deps: { readonly state: ReplicaState; readonly store: Store; readonly logger: Logger },
    private readonly origin: string,
    private readonly seq: number,
    private readonly since: number,
  ) {
    this.held = deps.state.changedKeys(origin, seq, since, 'coarse');
  }

  /** Whether `next` may be called: false while part 2 waits on a page. */
  get ready(): boolean {
    if (this.part === 1) {
      this.peeked ??= this.held.next();
      if (this.peeked.done !== true) return true;
      this.part = 2;
      this.coldEnd = this.deps.state.cold.end;
      this.read();
    }
    if (this.part === 2 && this.at >= this.page.length) this.turnPage();
    return this.part !== 2 || this.at < this.page.length;
  }

  next(): IteratorResult<KeyChange> {
    if (!this.ready) throw new Error('ColdRepair.next called while it waits on the store');
    if (this.part === 1) {
      const step = this.peeked as IteratorResult<KeyChange>;
      this.peeked = undefined;
      return step;
    }
    if (this.part === 2) return { done: false, value: this.changeOf(this.page[this.at++] as Slot) };
    if (this.part === 3) {
      this.rest ??= this.deps.state.changedKeys(this.origin, this.seq, this.since, 'rest');
      const step = this.rest.next();
      if (step.done !== true) return step;
      this.part = 4;
    }
    return { done: true, value: undefined };
  }

  /** A cold slot with the held buckets around it (coarser tiers, current counts) first. */
  private changeOf(slot: Slot): KeyChange {
    const { state } = this.deps;
    const buckets: [Tier, number, number][] = [];
    for (const tier of COLD_TIERS) {
      if (tier <= slot.tier) break;
      const start = bucketStart(tier, slot.start);
      if (state.cold.isCold(tier, start)) continue;
      const count = state.get(this.origin, slot.key, tier, start);
      if (count > 0) buckets.push([tier, start, count]);
    }
    buckets.push([slot.tier, slot.start, slot.count]);
    return { key: slot.key, buckets };
  }

  /** Take the page read ahead, if it has come, and start reading the next; past the last page, part 3. */
  private turnPage(): void {
    for (;;) {
      const ahead = this.ahead;
      if (ahead === undefined) {
        if (this.exhausted) this.part = 3;
        return;
      }
      this.ahead = undefined;
      if (this.failed) {
        this.part = 4;
        return;
      }
      this.page = ahead.slots;
      this.at = 0;
      if (!ahead.end) {
        this.after = ahead.last;
        this.read();
      } else if (++this.tier < COLD_TIERS.length) {
        this.after = undefined;
        this.read();
      } else {
        this.exhausted = true;
      }
      if (this.page.length > 0) return;
    }
  }

  /** Read the next page of the current tier: the buckets that end after `since` and at or before the cold line. */
  private read(): void {
    const tier = COLD_TIERS[this.tier] as TimedTier;
    const size = TIER_SIZE_MS[tier];
    this.readPage(tier, this.since - size + 1, this.coldEnd - size + 1).then(
      (ahead) => {
        this.ahead = ahead;
      },
      (error: unknown) => {
        this.deps.logger.error({ err: error, origin: this.origin }, 'a repair could not read buckets past the hot horizon from the store; it ends without vouching for what it sent');
        this.failed = true;
        this.ahead = { slots: [], last: undefined, end: true };
      },
    );
  }

  /**
   * Chunks of the scan until a page is full (then it is closed: the next
   * page resumes past its last slot, `last`); `end` when the range ran out.
   * A slot goes when its key changed after the peer's seq, whatever seq the
   * slot was stored with: a slot's stored seq can be below a change its
   * count holds (a repair carries counts read after its vector was fixed,
   * and the change's own push then raised only the key's seq), so it is
   * the key's last seq, as ReplicaState.changedKeys filters, that says.
   */
  private async readPage(tier: TimedTier, fromStart: number, toStart: number): Promise<{ slots: readonly Slot[]; last: Slot | undefined; end: boolean }> {
    const after = this.after === undefined ? undefined : { start: this.after.start, key: this.after.key };
    const onCorrupt = (record: CorruptRecord): void => this.deps.logger.warn({ corrupt: record }, 'skipped a corrupt record in the store');
    const read: Slot[] = [];
    let end = true;
    for await (const chunk of this.deps.store.scanColdSlots(this.origin, tier, fromStart, toStart, -1, onCorrupt, after)) {
      read.push(...chunk);
      if (read.length >= COLD_PAGE_SLOTS) {
        end = false;
        break;
      }
    }
    const { state } = this.deps;
    return { slots: read.filter((slot) => state.lastSeq(this.origin, slot.key) > this.seq), last: read[read.length - 1], end };
  }
}
