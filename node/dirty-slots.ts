/**
 * The local slots changed since the last checkpoint, with the seq of the
 * batch that last changed each: key → (bucket start + tier) → seq.
 */
export class DirtySlots {
  private byKey = new Map<string, Map<number, number>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  mark(key: string, index: number, seq: number): void {
    let slots = this.byKey.get(key);
    if (slots === undefined) {
      slots = new Map();
      this.byKey.set(key, slots);
    }
    if (!slots.has(index)) this.count++;
    slots.set(index, seq);
  }

  /** Hand over everything marked so far and start empty. */
  take(): Map<string, Map<number, number>> {
    const taken = this.byKey;
    this.byKey = new Map();
    this.count = 0;
    return taken;
  }

  /** Put back what a failed checkpoint took, under anything marked since (which is newer). */
  restore(taken: Map<string, Map<number, number>>): void {
    for (const [key, slots] of taken) {
      for (const [index, seq] of slots) {
        if (this.byKey.get(key)?.has(index) !== true) this.mark(key, index, seq);
      }
    }
  }
}
