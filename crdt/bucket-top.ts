/**
 * The `capacity` keys with the highest counts in one bucket, with counts
 * that only ever rise (a G-Counter's totals). The invariant that makes it a
 * summary with a proof: every key of the bucket that is not held has a count
 * at most `floor()` (the least count held once full, else 0: then every key
 * of the bucket is held). A key outside rises past the least one and takes
 * its place; the key pushed out had the least count, so it too is at most
 * the new least.
 *
 * Held keys sit in slots: `slotOf` maps a key to its slot, whose current
 * count is in `slotCounts`, so a raise of a held key (the hit path's common
 * case) is one map lookup and an array write. The min-heap orders slots by
 * the count each had when last placed, which may lag: a lagging count only
 * ever sits too high in a min-heap, so the least is found by fixing the root
 * until its count is current. Ties at the floor are held in arrival order,
 * so which tied keys are held may differ between nodes; the floor itself
 * (the capacity-th highest count) does not.
 */
export class BucketTop {
  private readonly slotOf = new Map<string, number>();
  private readonly slotKeys: string[] = [];
  private readonly slotCounts: number[] = [];
  private readonly heapSlots: number[] = [];
  private readonly heapCounts: number[] = [];
  /** The heap arrays are in ascending order of current counts (which is a min-heap too): read from the end, best first. */
  private sorted = true;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.heapSlots.length;
  }

  /** No key left out has a count above this. */
  floor(): number {
    if (this.heapSlots.length < this.capacity) return 0;
    this.settleRoot();
    return this.heapCounts[0] ?? 0;
  }

  /** `key`'s count in the bucket is now `count` (never lower than before). */
  raise(key: string, count: number): void {
    const held = this.slotOf.get(key);
    if (held !== undefined) {
      if (count > (this.slotCounts[held] as number)) {
        this.slotCounts[held] = count;
        this.sorted = false;
      }
      return;
    }
    if (this.heapSlots.length < this.capacity) {
      const slot = this.slotKeys.length;
      this.slotOf.set(key, slot);
      this.slotKeys.push(key);
      this.slotCounts.push(count);
      this.heapSlots.push(slot);
      this.heapCounts.push(count);
      this.sorted = false;
      this.up(this.heapSlots.length - 1);
      return;
    }
    if (count <= (this.heapCounts[0] as number)) return; // the root's count only ever lags: the least is at least this
    this.settleRoot();
    if (count <= (this.heapCounts[0] as number)) return;
    // The least key leaves; the new one takes its slot.
    const slot = this.heapSlots[0] as number;
    this.slotOf.delete(this.slotKeys[slot] as string);
    this.slotOf.set(key, slot);
    this.slotKeys[slot] = key;
    this.slotCounts[slot] = count;
    this.heapCounts[0] = count;
    this.sorted = false;
    this.down(0);
  }

  /**
   * `key`'s count rose by `n` from what this holds of it; a key not held
   * counts up from the floor, which is at least its count (exact while the
   * heap is not full). A load adds up a cold bucket's total origin by origin
   * this way: every figure stays an upper bound, so the ranking's proofs hold.
   */
  add(key: string, n: number): void {
    const held = this.slotOf.get(key);
    this.raise(key, (held === undefined ? this.floor() : (this.slotCounts[held] as number)) + n);
  }

  /** The `i`-th best key held (0-based), after `sort()`. */
  keyAt(i: number): string {
    return this.slotKeys[this.heapSlots[this.heapSlots.length - 1 - i] as number] as string;
  }

  countAt(i: number): number {
    return this.heapCounts[this.heapCounts.length - 1 - i] as number;
  }

  /** Order the held keys by current count (in place: an ascending array is a min-heap); a bucket no hit changed since stays sorted. */
  sort(): void {
    if (this.sorted) return;
    const { slotKeys, slotCounts } = this;
    this.heapSlots.sort((a, b) => {
      const byCount = (slotCounts[a] as number) - (slotCounts[b] as number);
      if (byCount !== 0) return byCount;
      const [ka, kb] = [slotKeys[a] as string, slotKeys[b] as string];
      return ka < kb ? 1 : ka > kb ? -1 : 0;
    });
    this.heapSlots.forEach((slot, i) => (this.heapCounts[i] = slotCounts[slot] as number));
    this.sorted = true;
  }

  /** Every key held, with its current count. */
  *entries(): IterableIterator<[string, number]> {
    for (let slot = 0; slot < this.slotKeys.length; slot++) yield [this.slotKeys[slot] as string, this.slotCounts[slot] as number];
  }

  /** The same as a callback (a ranking reads thousands of entries a request). */
  forEachEntry(visit: (key: string, count: number) => void): void {
    for (let slot = 0; slot < this.slotKeys.length; slot++) visit(this.slotKeys[slot] as string, this.slotCounts[slot] as number);
  }

  /** Bring the root's count up to date until the root is the least current count. */
  private settleRoot(): void {
    for (;;) {
      const current = this.slotCounts[this.heapSlots[0] as number] as number;
      if (current === this.heapCounts[0]) return;
      this.heapCounts[0] = current;
      this.down(0);
    }
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.heapCounts[parent] as number) <= (this.heapCounts[i] as number)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.heapSlots.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) return;
      const right = left + 1;
      const least = right < n && (this.heapCounts[right] as number) < (this.heapCounts[left] as number) ? right : left;
      if ((this.heapCounts[least] as number) >= (this.heapCounts[i] as number)) return;
      this.swap(i, least);
      i = least;
    }
  }

  private swap(a: number, b: number): void {
    const slot = this.heapSlots[a] as number;
    const count = this.heapCounts[a] as number;
    this.heapSlots[a] = this.heapSlots[b] as number;
    this.heapCounts[a] = this.heapCounts[b] as number;
    this.heapSlots[b] = slot;
    this.heapCounts[b] = count;
  }
}
