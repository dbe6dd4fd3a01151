import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';

/**
 * What changed since the last checkpoint. Own slots: key → the second
 * buckets its hits fell in (one Map and one Set op per (key, second) of a
 * batch; the five tiers' slots are worked out at checkpoint time, a key at a
 * time). Other origins' slots: origin → key → the earliest instant a delta
 * changed (the last ms of the earliest-ending slot it raised) and the highest
 * seq it came with; the checkpoint writes that key's buckets that end after it. One small object a key, not a map of its
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

  /** A slot of another origin changed by gossip (its count, or the seq it is known at); `last` is its last ms. */
  markRemote(origin: string, key: string, last: number, seq: number): void {
    let keys = this.remote.get(origin);
    if (keys === undefined) {
      keys = new Map();
      this.remote.set(origin, keys);
    }
    const mark = keys.get(key);
    if (mark === undefined) {
      keys.set(key, { since: last, seq });
      this.count++;
      return;
    }
    if (last < mark.since) mark.since = last;
    if (seq > mark.seq) mark.seq = seq;
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
      for (const [key, mark] of keys) this.markRemote(origin, key, mark.since, mark.seq);
    }
  }
}

export interface DirtySet {
  readonly local: ReadonlyMap<string, ReadonlySet<number>>;
  readonly remote: ReadonlyMap<string, ReadonlyMap<string, Readonly<RemoteMark>>>;
}

/** The earliest bucket start changed and the highest seq, of one key of another origin. */
export interface RemoteMark {
  since: number;
  seq: number;
}

/** The own slots (bucket start + tier) one key's marked seconds touch, each once. */
export function slotIndexesOf(seconds: ReadonlySet<number>): Set<number> {
  const indexes = new Set<number>();
  for (const second of seconds) for (const tier of ALL_TIERS) indexes.add(bucketStart(tier, second) + tier);
  return indexes;
}
