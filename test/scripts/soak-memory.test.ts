import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeMemory, median, memoryWindows, RSS_LIMIT_RATIO, WARMUP_MS } from '../../scripts/soak/memory-check.ts';

/** Samples every `everyMs` from 0 to `endMs`, each node's RSS from `rss(id, atMs)`. */
function series(ids: readonly string[], endMs: number, everyMs: number, rss: (id: string, atMs: number) => number | null) {
  const atMs = Array.from({ length: Math.floor(endMs / everyMs) + 1 }, (_, i) => i * everyMs);
  return { atMs, rssBytes: Object.fromEntries(ids.map((id) => [id, atMs.map((t) => rss(id, t))])) };
}

describe('memory windows', () => {
  it('a run of 3 minutes or more compares its last minute with its second', () => {
    expect(memoryWindows(5_000, 605_000)).toEqual({ basis: 'minutes', early: { fromMs: 65_000, toMs: 125_000 }, late: { fromMs: 545_000, toMs: 605_000 } });
    expect(memoryWindows(0, 180_000).basis).toBe('minutes');
  });

  it('a shorter run compares its last sixth with its second', () => {
    expect(memoryWindows(3_000, 123_000)).toEqual({ basis: 'sixths', early: { fromMs: 23_000, toMs: 43_000 }, late: { fromMs: 103_000, toMs: 123_000 } });
  });

  it('median of odd and even counts, none for nothing', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

describe('judgeMemory', () => {
  it('property: a late RSS of exactly 1.1× the early one passes; one byte more fails', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 50 * 2 ** 20, max: 2 ** 32 }),
        fc.integer({ min: 30_000, max: 900_000 }),
        fc.integer({ min: 500, max: 5_000 }),
        fc.array(fc.integer({ min: 0, max: 2 ** 33 }), { minLength: 1, maxLength: 50 }),
        (early, span, everyMs, noise) => {
          const start = 2_000;
          const end = start + span;
          const w = memoryWindows(start, end);
          // Any RSS outside the two windows (warm-up spikes, the middle of the run) must not matter.
          const rss = (late: number) => (_id: string, t: number): number =>
            t >= w.early.fromMs && t < w.early.toMs ? early : t >= w.late.fromMs && t < w.late.toMs ? late : (noise[t % noise.length] ?? 0);
          const limit = RSS_LIMIT_RATIO * early;
          const within = judgeMemory(series(['n1'], end, everyMs, rss(limit)), start, end, {});
          const over = judgeMemory(series(['n1'], end, everyMs, rss(limit + 1)), start, end, {});
          const judged = within.nodes[0]?.judged === true;
          // With samples too sparse for a window, nothing is judged and the check cannot pass.
          expect(within.ok).toBe(judged);
          expect(over.ok).toBe(false);
          if (judged) {
            expect(within.nodes[0]).toMatchObject({ earlyBytes: early, lateBytes: limit, ok: true });
            expect(over.nodes[0]).toMatchObject({ ok: false, judged: true });
          }
        },
      ),
    );
  });

  it('takes the median, so one GC spike in a window does not decide', () => {
    const w = memoryWindows(0, 600_000);
    const rss = (_id: string, t: number): number => (t === w.late.fromMs + 10_000 ? 900e6 : 100e6);
    const result = judgeMemory(series(['n1'], 600_000, 5_000, rss), 0, 600_000, {});
    expect(result.ok).toBe(true);
    expect(result.nodes[0]?.ratio).toBe(1);
  });

  it('judges one process: a node restarted between the windows, or just before the first, is shown but not judged', () => {
    const w = memoryWindows(0, 600_000);
    // n2's last minute is a fresh process, 30% above its old one: two processes, not growth.
    const rss = (id: string, t: number): number => (id === 'n2' && t >= 300_000 ? 130e6 : 100e6);
    const result = judgeMemory(series(['n1', 'n2', 'n3'], 600_000, 2_000, rss), 0, 600_000, { n2: [300_000], n3: [w.early.fromMs - WARMUP_MS] });
    expect(result.nodes.map((n) => [n.id, n.judged, n.notJudged, n.ok])).toEqual([
      ['n1', true, undefined, true],
      ['n2', false, 'restarted', true],
      ['n3', false, 'restarted', true],
    ]);
    expect(result.nodes[1]?.ratio).toBeCloseTo(1.3);
    expect(result.ok).toBe(true);
    expect(result.note).toContain('not judged: n2 (restarted in between), n3 (restarted in between)');
    // Restarted well before the first window: its process is the same in both, so it is judged, and fails if it grew.
    const early = judgeMemory(series(['n1', 'n2'], 600_000, 2_000, rss), 0, 600_000, { n2: [w.early.fromMs - WARMUP_MS - 1] });
    expect(early.nodes.find((n) => n.id === 'n2')).toMatchObject({ judged: true, ok: false });
    expect(early.ok).toBe(false);
    // Killed for the last minute: no samples there.
    const killed = judgeMemory(series(['n1', 'n2'], 600_000, 2_000, (id, t) => (id === 'n2' && t >= 540_000 ? null : 100e6)), 0, 600_000, {});
    expect(killed.nodes.find((n) => n.id === 'n2')).toMatchObject({ judged: false, notJudged: 'no samples', ratio: null, ok: true });
    expect(killed.ok).toBe(true);
  });

  it('fails when any judged node grew, and when no node could be judged at all', () => {
    const w = memoryWindows(0, 120_000);
    const grew = judgeMemory(series(['n1', 'n2'], 120_000, 1_000, (id, t) => (id === 'n2' && t >= w.late.fromMs ? 130e6 : 100e6)), 0, 120_000, {});
    expect(grew.basis).toBe('sixths');
    expect(grew.ok).toBe(false);
    expect(grew.nodes.find((n) => n.id === 'n2')?.ratio).toBeCloseTo(1.3);
    expect(grew.note).toContain('sixth');
    const blind = judgeMemory(series(['n1'], 120_000, 1_000, () => null), 0, 120_000, {});
    expect(blind.ok).toBe(false);
    expect(blind.note).toContain('no node could be judged');
  });
});
