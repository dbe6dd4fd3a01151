import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';

/**
 * What changed locally since the last checkpoint: second bucket → key → the
 * seq of the last batch that hit it. Marking costs one Map op per (key,
 * second) of a batch; the five tiers' slots are worked out at checkpoint time.
 */
export class DirtySlots {
  private bySecond = new Map<number, Map<string, number>>();
  private remote = new Map<string, Map<string, Map<number, number>>>();
  private count = 0;

  /** How many (key, second) pairs are marked. */
  get size(): number {
    return this.count;
  }

  mark(key: string, second: number, seq: number): void {
    let keys = this.bySecond.get(second);
    if (keys === undefined) {
      keys = new Map();
      this.bySecond.set(second, keys);
    }
    if (!keys.has(key)) this.count++;
    keys.set(key, seq);
  }

  /** A slot of another origin, raised by gossip: origin → key → (bucket start + tier) → the delta's seq. */
  markRemote(origin: string, key: string, index: number, seq: number): void {
    let keys = this.remote.get(origin);
    if (keys === undefined) {
      keys = new Map();
      this.remote.set(origin, keys);
    }
    let slots = keys.get(key);
    if (slots === undefined) {
      slots = new Map();
      keys.set(key, slots);
    }
    if (!slots.has(index)) this.count++;
    slots.set(index, Math.max(seq, slots.get(index) ?? 0));
  }

  /** Hand over everything marked so far and start empty. */
  take(): DirtySet {
    const taken = { local: this.bySecond, remote: this.remote };
    this.bySecond = new Map();
    this.remote = new Map();
    this.count = 0;
    return taken;
  }

  /** Put back what a failed checkpoint took, under anything marked since (which is newer). */
  restore(taken: DirtySet): void {
    for (const [second, keys] of taken.local) {
      for (const [key, seq] of keys) {
        if (this.bySecond.get(second)?.has(key) !== true) this.mark(key, second, seq);
      }
    }
    for (const [origin, keys] of taken.remote) {
      for (const [key, slots] of keys) for (const [index, seq] of slots) this.markRemote(origin, key, index, seq);
    }
  }
}

export interface DirtySet {
  readonly local: ReadonlyMap<number, ReadonlyMap<string, number>>;
  readonly remote: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<number, number>>>;
}

/** The local slots a dirty set touched: key → (bucket start + tier) → the newest seq that changed it. */
export function dirtySlotsOf(taken: DirtySet): Map<string, Map<number, number>> {
  const slots = new Map<string, Map<number, number>>();
  for (const [second, keys] of taken.local) {
    for (const [key, seq] of keys) {
      let indexes = slots.get(key);
      if (indexes === undefined) {
        indexes = new Map();
        slots.set(key, indexes);
      }
      for (const tier of ALL_TIERS) {
        const index = bucketStart(tier, second) + tier;
        if ((indexes.get(index) ?? 0) < seq) indexes.set(index, seq);
      }
    }
  }
  return slots;
}
