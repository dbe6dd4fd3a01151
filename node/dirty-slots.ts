import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';

/**
 * What changed locally since the last checkpoint: second bucket → key → the
 * seq of the last batch that hit it. Marking costs one Map op per (key,
 * second) of a batch; the five tiers' slots are worked out at checkpoint time.
 */
export class DirtySlots {
  private bySecond = new Map<number, Map<string, number>>();
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

  /** Hand over everything marked so far and start empty. */
  take(): DirtySet {
    const taken = this.bySecond;
    this.bySecond = new Map();
    this.count = 0;
    return taken;
  }

  /** Put back what a failed checkpoint took, under anything marked since (which is newer). */
  restore(taken: DirtySet): void {
    for (const [second, keys] of taken) {
      for (const [key, seq] of keys) {
        if (this.bySecond.get(second)?.has(key) !== true) this.mark(key, second, seq);
      }
    }
  }
}

export type DirtySet = ReadonlyMap<number, ReadonlyMap<string, number>>;

/** The slots a dirty set touched: key → (bucket start + tier) → the newest seq that changed it. */
export function dirtySlotsOf(taken: DirtySet): Map<string, Map<number, number>> {
  const slots = new Map<string, Map<number, number>>();
  for (const [second, keys] of taken) {
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
