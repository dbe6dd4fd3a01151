import { ALL_TIERS, TIMED_TIERS, Tier, bucketStart } from '../crdt/tiers.ts';

/**
 * What changed since the last checkpoint. Own slots: key → the second
 * buckets its hits fell in (one Map and one Set op per (key, second) of a
 * batch; the five tiers' slots are worked out at checkpoint time, a key at a
 * time). Other origins' slots: origin → key → per tier the span of bucket
 * starts gossip changed, and the highest seq it came with; the checkpoint
 * writes that key's buckets in those spans (and its lifetime). One small object a key, not a map of its
 * slots: a repair of a million keys marks a million of them.
 */
export class DirtySlots {
  private local = new Map<string, Set<number>>();
  private remote = new Map<string, Map<string, RemoteMark>>();
  private count = 0;

  /** How many (key, second) pairs and remote slots are marked. */
  get size(): number {
    return this.count;
  }

  /** `seq` is accepted for symmetry with markRemote; own slots are written with their key's last seq at checkpoint time. */
  mark(key: string, second: number, _seq?: number): void {
    let seconds = this.local.get(key);
    if (seconds === undefined) {
      seconds = new Set();
      this.local.set(key, seconds);
    }
    if (!seconds.has(second)) {
      seconds.add(second);
      this.count++;
    }
  }

  /** A slot of another origin changed by gossip (its count, or the seq it is known at). */
  markRemote(origin: string, key: string, tier: Tier, start: number, seq: number): void {
    let keys = this.remote.get(origin);
    if (keys === undefined) {
      keys = new Map();
      this.remote.set(origin, keys);
    }
    let mark = keys.get(key);
    if (mark === undefined) {
      mark = { spans: [Infinity, -Infinity, Infinity, -Infinity, Infinity, -Infinity, Infinity, -Infinity], seq };
      keys.set(key, mark);
      this.count++;
    }
    if (tier !== Tier.lifetime) {
      const spans = mark.spans;
      if (start < (spans[2 * tier] as number)) spans[2 * tier] = start;
      if (start > (spans[2 * tier + 1] as number)) spans[2 * tier + 1] = start;
    }
    if (seq > mark.seq) mark.seq = seq;
  }

  /** Whether anything of `key` is marked for `origin` (any own mark counts, whatever the origin: own slots are marked by key alone). */
  has(origin: string, key: string): boolean {
    return this.local.has(key) || this.remote.get(origin)?.has(key) === true;
  }

  /** Hand over everything marked so far and start empty. */
  take(): DirtySet {
    const taken = { local: this.local, remote: this.remote };
    this.local = new Map();
    this.remote = new Map();
    this.count = 0;
    return taken;
  }

  /** Put back what a failed checkpoint took, under anything marked since. */
  restore(taken: DirtySet): void {
    for (const [key, seconds] of taken.local) for (const second of seconds) this.mark(key, second);
    for (const [origin, keys] of taken.remote) {
      for (const [key, mark] of keys) {
        this.markRemote(origin, key, Tier.lifetime, 0, mark.seq);
        for (const tier of TIMED_TIERS) {
          const [first, last] = [mark.spans[2 * tier] as number, mark.spans[2 * tier + 1] as number];
          if (first <= last) {
            this.markRemote(origin, key, tier, first, mark.seq);
            this.markRemote(origin, key, tier, last, mark.seq);
          }
        }
      }
    }
  }
}

export interface DirtySet {
  readonly local: ReadonlyMap<string, ReadonlySet<number>>;
  readonly remote: ReadonlyMap<string, ReadonlyMap<string, Readonly<RemoteMark>>>;
}

/** Per timed tier [first, last] bucket start changed (empty: first > last), and the highest seq, of one key of another origin. */
export interface RemoteMark {
  readonly spans: number[];
  seq: number;
}

/** The own slots (bucket start + tier) one key's marked seconds touch, each once. */
export function slotIndexesOf(seconds: ReadonlySet<number>): Set<number> {
  const indexes = new Set<number>();
  for (const second of seconds) for (const tier of ALL_TIERS) indexes.add(bucketStart(tier, second) + tier);
  return indexes;
}
