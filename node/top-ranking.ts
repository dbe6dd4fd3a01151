import { STORE_READ_WEIGHT } from '../crdt/cold-buckets.ts';
import type { ReplicaState } from '../crdt/replica-state.ts';
import { TopK, rankCover, rankHeaps, rankUnion, type Ranking } from '../crdt/top-rank.ts';
import type { WindowPlan } from '../crdt/window-plan.ts';

/** Bucket reads between two yields of a scan: about a quarter of a millisecond, so hits are served in between. */
const YIELD_EVERY_BUCKETS = 10_000;
/** Heap entries in a plan up to which the union of the heaps ranks first (an in-process profile of the bench's data: a 60 s window, 0.5 ms by the union, 2.4 ms by sorted access). */
const UNION_FIRST_ENTRIES = 2_000;
/** Scans at once, the running one included; past it a ranking that needs one is refused (503). */
export const MAX_WAITING_SCANS = 8;

/**
 * How a ranking was answered: from the index's heaps (of the buckets that
 * cover the window, or of the planned buckets by sorted access or by their
 * union), by a scan of every key, or inexact past --top-exact-keys.
 */
export type RankingMethod = 'cover' | 'sorted' | 'union' | 'scan' | 'inexact';

/** Too many rankings need a scan of every key at once. */
export class ScansBusyError extends Error {
  readonly code = 'HITMESH_SCANS_BUSY';
}

/**
 * `GET /top`: the index's ranking (crdt/top-rank.ts) when it proves itself; else, while the
 * node holds at most `exactKeys` keys, a scan that counts every key (with a
 * prefix, every key that has it), in slices, one scan at a time; past
 * `exactKeys`, the index's ranking of its candidates, inexact, with its error
 * bound. Without an index every ranking is a scan.
 */
export class TopRanking {
  private scanning: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly state: ReplicaState,
    private readonly exactKeys: number,
    private readonly onRanked: (method: RankingMethod) => void = () => undefined,
  ) {}

  async rank(plan: WindowPlan, k: number, prefix: string): Promise<Ranking> {
    const countOf = (key: string): number => this.state.sum(key, plan);
    const index = this.state.top;
    if (index !== undefined) {
      const budget = Math.max(64, 4 * k);
      // First the few heaps of the coarser buckets around the window: for skewed counts a proof from a few keys counted.
      const cover = index.cover(plan.from, plan.to);
      const covered = cover === undefined ? undefined : rankCover(cover, k, prefix, countOf, budget);
      if (covered !== undefined) {
        this.onRanked('cover');
        return covered;
      }
      const heaps = index.heaps(plan.buckets);
      // Counting a key costs a read of each planned bucket; the union a map write per heap entry:
      // few entries (a minute of seconds), the union is cheapest; many, sorted access, until it counts too many keys.
      let entries = 0;
      for (const heap of heaps) entries += heap.size;
      const sorted = entries <= UNION_FIRST_ENTRIES ? undefined : rankHeaps(heaps, k, prefix, countOf, budget);
      const ranked = sorted ?? rankUnion(heaps, k, prefix, countOf);
      if (ranked.exact || this.state.keyCount > this.exactKeys) {
        this.onRanked(!ranked.exact ? 'inexact' : sorted === undefined ? 'union' : 'sorted');
        return ranked;
      }
    }
    if (this.waiting >= MAX_WAITING_SCANS) throw new ScansBusyError(`${MAX_WAITING_SCANS} rankings already wait to count every key; try again shortly`);
    this.waiting++;
    this.onRanked('scan');
    const turn = this.scanning.then(() => this.scan(plan, k, prefix, countOf));
    this.scanning = turn.catch(() => undefined).finally(() => this.waiting--);
    return turn;
  }

  private async scan(plan: WindowPlan, k: number, prefix: string, countOf: (key: string) => number): Promise<Ranking> {
    const best = new TopK(k);
    const perKey = Math.max(1, plan.buckets.length);
    let sinceYield = 0;
    // Map iteration is live: keys added meanwhile are visited, keys retention drops are skipped.
    for (const key of this.state.keys()) {
      // A key passed over costs a visit too: a rare prefix over a million keys must yield as well.
      if (prefix !== '' && !key.startsWith(prefix)) sinceYield++;
      else {
        const reads = this.state.cold.reads;
        best.offer({ key, count: countOf(key) });
        sinceYield += perKey + STORE_READ_WEIGHT * (this.state.cold.reads - reads);
      }
      if (sinceYield >= YIELD_EVERY_BUCKETS) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return { top: best.entries, exact: true, maxError: 0 };
  }
}
