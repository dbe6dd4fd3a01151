/**
 * The `capacity` keys with the highest counts in one bucket, kept as a
 * min-heap, with counts that only ever rise (a G-Counter's totals). The
 * invariant that makes it a summary with a proof: every key of the bucket
 * that is not held has a count at most `floor` (the least count held once
 * the heap is full, else 0: then every key of the bucket is held). A key
 * outside rises past the least one and takes its place; the key pushed out
 * had the least count, so it too is at most the new least. Ties at the
 * floor are held in arrival order, so which tied keys are held may differ
 * between nodes; the floor itself (the capacity-th highest count) does not.
 */
export class BucketTop {
  private readonly keys: string[] = [];
  private readonly counts: number[] = [];
  private readonly slot = new Map<string, number>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.keys.length;
  }

  /** No key left out of the heap has a count above this. */
  get floor(): number {
    return this.keys.length < this.capacity ? 0 : (this.counts[0] ?? 0);
  }

  /** `key`'s count in the bucket is now `count` (never lower than before). */
  raise(key: string, count: number): void {
    const at = this.slot.get(key);
    if (at !== undefined) {
      this.counts[at] = count;
      this.down(at);
      return;
    }
    if (this.keys.length < this.capacity) {
      this.keys.push(key);
      this.counts.push(count);
      this.slot.set(key, this.keys.length - 1);
      this.up(this.keys.length - 1);
      return;
    }
    if (count <= (this.counts[0] ?? 0)) return;
    this.slot.delete(this.keys[0] as string);
    this.keys[0] = key;
    this.counts[0] = count;
    this.slot.set(key, 0);
    this.down(0);
  }

  /** Every key held, with its count in the bucket. */
  *entries(): IterableIterator<[string, number]> {
    for (let i = 0; i < this.keys.length; i++) yield [this.keys[i] as string, this.counts[i] as number];
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.counts[parent] as number) <= (this.counts[i] as number)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.keys.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) return;
      const right = left + 1;
      const least = right < n && (this.counts[right] as number) < (this.counts[left] as number) ? right : left;
      if ((this.counts[least] as number) >= (this.counts[i] as number)) return;
      this.swap(i, least);
      i = least;
    }
  }

  private swap(a: number, b: number): void {
    const [ka, kb] = [this.keys[a] as string, this.keys[b] as string];
    const [ca, cb] = [this.counts[a] as number, this.counts[b] as number];
    this.keys[a] = kb;
    this.keys[b] = ka;
    this.counts[a] = cb;
    this.counts[b] = ca;
    this.slot.set(kb, a);
    this.slot.set(ka, b);
  }
}
