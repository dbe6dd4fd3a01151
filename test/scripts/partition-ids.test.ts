/**
 * The check by hit identity: each hit's own key (sent with it in one
 * all-or-nothing batch) counts exactly that hit, so the errors that cancel
 * out in a key's count (a lost acked hit and a counted unknown one; a hit
 * counted twice where an unknown one did not count) each show; plus the
 * per-key sums of ids, agreement between nodes, stamps known only to a span,
 * and the bounded sample of ids.
 */
import { describe, expect, it } from 'vitest';
import { checkCounts, checkScopes, outliers, type NodeCounts, type ScopeAnswers } from '../../scripts/partition/count-check.ts';
import { HitLedger } from '../../scripts/partition/hit-ledger.ts';
import { checkIds, idBounds, idSums } from '../../scripts/partition/id-check.ts';
import type { IdHit } from '../../scripts/partition/id-sample.ts';
import type { Violation } from '../../scripts/partition/report.ts';

const RANGE = { fromMs: 10_000, toMs: 20_000 };

const answers = (a: NodeCounts, b: NodeCounts): Map<string, NodeCounts> =>
  new Map([
    ['a', a],
    ['b', b],
  ]);

describe('hit identities', () => {
  /** Hits on key k, each with its own id; node a and node b answer `a` and `b` (key and id counts, lifetime). */
  function idLedger(hits: readonly { id: string; outcome: 'acked' | 'failed' | 'unknown'; at?: number; atMax?: number }[]): HitLedger {
    const ledger = new HitLedger(['a', 'b']);
    for (const h of hits) {
      const outcome = h.outcome === 'acked' ? { kind: 'acked' as const, at: h.at ?? 15_000, ...(h.atMax === undefined ? {} : { atMax: h.atMax }) } : { kind: h.outcome };
      ledger.record('a', 'k', 15_000, outcome, h.id);
    }
    return ledger;
  }
  const scope = (a: Record<string, number>, b: Record<string, number>, range?: { fromMs: number; toMs: number }): ScopeAnswers => ({
    window: range === undefined ? 'all' : 'window',
    ...(range === undefined ? {} : { range }),
    answers: answers(new Map(Object.entries(a)), new Map(Object.entries(b))),
  });
  /** The old check (count within [acked, acked + unknown]) and the new one (ids, exact sums, agreement) on the same answers. */
  function bothChecks(ledger: HitLedger, a: Record<string, number>, b: Record<string, number>): { old: Violation[]; ids: Violation[]; keys: Violation[] } {
    const old = checkCounts(ledger, { keys: ['k'], all: scope(a, b).answers, window: new Map(), range: RANGE }).violations;
    const hits = ledger.ids.hits();
    const ids = checkIds(hits, [scope(a, b)]);
    const keys = checkScopes(ledger, ['k'], [{ ...scope(a, b), expected: idSums(hits, scope(a, b).answers) }]).violations;
    return { old, ids, keys };
  }

  it('a lost acked hit plus a counted unknown one on the same key: the old check passes, the ids name the lost hit', () => {
    const ledger = idLedger([
      { id: 'id-a-1', outcome: 'acked' },
      { id: 'id-a-2', outcome: 'acked' },
      { id: 'id-a-3', outcome: 'unknown' },
    ]);
    // id-a-2 (acked) is gone, id-a-3 (unknown) counted: 2 on k, within [2, 3].
    const node = { k: 2, 'id-a-1': 1, 'id-a-2': 0, 'id-a-3': 1 };
    const { old, ids, keys } = bothChecks(ledger, node, node);
    expect(old).toEqual([]);
    expect(ids).toEqual([
      { kind: 'lost', node: 'a', key: 'id-a-2', window: 'all', count: 0, acked: 1, unknown: 0 },
      { kind: 'lost', node: 'b', key: 'id-a-2', window: 'all', count: 0, acked: 1, unknown: 0 },
    ]);
    // The key's count is what its ids add up to: the batch was all or nothing, so nothing more to say about k.
    expect(keys).toEqual([]);
  });

  it('an acked hit counted twice, hidden by an unknown one that did not count: the old check passes, the ids name it', () => {
    const ledger = idLedger([
      { id: 'id-a-1', outcome: 'acked' },
      { id: 'id-a-2', outcome: 'unknown' },
    ]);
    const node = { k: 2, 'id-a-1': 2, 'id-a-2': 0 };
    const { old, ids } = bothChecks(ledger, node, node);
    expect(old).toEqual([]);
    expect(ids.map((v) => [v.kind, v.node, v.key, v.count])).toEqual([
      ['double-counted', 'a', 'id-a-1', 2],
      ['double-counted', 'b', 'id-a-1', 2],
    ]);
  });

  it("a key's count must be the sum of its ids' on that node; an unknown id must count the same on every node", () => {
    const ledger = idLedger([
      { id: 'id-a-1', outcome: 'acked' },
      { id: 'id-a-2', outcome: 'unknown' },
      { id: 'id-a-3', outcome: 'failed' },
    ]);
    // a: k says 2 but its ids say 1; b counted the unknown hit, a did not.
    const { old, ids, keys } = bothChecks(ledger, { k: 2, 'id-a-1': 1, 'id-a-2': 0, 'id-a-3': 0 }, { k: 2, 'id-a-1': 1, 'id-a-2': 1, 'id-a-3': 0 });
    expect(old).toEqual([]);
    expect(keys).toEqual([{ kind: 'double-counted', node: 'a', key: 'k', window: 'all', count: 2, acked: 1, unknown: 1, expected: 1 }]);
    // Two nodes, two answers: the first node's is the reference on a tie.
    expect(ids).toEqual([{ kind: 'disagree', node: 'b', key: 'id-a-2', window: 'all', count: 1, acked: 0, unknown: 1 }]);
    // A failed hit that counts anyway.
    expect(bothChecks(ledger, { k: 2, 'id-a-1': 1, 'id-a-2': 0, 'id-a-3': 1 }, { k: 1, 'id-a-1': 1, 'id-a-2': 0, 'id-a-3': 0 }).ids.map((v) => [v.kind, v.key])).toEqual([
      ['double-counted', 'id-a-3'],
    ]);
  });

  it('nodes within the bounds but not agreeing are reported; the most common answer is the reference', () => {
    const ledger = new HitLedger(['a']);
    ledger.record('a', 'k', 15_000, { kind: 'acked', at: 15_000 });
    ledger.record('a', 'k', 15_000, { kind: 'unknown' });
    const three = new Map<string, NodeCounts>([
      ['a', new Map([['k', 2]])],
      ['b', new Map([['k', 1]])],
      ['c', new Map([['k', 2]])],
    ]);
    expect(checkScopes(ledger, ['k'], [{ window: 'hour', range: RANGE, answers: three }]).violations).toEqual([
      { kind: 'disagree', node: 'b', key: 'k', window: 'hour', count: 1, acked: 1, unknown: 1 },
    ]);
    // A node already out of bounds is reported as that, not twice, and the others are judged among themselves.
    three.set('b', new Map([['k', 0]]));
    three.set('a', new Map([['k', 3]]));
    expect(checkScopes(ledger, ['k'], [{ window: 'hour', range: RANGE, answers: three }]).violations.map((v) => [v.kind, v.node])).toEqual([
      ['double-counted', 'a'],
      ['lost', 'b'],
    ]);
    expect(outliers(new Map([['a', 1]]))).toEqual([]);
    expect(outliers(new Map([['a', 1], ['b', 2], ['c', 1]]), new Set(['c']))).toEqual(['b']);
  });

  it('a stamp known only to lie between the send and the answer: in, out, or 0-1 across an end of the range', () => {
    const hit = (at: number, atMax: number): IdHit => ({ id: 'id-a-1', key: 'k', node: 'a', sentAt: at, outcome: { kind: 'acked', at, atMax } });
    expect(idBounds(hit(10_000, 19_999), RANGE)).toEqual({ acked: 1, unknown: 0 });
    expect(idBounds(hit(9_990, 10_010), RANGE)).toEqual({ acked: 0, unknown: 1 });
    expect(idBounds(hit(19_990, 20_000), RANGE)).toEqual({ acked: 0, unknown: 1 });
    expect(idBounds(hit(20_000, 20_010), RANGE)).toEqual({ acked: 0, unknown: 0 });
    expect(idBounds(hit(9_000, 9_999), RANGE)).toEqual({ acked: 0, unknown: 0 });
    expect(idBounds(hit(9_000, 9_999))).toEqual({ acked: 1, unknown: 0 });
    const unknown: IdHit = { id: 'id-a-2', key: 'k', node: 'a', sentAt: 20_000, outcome: { kind: 'unknown' } };
    expect(idBounds(unknown, RANGE)).toEqual({ acked: 0, unknown: 0 });
    expect(idBounds(unknown)).toEqual({ acked: 0, unknown: 1 });
    // The key's bounds treat such a hit the same way.
    const ledger = idLedger([
      { id: 'id-a-1', outcome: 'acked', at: 9_990, atMax: 10_010 },
      { id: 'id-a-2', outcome: 'acked', at: 12_000, atMax: 12_050 },
    ]);
    expect(ledger.bounds('k', RANGE)).toEqual({ acked: 1, unknown: 1 });
    expect(ledger.bounds('k')).toEqual({ acked: 2, unknown: 0 });
  });

  it('keeps every id up to its capacity, then a seeded sample of the answered ones and of the unknown ones', () => {
    const small = new HitLedger(['a'], { idCapacity: 10, idSeed: 3 });
    for (let i = 0; i < 8; i++) small.record('a', 'k', i, { kind: 'acked', at: i }, `id-a-${i}`);
    small.record('a', 'k', 9, { kind: 'unknown' });
    expect(small.ids.complete).toBe(true);
    expect(small.ids.sent).toBe(8);
    const big = new HitLedger(['a'], { idCapacity: 10, idSeed: 3 });
    for (let i = 0; i < 1_000; i++) big.record('a', 'k', i, i % 100 === 0 ? { kind: 'unknown' } : { kind: 'acked', at: i }, `id-a-${i}`);
    expect(big.ids.complete).toBe(false);
    expect(big.ids.sent).toBe(1_000);
    const kept = big.ids.hits();
    expect(kept.filter((h) => h.outcome.kind === 'unknown')).toHaveLength(10);
    expect(kept.filter((h) => h.outcome.kind === 'acked')).toHaveLength(10);
    // Spread over the run, not the first ten.
    expect(Math.max(...kept.map((h) => h.sentAt))).toBeGreaterThan(500);
    expect(new Set(kept.map((h) => h.id)).size).toBe(20);
  });
});
