/**
 * Every hit an experiment sent and what became of it. A hit is
 * - acked: the node answered 200, so it is in that node's LevelDB and must be
 *   counted exactly once by every node in the end, in the bucket of its stamp:
 *   `at` when the answer says (POST /hit), else somewhere in [at, atMax], from
 *   the send to the answer (a POST /hits answer does not say);
 * - failed: it certainly was not taken (the connection was refused, or a 4xx
 *   or 503 answer);
 * - unknown: no answer (timeout, a reset after the request went out): it may
 *   or may not count, so it widens the allowed range by one.
 * Counts of a key must then lie in [acked, acked + unknown] on every node.
 * Hits sent with an identity (see id-sample.ts) are also kept one by one, so
 * the check can tell which hit was lost or counted twice.
 */
import { mulberry32 } from '../../gossip/random.ts';
import { IdSample, type IdHit } from './id-sample.ts';

export type HitOutcome = { readonly kind: 'acked'; readonly at: number; readonly atMax?: number } | { readonly kind: 'failed' } | { readonly kind: 'unknown' };

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

export interface HitLedgerOptions {
  /** Ids kept per kind (answered, unknown) beyond which a seeded sample is kept instead. */
  readonly idCapacity?: number;
  readonly idSeed?: number;
}

/** Enough to check every id of a default run (10 s at 200 hits/s) and to read them in a few seconds. */
export const DEFAULT_ID_CAPACITY = 5_000;

export class HitLedger {
  private readonly perNode = new Map<string, NodeTally>();
  /** Per key: the `at` of every acked hit whose stamp is known exactly. */
  private readonly ackedAts = new Map<string, number[]>();
  /** Per key: [at, atMax] pairs, flat, of acked hits whose stamp is only known to lie between. */
  private readonly ackedSpans = new Map<string, number[]>();
  private readonly unknownHits: UnknownHit[] = [];
  private sentCount = 0;
  private ackedCount = 0;
  readonly ids: IdSample;

  constructor(nodes: readonly string[], options: HitLedgerOptions = {}) {
    for (const node of nodes) this.perNode.set(node, { acked: 0, failed: 0, unknown: 0 });
    this.ids = new IdSample(options.idCapacity ?? DEFAULT_ID_CAPACITY, mulberry32(options.idSeed ?? 0));
  }

  /** A hit of `key` sent to `node` at `sentAt` (epoch ms) ended with `outcome`; `id` is its identity key, if it carried one. */
  record(node: string, key: string, sentAt: number, outcome: HitOutcome, id?: string): void {
    const tally = this.perNode.get(node);
    if (tally === undefined) throw new Error(`unknown node ${node}`);
    this.sentCount++;
    tally[outcome.kind]++;
    if (outcome.kind === 'acked') {
      this.ackedCount++;
      const exact = outcome.atMax === undefined || outcome.atMax === outcome.at;
      const store = exact ? this.ackedAts : this.ackedSpans;
      let list = store.get(key);
      if (list === undefined) store.set(key, (list = []));
      if (exact) list.push(outcome.at);
      else list.push(outcome.at, outcome.atMax ?? outcome.at);
    } else if (outcome.kind === 'unknown') {
      this.unknownHits.push({ key, sentAt });
    }
    if (id !== undefined) this.ids.add({ id, key, node, sentAt, outcome } satisfies IdHit);
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
   * whole lifetime when omitted): acked hits stamped inside it, plus those
   * that may be in it: unknown ones sent before `toMs` (a hit is stamped when
   * the node takes it, never before it was sent), and acked ones whose stamp
   * is only known to a span that straddles an end of the range.
   */
  bounds(key: string, range?: { fromMs: number; toMs: number }): { acked: number; unknown: number } {
    let acked = 0;
    let unknown = 0;
    for (const at of this.ackedAts.get(key) ?? []) if (range === undefined || (at >= range.fromMs && at < range.toMs)) acked++;
    const spans = this.ackedSpans.get(key) ?? [];
    for (let i = 0; i + 1 < spans.length; i += 2) {
      const place = placeStamp(spans[i] ?? 0, spans[i + 1] ?? 0, range);
      if (place === 'in') acked++;
      else if (place === 'maybe') unknown++;
    }
    for (const hit of this.unknownHits) if (hit.key === key && (range === undefined || hit.sentAt < range.toMs)) unknown++;
    return { acked, unknown };
  }
}

/** Where a stamp known to lie in [at, atMax] falls against [fromMs, toMs) (the lifetime when omitted). */
export function placeStamp(at: number, atMax: number, range?: { fromMs: number; toMs: number }): 'in' | 'out' | 'maybe' {
  if (range === undefined) return 'in';
  if (at >= range.fromMs && atMax < range.toMs) return 'in';
  if (atMax < range.fromMs || at >= range.toMs) return 'out';
  return 'maybe';
}
