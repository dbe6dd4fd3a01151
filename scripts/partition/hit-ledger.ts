/**
 * Every hit an experiment sent and what became of it. A hit is
 * - acked: the node answered 200, so it is in that node's LevelDB and must be
 *   counted exactly once by every node in the end, in the bucket of its `at`;
 * - failed: it certainly was not taken (the connection was refused, or a 4xx
 *   or 503 answer);
 * - unknown: no answer (timeout, a reset after the request went out): it may
 *   or may not count, so it widens the allowed range by one.
 * Counts of a key must then lie in [acked, acked + unknown] on every node.
 */

export type HitOutcome = { readonly kind: 'acked'; readonly at: number } | { readonly kind: 'failed' } | { readonly kind: 'unknown' };

/** A hit without an answer: it may have been stamped any time from when it was sent. */
interface UnknownHit {
  readonly key: string;
  readonly sentAt: number;
}

export interface NodeTally {
  acked: number;
  failed: number;
  unknown: number;
}

export class HitLedger {
  private readonly perNode = new Map<string, NodeTally>();
  /** Per key: the `at` of every acked hit. */
  private readonly ackedAts = new Map<string, number[]>();
  private readonly unknownHits: UnknownHit[] = [];
  private sentCount = 0;
  private ackedCount = 0;

  constructor(nodes: readonly string[]) {
    for (const node of nodes) this.perNode.set(node, { acked: 0, failed: 0, unknown: 0 });
  }

  /** A hit of `key` sent to `node` at `sentAt` (epoch ms) ended with `outcome`. */
  record(node: string, key: string, sentAt: number, outcome: HitOutcome): void {
    const tally = this.perNode.get(node);
    if (tally === undefined) throw new Error(`unknown node ${node}`);
    this.sentCount++;
    tally[outcome.kind]++;
    if (outcome.kind === 'acked') {
      this.ackedCount++;
      let ats = this.ackedAts.get(key);
      if (ats === undefined) this.ackedAts.set(key, (ats = []));
      ats.push(outcome.at);
    } else if (outcome.kind === 'unknown') {
      this.unknownHits.push({ key, sentAt });
    }
  }

  get sent(): number {
    return this.sentCount;
  }

  get acked(): number {
    return this.ackedCount;
  }

  tally(node: string): NodeTally {
    const tally = this.perNode.get(node);
    if (tally === undefined) throw new Error(`unknown node ${node}`);
    return { ...tally };
  }

  totals(): { sent: number; acked: number; failed: number; unknown: number } {
    let failed = 0;
    let unknown = 0;
    for (const tally of this.perNode.values()) {
      failed += tally.failed;
      unknown += tally.unknown;
    }
    return { sent: this.sentCount, acked: this.ackedCount, failed, unknown };
  }

  /**
   * The allowed range of `key`'s count over [fromMs, toMs) epoch ms (the
   * whole lifetime when omitted): acked hits stamped inside it, plus the
   * unknown ones that could have been (sent before `toMs`: a hit is stamped
   * when the node takes it, never before it was sent).
   */
  bounds(key: string, range?: { fromMs: number; toMs: number }): { acked: number; unknown: number } {
    const ats = this.ackedAts.get(key) ?? [];
    let acked = 0;
    for (const at of ats) if (range === undefined || (at >= range.fromMs && at < range.toMs)) acked++;
    let unknown = 0;
    for (const hit of this.unknownHits) if (hit.key === key && (range === undefined || hit.sentAt < range.toMs)) unknown++;
    return { acked, unknown };
  }
}
