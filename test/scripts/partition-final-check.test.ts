/**
 * The partition lab's final check: the ranges it reads (one bucket of each
 * coarser tier, as the node's own planner tiles them), the check against
 * fake nodes on 127.0.0.1 that count a given set of hits (one of them with a
 * tier doubled), and the load's identity keys against a fake server.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { serve, useLocalServers } from './local-servers.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { TIER_SIZE_MS, Tier } from '../../crdt/tiers.ts';
import { planWindow } from '../../crdt/window-plan.ts';
import { checkedRange } from '../../scripts/partition/closed-ranges.ts';
import { checkedScopes, finalCheck, MAX_ID_VIOLATIONS } from '../../scripts/partition/final-check.ts';
import { HitLedger } from '../../scripts/partition/hit-ledger.ts';
import { HitLoad } from '../../scripts/partition/hit-load.ts';
import type { RangeProbe } from '../../scripts/partition/range-convergence.ts';
import { renderReportHtml } from '../../scripts/partition/report-html.ts';
import { renderReportText } from '../../scripts/partition/report-text.ts';

const TIER_OF = { minute: Tier.minute, hour: Tier.hour, day: Tier.day } as const;

describe('the ranges the final check reads', () => {
  it('the lifetime, the checked window, then the minute, hour and UTC day holding the fault start', () => {
    const epoch0 = Date.UTC(2025, 0, 2, 3, 59, 58, 500);
    const scopes = checkedScopes(epoch0, 1_000, 4_000);
    expect(scopes.map((s) => s.window)).toEqual(['all', 'window', 'minute', 'hour', 'day']);
    expect(scopes[0]?.range).toBeUndefined();
    expect(scopes[1]?.range).toEqual(checkedRange(epoch0, 1_000, 4_000));
    // The fault starts at 03:59:59.5: its minute, hour and day, not the ones the load ends in.
    expect(scopes[2]?.range).toEqual({ fromMs: Date.UTC(2025, 0, 2, 3, 59), toMs: Date.UTC(2025, 0, 2, 4, 0) });
    expect(scopes[3]?.range).toEqual({ fromMs: Date.UTC(2025, 0, 2, 3), toMs: Date.UTC(2025, 0, 2, 4) });
    expect(scopes[4]?.range).toEqual({ fromMs: Date.UTC(2025, 0, 2), toMs: Date.UTC(2025, 0, 3) });
  });

  it('property: a node plans each tier range as exactly one bucket of that tier, whenever the check runs after the fault', () => {
    const jan2024 = Date.UTC(2024, 0, 1);
    fc.assert(
      fc.property(fc.integer({ min: jan2024, max: jan2024 + 5 * 365 * 86_400_000 }), fc.integer({ min: 0, max: 3 * 3_600_000 }), (faultEpoch, laterMs) => {
        for (const scope of checkedScopes(faultEpoch - 1_000, 1_000, 2_000)) {
          if (scope.window !== 'minute' && scope.window !== 'hour' && scope.window !== 'day') continue;
          const range = scope.range;
          if (range === undefined) throw new Error('a tier scope without a range');
          const plan = planWindow(range.fromMs, range.toMs, faultEpoch + laterMs, DEFAULT_RETENTION);
          expect(plan.buckets).toEqual([{ tier: TIER_OF[scope.window], start: range.fromMs }]);
          expect(range.toMs - range.fromMs).toBe(TIER_SIZE_MS[TIER_OF[scope.window]]);
          expect([plan.from, plan.to]).toEqual([range.fromMs, range.toMs]);
        }
      }),
    );
  });
});

// ---- against servers on 127.0.0.1 ----

useLocalServers();

interface StoredHit {
  readonly keys: readonly string[];
  readonly at: number;
}

/**
 * A fake node counting `hits` for GET /counts. With `doubleHours`, a range one
 * hour long (what the planner reads as one hour bucket) counts each hit twice.
 */
function fakeNode(hits: readonly StoredHit[], options: { doubleHours?: boolean } = {}): Promise<string> {
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const keys = (url.searchParams.get('keys') ?? '').split(',');
    const from = Number(url.searchParams.get('from') ?? -Infinity);
    const to = Number(url.searchParams.get('to') ?? Infinity);
    const weight = options.doubleHours === true && to - from === 3_600_000 ? 2 : 1;
    const counts: Record<string, number> = {};
    for (const key of keys) counts[key] = weight * hits.filter((h) => h.keys.includes(key) && h.at >= from && h.at < to).length;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ counts }));
  });
}

describe('finalCheck', () => {
  const epoch0 = Date.UTC(2025, 0, 2, 3, 30);
  const keys = ['k1', 'k2'];

  /** 40 acked hits over 4 s, each with its id, the first ones before the fault at 1 s. */
  function run(): { ledger: HitLedger; hits: StoredHit[] } {
    const ledger = new HitLedger(['a', 'b'], { idSeed: 1 });
    const hits: StoredHit[] = [];
    for (let i = 0; i < 40; i++) {
      const at = epoch0 + i * 100 + 7;
      const key = keys[i % 2] ?? 'k1';
      const id = `id-a-${i + 1}`;
      ledger.record('a', key, at - 2, { kind: 'acked', at: at - 2, atMax: at + 2 }, id);
      hits.push({ keys: [key, id], at });
    }
    return { ledger, hits };
  }

  function probe(ledger: HitLedger, urls: readonly string[]): RangeProbe {
    const t0 = performance.now();
    return { nodes: urls.map((url, i) => ({ id: i === 0 ? 'a' : 'b', url })), keys, ledger, horizon: () => Date.now(), now: () => Math.round(performance.now() - t0), epoch0 };
  }

  it('every node exact: no violation, five ranges read, every id checked and the keys held to their ids', async () => {
    const { ledger, hits } = run();
    const p = probe(ledger, [await fakeNode(hits), await fakeNode(hits)]);
    const { checks, lifetime } = await finalCheck(p, checkedScopes(epoch0, 1_000, 4_000), p.now() + 2_000);
    expect(checks.violations).toEqual([]);
    expect(checks.total).toBe(2 * 2 * 5);
    expect(checks.ranges?.map((r) => r.window)).toEqual(['window', 'minute', 'hour', 'day']);
    expect(checks.ids).toEqual({ sent: 40, checked: 40, acked: 40, failed: 0, unknown: 0, complete: true, violations: 0, listed: 0 });
    expect(lifetime.get('a')?.get('k1')).toBe(20);
  });

  it('a node doubling its hour tier fails on the hour range only, keys and ids alike (reported as double counted, not also as disagreeing)', async () => {
    const { ledger, hits } = run();
    const p = probe(ledger, [await fakeNode(hits), await fakeNode(hits, { doubleHours: true })]);
    const { checks } = await finalCheck(p, checkedScopes(epoch0, 1_000, 4_000), p.now() + 300);
    expect(new Set(checks.violations.map((v) => `${v.window} ${v.node} ${v.kind}`))).toEqual(new Set(['hour b double-counted']));
    expect(checks.violations.filter((v) => !v.key.startsWith('id-')).map((v) => [v.key, v.count, v.acked])).toEqual([
      ['k1', 40, 20],
      ['k2', 40, 20],
    ]);
    expect(checks.ids?.violations).toBe(40);
    const text = renderReportText({ ...reportStub(), checks, ok: false });
    expect(text).toContain('read: lifetime; seconds [1.0, 4.0) s; minute 03:30-03:31 UTC; hour 03:00-04:00 UTC; day 2025-01-02 UTC');
    expect(text).toContain('ids: 40 of 40 hits checked one by one on every node and range');
    expect(text).toMatch(/double-counted +b {2}key "id-a-1" {2}window hour +count 2, acked 1, unknown 0/);
    const html = renderReportHtml({ ...reportStub(), checks, ok: false });
    expect(html).toContain('<li class="read">Ranges read on every node: lifetime; seconds [1.0, 4.0) s; minute 03:30-03:31 UTC; hour 03:00-04:00 UTC; day 2025-01-02 UTC</li>');
    expect(html).toContain('<li class="ids">Ids: 40 of 40 hits checked one by one on every node and range (40 acked, 0 failed, 0 unknown)');
    expect(html).toContain('<td><code>id-a-1</code></td><td>hour</td><td class="num">2</td>');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('lists at most MAX_ID_VIOLATIONS id violations and counts the rest', async () => {
    const ledger = new HitLedger(['a', 'b'], { idSeed: 1 });
    for (let i = 0; i < 60; i++) ledger.record('a', 'k1', epoch0, { kind: 'acked', at: epoch0 + 10 }, `id-a-${i}`);
    // Neither node has any of them: every id is lost on both nodes and all five ranges but the window (stamped before it).
    const p = probe(ledger, [await fakeNode([]), await fakeNode([])]);
    const { checks } = await finalCheck(p, checkedScopes(epoch0, 1_000, 4_000), p.now() + 300);
    expect(checks.ids).toMatchObject({ violations: 60 * 2 * 4, listed: MAX_ID_VIOLATIONS });
    expect(checks.violations.filter((v) => v.key.startsWith('id-'))).toHaveLength(MAX_ID_VIOLATIONS);
    expect(renderReportText({ ...reportStub(), checks, ok: false })).toMatch(/FAIL: .*380 more id violations not listed/);
  });
});

describe('HitLoad with identities', () => {
  it('sends each hit with an id key of its own in one batch, and records the span it was stamped in', async () => {
    const bodies: unknown[] = [];
    let status = 200;
    const url = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        expect([req.method, req.url, req.headers['content-type']]).toEqual(['POST', '/hits', 'application/json']);
        const items = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
        bodies.push(items);
        res.statusCode = status;
        res.end(JSON.stringify(status === 200 ? { accepted: items.length } : { error: 'no' }));
      });
    });
    const ledger = new HitLedger(['n1']);
    const load = new HitLoad({ targets: [{ id: 'n1', url }], keys: ['k'], rate: 200, random: () => 0, ledger, identities: true });
    const before = Date.now();
    load.start();
    await new Promise((resolve) => setTimeout(resolve, 150));
    status = 503;
    await new Promise((resolve) => setTimeout(resolve, 50));
    await load.stop();
    const after = Date.now();
    expect(bodies[0]).toEqual([{ key: 'k' }, { key: 'id-n1-1' }]);
    const kept = ledger.ids.hits();
    expect(kept).toHaveLength(ledger.sent);
    expect(new Set(kept.map((h) => h.id)).size).toBe(kept.length);
    for (const h of kept) expect(h.id).toMatch(/^id-n1-\d+$/);
    const acked = kept.filter((h) => h.outcome.kind === 'acked');
    expect(acked.length).toBeGreaterThan(5);
    for (const { outcome } of acked) {
      if (outcome.kind !== 'acked') continue;
      expect(outcome.at).toBeGreaterThanOrEqual(before);
      expect(outcome.atMax).toBeGreaterThanOrEqual(outcome.at);
      expect(outcome.atMax).toBeLessThanOrEqual(after);
    }
    expect(kept.some((h) => h.outcome.kind === 'failed')).toBe(true);
  });
});

/** The report fields renderReportText needs besides `checks`. */
function reportStub(): Parameters<typeof renderReportText>[0] {
  return {
    version: 1,
    experiment: 'split',
    description: 'a stub',
    settings: { nodes: 2, durationS: 4, rate: 10, keys: 2, seed: 1, cutMode: 'cut', convergeLimitS: 30, continuous: false },
    startedAt: '2025-01-02T03:30:00.000Z',
    nodes: [],
    hits: { sent: 40, acked: 40, failed: 0, unknown: 0 },
    faults: [],
    events: [],
    loadEndMs: 4_000,
    convergence: { converged: true, ms: 10, healAtMs: 4_000 },
    window: { epochFromMs: 0, epochToMs: 0, fromMs: 0, toMs: 0 },
    timeline: { atMs: [], acked: [], counts: {} },
    checks: { total: 0, violations: [] },
    ok: true,
  };
}
