/**
 * The `retry` experiment's ledger and checks, on hand-made attempts and fake
 * counts: a logical hit (one Idempotency-Key) counts exactly n when some
 * attempt got a 200, 0 or n when none was answered, never 2n, in the bucket of
 * the earliest taker; and the answers' duplicate flags and 422s are judged.
 */
import { describe, expect, it } from 'vitest';
import { checkScopes, type NodeCounts } from '../../scripts/partition/count-check.ts';
import { flagsOf, logicalOutcome, RetryLedger, type Attempt, type AttemptAnswer, type CutTimes, type LogicalHit } from '../../scripts/partition/retry-ledger.ts';

const SIDES: CutTimes['sides'] = [['a1', 'a2'], ['b1']];
const NODES = ['a1', 'a2', 'b1'];
const CUT: CutTimes = { sides: SIDES, cutAt: 1_000, healedAt: 10_000 };

const ok = (duplicate: boolean | undefined, at?: number): AttemptAnswer => ({ kind: 'acked', duplicate, ...(at === undefined ? {} : { at }) });
const failed = (status = 503): AttemptAnswer => ({ kind: 'failed', status });
const unknown: AttemptAnswer = { kind: 'unknown' };

function attempt(node: string, sentAt: number, answeredAt: number, answer: AttemptAnswer, over: Partial<Attempt> = {}): Attempt {
  return { node, n: 1, conflict: false, sentAt, answeredAt, answer, ...over };
}

/** A ledger of logical hits, each given as its attempts. */
function ledgerOf(hits: readonly { token: string; key: string; n?: number; attempts: Attempt[] }[]): RetryLedger {
  const ledger = new RetryLedger(SIDES, CUT.cutAt);
  ledger.healedAt = CUT.healedAt;
  for (const h of hits) ledger.add(h.token, h.key, h.n ?? 1).attempts.push(...h.attempts);
  return ledger;
}

/** Every node answers `counts` (the same on all unless `on` says otherwise). */
function answers(counts: Record<string, number>, on: Record<string, Record<string, number>> = {}): Map<string, NodeCounts> {
  return new Map(NODES.map((node) => [node, new Map(Object.entries({ ...counts, ...on[node] }))]));
}

function judge(ledger: RetryLedger, keys: readonly string[], counts: Map<string, NodeCounts>, range?: { fromMs: number; toMs: number }): string[] {
  const { violations } = checkScopes(ledger.toHitLedger(NODES), keys, [{ window: range === undefined ? 'all' : 'window', ...(range === undefined ? {} : { range }), answers: counts }]);
  return violations.map((v) => `${v.kind} ${v.node} ${v.key} ${v.count}`);
}

describe('a logical hit as the count check sees it', () => {
  it('acked once any attempt got a 200, stamped between its first maybe-taken send and the earliest stamp known; failed attempts do not count', () => {
    const hit: LogicalHit = {
      token: 't',
      key: 'k',
      n: 2,
      attempts: [attempt('a1', 2_000, 2_001, failed()), attempt('a2', 2_100, 5_000, unknown), attempt('b1', 2_200, 2_210, ok(false, 2_205)), attempt('a1', 2_300, 2_320, ok(true))],
    };
    expect(logicalOutcome(hit)).toEqual({ sentAt: 2_100, outcome: { kind: 'acked', at: 2_100, atMax: 2_205 } });
    // A duplicate's answer gives no stamp of its own: only that the node held the token by then.
    expect(logicalOutcome({ ...hit, attempts: [attempt('a1', 3_000, 3_050, ok(true))] }).outcome).toEqual({ kind: 'acked', at: 3_000, atMax: 3_050 });
    expect(logicalOutcome({ ...hit, attempts: [attempt('a1', 3_000, 3_001, failed()), attempt('b1', 3_100, 3_200, unknown)] })).toEqual({ sentAt: 3_100, outcome: { kind: 'unknown' } });
    expect(logicalOutcome({ ...hit, attempts: [attempt('a1', 3_000, 3_001, failed(422)), attempt('b1', 3_100, 3_101, failed(0))] }).outcome).toEqual({ kind: 'failed' });
  });

  it('a token taken on both sides of the cut counts once, n hits; counted twice is double-counted, on the node that did it', () => {
    const ledger = ledgerOf([
      { token: 't1', key: 'k', n: 3, attempts: [attempt('a1', 2_000, 2_010, ok(false, 2_005)), attempt('b1', 2_100, 2_110, ok(false, 2_105)), attempt('a1', 2_200, 2_210, ok(true))] },
      { token: 't2', key: 'k', attempts: [attempt('b1', 2_000, 2_010, ok(false, 2_005))] },
    ]);
    expect(judge(ledger, ['k'], answers({ k: 4 }))).toEqual([]);
    // The heal merged t1's two takings into two counts on b1 (3 hits too many), and a1 lost t2.
    expect(judge(ledger, ['k'], answers({ k: 4 }, { b1: { k: 7 }, a1: { k: 3 } }))).toEqual(['lost a1 k 3', 'double-counted b1 k 7']);
  });

  it('a token whose every attempt went unanswered may count 0 or n, never 2n; a failed one counts 0', () => {
    const ledger = ledgerOf([
      { token: 'u', key: 'k', n: 2, attempts: [attempt('a1', 2_000, 5_000, unknown), attempt('b1', 2_100, 5_100, unknown)] },
      { token: 'f', key: 'j', attempts: [attempt('a1', 2_000, 2_001, failed(0)), attempt('b1', 2_100, 2_101, failed(503))] },
    ]);
    expect(judge(ledger, ['k', 'j'], answers({ k: 0, j: 0 }))).toEqual([]);
    expect(judge(ledger, ['k', 'j'], answers({ k: 2, j: 0 }))).toEqual([]);
    // Both sides took it and the heal kept both: counted twice.
    expect(judge(ledger, ['k', 'j'], answers({ k: 2, j: 0 }, { a2: { k: 4 } }))).toEqual(['double-counted a2 k 4']);
    expect(judge(ledger, ['k', 'j'], answers({ k: 0, j: 1 }))).toEqual(NODES.map((node) => `double-counted ${node} j 1`));
  });

  it('counts in the bucket of the earlier taking: the later one\'s second must not hold it', () => {
    const ledger = ledgerOf([{ token: 't', key: 'k', attempts: [attempt('a1', 1_990, 1_999, ok(false, 1_995)), attempt('b1', 2_400, 2_410, ok(false, 2_405))] }]);
    const first = { fromMs: 1_000, toMs: 2_000 };
    const second = { fromMs: 2_000, toMs: 3_000 };
    expect(judge(ledger, ['k'], answers({ k: 1 }), first)).toEqual([]);
    expect(judge(ledger, ['k'], answers({ k: 0 }), second)).toEqual([]);
    expect(judge(ledger, ['k'], answers({ k: 1 }), second)).toEqual(NODES.map((node) => `double-counted ${node} k 1`));
    expect(judge(ledger, ['k'], answers({ k: 0 }), first)).toEqual(NODES.map((node) => `lost ${node} k 0`));
  });
});

describe('the answers of a retried token', () => {
  const hit = (attempts: Attempt[], n = 1): LogicalHit => ({ token: 't', key: 'k', n, attempts });
  const kinds = (h: LogicalHit): string[] => flagsOf(h, CUT).map((f) => `${f.kind} ${f.node}`);

  it('a correct run of answers breaks nothing: first false, repeats on the same node true, the other side false while cut', () => {
    expect(
      kinds(
        hit([
          attempt('a1', 2_000, 2_010, ok(false, 2_005)),
          attempt('b1', 2_100, 2_110, ok(false, 2_105)),
          attempt('a1', 2_200, 2_210, ok(true)),
          attempt('a2', 2_300, 2_310, ok(true)),
          attempt('b1', 11_000, 11_010, ok(true)),
          attempt('a1', 11_100, 11_110, failed(422), { n: 2, conflict: true }),
        ]),
      ),
    ).toEqual([]);
  });

  it('a node that answered 200 and then says "duplicate": false (or nothing) to the same token is not-flagged, and so are two concurrent firsts', () => {
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(false)), attempt('a1', 2_020, 2_030, ok(false))]))).toEqual(['not-flagged a1']);
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(undefined)), attempt('a1', 2_020, 2_030, ok(undefined))]))).toEqual(['not-flagged a1']);
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(true)), attempt('b1', 1_999, 2_000, unknown), attempt('a1', 2_020, 2_030, ok(false))]))).toContain('not-flagged a1');
    // Sent together, both answered false: only one of them can be the first.
    expect(kinds(hit([attempt('a1', 2_000, 2_012, ok(false)), attempt('a1', 2_001, 2_011, ok(false))]))).toEqual(['not-flagged a1']);
    // Other nodes, each its own first while cut: fine.
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(false)), attempt('b1', 2_001, 2_011, ok(false))]))).toEqual([]);
  });

  it('"duplicate": true with nothing before it that the node can have heard of is a phantom', () => {
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(true))]))).toEqual(['phantom-duplicate a1']);
    expect(kinds(hit([attempt('a1', 2_000, 2_001, failed()), attempt('a2', 2_100, 2_110, ok(true))]))).toEqual(['phantom-duplicate a2']);
    // While the cut holds, b1 cannot know what a1 took; after the heal it can.
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(false)), attempt('b1', 2_100, 2_110, ok(true))]))).toEqual(['phantom-duplicate b1']);
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(false)), attempt('a2', 2_100, 2_110, ok(true))]))).toEqual([]);
    expect(kinds(hit([attempt('a1', 2_000, 2_010, ok(false)), attempt('b1', 10_100, 10_110, ok(true))]))).toEqual([]);
  });

  it('the same token with another n must be a 422 on a node that took it', () => {
    const probe = (answer: AttemptAnswer): Attempt => attempt('a1', 2_100, 2_110, answer, { n: 2, conflict: true });
    const first = attempt('a1', 2_000, 2_010, ok(false));
    expect(kinds(hit([first, probe(ok(false))]))).toEqual(['conflict-taken a1']);
    expect(kinds(hit([first, probe(failed(400))]))).toEqual(['conflict-not-422 a1']);
    expect(kinds(hit([first, probe(unknown)]))).toEqual([]);
  });
});

describe('the tally', () => {
  it('counts logical hits, retries across the cut and after the heal, tokens both sides took, duplicates and same-node repeats', () => {
    const ledger = ledgerOf([
      { token: 't1', key: 'k', attempts: [attempt('a1', 2_000, 2_010, ok(false, 2_005)), attempt('b1', 2_100, 2_110, ok(false, 2_105)), attempt('a1', 2_200, 2_210, ok(true))] },
      { token: 't2', key: 'k', attempts: [attempt('b1', 3_000, 3_010, ok(false, 3_005)), attempt('a2', 10_500, 10_510, ok(true)), attempt('b1', 10_600, 10_610, failed(422), { n: 2, conflict: true })] },
      { token: 't3', key: 'k', attempts: [attempt('a1', 4_000, 7_000, unknown)] },
      { token: 't4', key: 'k', attempts: [attempt('a2', 4_000, 4_001, failed(0))] },
    ]);
    expect(ledger.tally()).toEqual({
      logical: 4,
      acked: 2,
      failed: 1,
      unknown: 1,
      attempts: 8,
      retries: 3,
      acrossCut: 1,
      acrossAfterHeal: 1,
      bothSides: 1,
      duplicates: 2,
      sameNodeRepeats: 1,
      conflictsSent: 1,
      conflictsRefused: 1,
      flagViolations: 0,
      slowestMs: 3_000,
    });
    expect(ledger.lastAnsweredAt()).toBe(10_610);
  });
});
