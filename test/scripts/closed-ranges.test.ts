/**
 * Closed time ranges (--continuous, the soak): when a range is closed, the
 * ledger bounds on it, agreement, and the poller against fake nodes on
 * 127.0.0.1 whose answers the test controls.
 */
import type http from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { serve, useLocalServers } from './local-servers.ts';
import { agree, boundsViolations, checkedRange, closedHorizon, closedSecond, isClosed, wholeSeconds } from '../../scripts/partition/closed-ranges.ts';
import { HitLedger } from '../../scripts/partition/hit-ledger.ts';
import { HitLoad } from '../../scripts/partition/hit-load.ts';
import { awaitAgreement, settleRange, type RangeProbe } from '../../scripts/partition/range-convergence.ts';

describe('closed ranges', () => {
  it('the horizon is the oldest request in flight, or now', () => {
    expect(closedHorizon(undefined, 5_000)).toBe(5_000);
    expect(closedHorizon(4_200, 5_000)).toBe(4_200);
    expect(closedHorizon(5_100, 5_000)).toBe(5_000);
    expect(closedSecond(4_999)).toBe(4_000);
    expect(closedSecond(5_000)).toBe(5_000);
    expect(isClosed({ fromMs: 1_000, toMs: 5_000 }, 5_000)).toBe(true);
    expect(isClosed({ fromMs: 1_000, toMs: 5_000 }, 4_999)).toBe(false);
  });

  it('whole seconds cover both ends; the checked window runs to the end of the load', () => {
    expect(wholeSeconds(12_345, 16_789)).toEqual({ fromMs: 12_000, toMs: 17_000 });
    expect(wholeSeconds(12_345, 12_346)).toEqual({ fromMs: 12_000, toMs: 13_000 });
    expect(wholeSeconds(12_345, 12_000)).toEqual({ fromMs: 12_000, toMs: 13_000 });
    expect(checkedRange(10_500, 2_000, 9_000)).toEqual({ fromMs: 12_000, toMs: 20_000 });
    expect(checkedRange(10_500, 2_000, 1_000)).toEqual({ fromMs: 12_000, toMs: 13_000 });
  });

  it('property: once closed, every hit that can be stamped inside the range has been answered', () => {
    // A hit is stamped no earlier than it was sent and no later than it was answered.
    const hit = fc.record({ sentAt: fc.integer({ min: 0, max: 20_000 }), latency: fc.integer({ min: 0, max: 6_000 }), stamp: fc.double({ min: 0, max: 1, noNaN: true }) });
    fc.assert(
      fc.property(fc.array(hit, { maxLength: 80 }), fc.integer({ min: 0, max: 30_000 }), (hits, now) => {
        const sent = hits.filter((h) => h.sentAt <= now);
        const pending = sent.filter((h) => h.sentAt + h.latency > now);
        const oldest = pending.length === 0 ? undefined : Math.min(...pending.map((h) => h.sentAt));
        const end = closedSecond(closedHorizon(oldest, now));
        for (const h of sent) {
          const at = h.sentAt + Math.floor(h.stamp * h.latency);
          if (at < end) expect(h.sentAt + h.latency).toBeLessThanOrEqual(now);
        }
        // And nothing not yet sent can land inside: it would be stamped at or after now ≥ end.
        expect(end).toBeLessThanOrEqual(now);
      }),
    );
  });

  it('agreement needs every node to answer the same for every key', () => {
    const a = new Map([
      ['x', 3],
      ['y', 1],
    ]);
    expect(agree([a, new Map(a), new Map(a)], ['x', 'y'])).toBe(true);
    expect(agree([a, new Map([['x', 3]])], ['x', 'y'])).toBe(false);
    expect(agree([a, undefined], ['x'])).toBe(false);
    expect(agree([], ['x'])).toBe(false);
  });

  it('property: a node holding exactly the hits stamped in the range passes; one fewer is lost, one more than allowed double counted', () => {
    const range = { fromMs: 10_000, toMs: 20_000 };
    const hit = fc.record({
      key: fc.constantFrom('x', 'y'),
      sentAt: fc.integer({ min: 0, max: 30_000 }),
      delay: fc.integer({ min: 0, max: 800 }),
      outcome: fc.constantFrom('acked' as const, 'failed' as const, 'unknown' as const),
      landed: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(hit, { maxLength: 60 }), (hits) => {
        const ledger = new HitLedger(['a', 'b']);
        const truth = new Map([
          ['x', 0],
          ['y', 0],
        ]);
        for (const h of hits) {
          const at = h.sentAt + h.delay;
          ledger.record('a', h.key, h.sentAt, h.outcome === 'acked' ? { kind: 'acked', at } : { kind: h.outcome });
          const counted = h.outcome === 'acked' || (h.outcome === 'unknown' && h.landed);
          if (counted && at >= range.fromMs && at < range.toMs) truth.set(h.key, (truth.get(h.key) ?? 0) + 1);
        }
        const keys = ['x', 'y'];
        expect(boundsViolations(ledger, keys, range, new Map([['a', truth], ['b', new Map(truth)]]))).toEqual([]);
        for (const key of keys) {
          const { acked, unknown } = ledger.bounds(key, range);
          const off = (n: number): Map<string, number> => new Map([...truth, [key, n]]);
          const more = boundsViolations(ledger, keys, range, new Map([['a', truth], ['b', off(acked + unknown + 1)]]));
          expect(more).toEqual([{ kind: 'double-counted', node: 'b', key, window: 'closed', count: acked + unknown + 1, acked, unknown }]);
          if (acked > 0) {
            const fewer = boundsViolations(ledger, keys, range, new Map([['a', off(acked - 1)], ['b', truth]]));
            expect(fewer.map((v) => [v.kind, v.node, v.key])).toEqual([['lost', 'a', key]]);
          }
        }
      }),
    );
  });
});

// ---- against servers on 127.0.0.1 ----

useLocalServers();

/** A fake node answering GET /counts from `answer(scope)`: 'all' for the lifetime, 'range' for from/to. */
function fakeNode(answer: (scope: 'all' | 'range') => Record<string, number>): Promise<string> {
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ counts: answer(url.searchParams.has('from') ? 'range' : 'all') }));
  });
}

describe('HitLoad in flight', () => {
  it('knows the send time of the oldest request not yet answered, and nothing once all are', async () => {
    const held: http.ServerResponse[] = [];
    let answering = false;
    const answer = (res: http.ServerResponse) => res.end(JSON.stringify({ at: Date.now() }));
    // A request sent just before stop() may reach the server after the held ones are answered: answer it at once.
    const url = await serve((_req, res) => {
      held.push(res);
      if (answering) answer(res);
    });
    const ledger = new HitLedger(['n1']);
    const load = new HitLoad({ targets: [{ id: 'n1', url }], keys: ['k'], rate: 100, random: () => 0, ledger });
    const before = Date.now();
    expect(load.oldestInFlightSentAt()).toBeUndefined();
    load.start();
    await new Promise((resolve) => setTimeout(resolve, 150));
    const oldest = load.oldestInFlightSentAt();
    expect(oldest).toBeGreaterThanOrEqual(before);
    expect(oldest).toBeLessThanOrEqual(before + 100);
    expect(ledger.sent).toBe(0);
    const stopped = load.stop();
    answering = true;
    for (const res of held) answer(res);
    await stopped;
    expect(load.oldestInFlightSentAt()).toBeUndefined();
    expect(ledger.acked).toBe(held.length);
    expect(held.length).toBeGreaterThan(5);
  });
});

describe('settleRange', () => {
  const range = { fromMs: 10_000, toMs: 12_000 };
  const ledger = new HitLedger(['a', 'b']);
  ledger.record('a', 'k', 10_100, { kind: 'acked', at: 10_200 });
  ledger.record('b', 'k', 11_100, { kind: 'acked', at: 11_200 });

  function probe(urls: readonly string[], horizon: () => number): RangeProbe {
    const t0 = performance.now();
    return { nodes: urls.map((url, i) => ({ id: i === 0 ? 'a' : 'b', url })), keys: ['k'], ledger, horizon, now: () => Math.round(performance.now() - t0), epoch0: 9_000 };
  }

  it('waits until the range is closed, then until every node agrees', async () => {
    let bCount = 1;
    const urls = [await fakeNode(() => ({ k: 2 })), await fakeNode(() => ({ k: bCount }))];
    let horizon = 11_000;
    setTimeout(() => (horizon = 12_000), 100);
    setTimeout(() => (bCount = 2), 250);
    const result = await settleRange(probe(urls, () => horizon), 'r', range, 5_000);
    expect(result.closedAtMs).toBeGreaterThanOrEqual(90);
    expect(result.agreedAtMs).toBeGreaterThanOrEqual(240);
    expect(result.violations).toEqual([]);
    expect(result).toMatchObject({ label: 'r', epochFromMs: 10_000, epochToMs: 12_000, fromMs: 1_000, toMs: 3_000 });
  });

  it('nodes agreeing on too few: lost; never agreeing: the shortfall is missing, an excess double counted', async () => {
    const low = [await fakeNode(() => ({ k: 1 })), await fakeNode(() => ({ k: 1 }))];
    const agreedLow = await settleRange(probe(low, () => 20_000), 'r', range, 1_000);
    expect(agreedLow.agreedAtMs).not.toBeNull();
    expect(agreedLow.violations.map((v) => [v.kind, v.node])).toEqual([
      ['lost', 'a'],
      ['lost', 'b'],
    ]);
    const split = [await fakeNode(() => ({ k: 1 })), await fakeNode(() => ({ k: 3 }))];
    const never = await settleRange(probe(split, () => 20_000), 'r', range, 300);
    expect(never.agreedAtMs).toBeNull();
    expect(never.violations.map((v) => [v.kind, v.node, v.window])).toEqual([
      ['missing', 'a', 'closed'],
      ['double-counted', 'b', 'closed'],
    ]);
  });

  it('a range that never closed is not judged against the ledger', async () => {
    const urls = [await fakeNode(() => ({ k: 9 })), await fakeNode(() => ({ k: 9 }))];
    const result = await settleRange(probe(urls, () => 11_999), 'r', range, 200);
    expect(result.agreedAtMs).toBeNull();
    expect(result.violations).toEqual([]);
  });

  it('awaitAgreement needs every scope to agree: the lifetime alone is not enough', async () => {
    let rangeB = 1;
    const urls = [await fakeNode((scope) => ({ k: scope === 'all' ? 5 : 2 })), await fakeNode((scope) => ({ k: scope === 'all' ? 5 : rangeB }))];
    const p = probe(urls, () => 20_000);
    expect(await awaitAgreement(p, [undefined], p.now() + 1_000)).not.toBeNull();
    expect(await awaitAgreement(p, [undefined, range], p.now() + 200)).toBeNull();
    setTimeout(() => (rangeB = 2), 100);
    expect(await awaitAgreement(p, [undefined, range], p.now() + 2_000)).not.toBeNull();
  });
});
