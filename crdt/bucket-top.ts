/**
 * The `capacity` keys with the highest counts in one bucket, with counts
 * that only ever rise (a G-Counter's totals). The invariant that makes it a
 * summary with a proof: every key of the bucket that is not held has a count
 * at most `floor()` (the least count held once full, else 0: then every key
 * of the bucket is held). A key outside rises past the least one and takes
 * its place; the key pushed out had the least count, so it too is at most
 * the new least.
 *
 * Held keys' counts live in `counts`; the min-heap orders them by the count
 * each had when last placed, which may lag (a raise of a held key is one map
 * write, the hit path's common case). A lagging count only ever sits too
 * high in a min-heap, so the least is found by fixing the root until its
 * count is current. Ties at the floor are held in arrival order, so which
 * tied keys are held may differ between nodes; the floor itself (the
 * capacity-th highest count) does not.
 */
export class BucketTop {
  private readonly counts = new Map<string, number>();
  private readonly heapKeys: string[] = [];
  private readonly heapCounts: number[] = [];
  /** The heap arrays are in ascending order of current counts (which is a min-heap too): read from the end, best first. */
  private sorted = true;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.heapKeys.length;
  }

  /** No key left out has a count above this. */
  floor(): number {
    if (this.heapKeys.length < this.capacity) return 0;
    this.settleRoot();
    return this.heapCounts[0] ?? 0;
  }

  /** `key`'s count in the bucket is now `count` (never lower than before). */
  raise(key: string, count: number): void {
    const held = this.counts.get(key);
    if (held !== undefined) {
      if (count > held) {
        this.counts.set(key, count);
        this.sorted = false;
      }
      return;
    }
    if (this.heapKeys.length < this.capacity) {
      this.counts.set(key, count);
      this.heapKeys.push(key);
      this.heapCounts.push(count);
      this.sorted = false;
      this.up(this.heapKeys.length - 1);
      return;
    }
    if (count <= (this.heapCounts[0] as number)) return; // the root's count only ever lags: the least is at least this
    this.settleRoot();
    if (count <= (this.heapCounts[0] as number)) return;
    this.counts.delete(this.heapKeys[0] as string);
    this.counts.set(key, count);
    this.heapKeys[0] = key;
    this.heapCounts[0] = count;
    this.sorted = false;
    this.down(0);
  }

  /** The `i`-th best key held (0-based), after `sort()`. */
  keyAt(i: number): string {
    return this.heapKeys[this.heapKeys.length - 1 - i] as string;
  }

  countAt(i: number): number {
    return this.heapCounts[this.heapCounts.length - 1 - i] as number;
  }

  /** Order the held keys by current count (in place: an ascending array is a min-heap); a bucket no hit changed since stays sorted. */
  sort(): void {
    if (this.sorted) return;
    const order = this.heapKeys.map((key) => ({ key, count: this.counts.get(key) as number }));
    order.sort((a, b) => a.count - b.count || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    order.forEach((entry, i) => {
      this.heapKeys[i] = entry.key;
      this.heapCounts[i] = entry.count;
    });
    this.sorted = true;
  }

  /** Every key held, with its current count. */
  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }

  /** Bring the root's count up to date until the root is the least current count. */
  private settleRoot(): void {
    for (;;) {
      const current = this.counts.get(this.heapKeys[0] as string) as number;
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
    const n = this.heapKeys.length;
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
    const key = this.heapKeys[a] as string;
    const count = this.heapCounts[a] as number;
    this.heapKeys[a] = this.heapKeys[b] as string;
    this.heapCounts[a] = this.heapCounts[b] as number;
    this.heapKeys[b] = key;
    this.heapCounts[b] = count;
  }
}
