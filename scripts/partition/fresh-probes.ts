/**
 * The `fresh` experiment's probes: a write at one consistency level on one
 * node, then at once a read at the level that must see it on another node.
 * Each pairing is one whose quorums intersect (SPEC section 3):
 * - `ack=all`, then a plain read: every member held the hit when the 200 came;
 * - `ack=majority`, then `read=majority`: two majorities share a member;
 * - a plain write, then `read=all`: the writer is among those read.
 * An acknowledged write that the read then misses is a violation. A write or
 * read that is not a 200 (a 504 on a link too slow for the timeout) proves
 * nothing and is counted apart.
 */

export const PAIRINGS = ['ack=all, plain read', 'ack=majority, read=majority', 'plain write, read=all'] as const;
export type Pairing = (typeof PAIRINGS)[number];

const QUERIES: Readonly<Record<Pairing, { readonly write: string; readonly read: string }>> = {
  'ack=all, plain read': { write: '?ack=all&timeout=10s', read: '' },
  'ack=majority, read=majority': { write: '?ack=majority&timeout=10s', read: '&read=majority&timeout=10s' },
  'plain write, read=all': { write: '', read: '&read=all&timeout=10s' },
};

export interface PairingTally {
  /** Probes whose write and read both answered 200. */
  seen: number;
  /** Of those, reads that did not count the write: each a broken guarantee. */
  missed: number;
  /** Probes with a write or read that was not a 200. */
  inconclusive: number;
  /** The slowest write-then-read that ended in a 200 read, ms. */
  worstMs: number;
}

export interface FreshSummary {
  readonly delayMs: number;
  readonly byPairing: Readonly<Record<Pairing, PairingTally>>;
  /** The first misses, for the report (at most 20). */
  readonly misses: readonly { readonly pairing: Pairing; readonly writer: string; readonly reader: string; readonly key: string; readonly count: number }[];
}

async function status(url: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
    return { status: res.status, body: await res.json() };
  } catch {
    return { status: 0, body: undefined };
  }
}

export class FreshProbes {
  private readonly tallies = Object.fromEntries(PAIRINGS.map((p) => [p, { seen: 0, missed: 0, inconclusive: 0, worstMs: 0 }])) as Record<Pairing, PairingTally>;
  private readonly misses: { pairing: Pairing; writer: string; reader: string; key: string; count: number }[] = [];
  private next = 0;

  constructor(private readonly delayMs: number) {}

  /** One write on `writer` and the read that must see it on `reader` (base URLs; ids for the report). */
  async probe(pairing: Pairing, writer: { id: string; url: string }, reader: { id: string; url: string }): Promise<void> {
    const key = `fresh-${this.next++}`;
    const q = QUERIES[pairing];
    const t0 = Date.now();
    const wrote = await status(`${writer.url}/hit/${key}${q.write}`, { method: 'POST' });
    const read = wrote.status === 200 ? await status(`${reader.url}/count/${key}?window=all${q.read}`, {}) : undefined;
    const tally = this.tallies[pairing];
    if (read?.status !== 200) {
      tally.inconclusive++;
      return;
    }
    tally.seen++;
    tally.worstMs = Math.max(tally.worstMs, Date.now() - t0);
    const count = (read.body as { count?: unknown }).count;
    if (typeof count === 'number' && count >= 1) return;
    tally.missed++;
    if (this.misses.length < 20) this.misses.push({ pairing, writer: writer.id, reader: reader.id, key, count: typeof count === 'number' ? count : -1 });
  }

  summary(): FreshSummary {
    return { delayMs: this.delayMs, byPairing: structuredClone(this.tallies), misses: [...this.misses] };
  }
}

/** Did every pairing see at least one conclusive probe, and miss none? */
export function freshHeld(summary: FreshSummary): boolean {
  return PAIRINGS.every((p) => summary.byPairing[p].missed === 0 && summary.byPairing[p].seen > 0);
}
