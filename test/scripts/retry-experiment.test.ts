/**
 * The `retry` partition experiment for real: three node processes behind TCP
 * fault proxies, cut into two sides, the usual load plus hits with an
 * `Idempotency-Key` each, retried across the cut, on the same node, during it
 * and after the heal. After the heal every token must count once on every
 * node, and every node's answers must follow the duplicate and 422 rules.
 */
import { describe, expect, it } from 'vitest';
import { findExperiment } from '../../scripts/partition/experiments.ts';
import { renderReportHtml } from '../../scripts/partition/report-html.ts';
import { renderReportText } from '../../scripts/partition/report-text.ts';
import { runExperiment } from '../../scripts/partition/run-experiment.ts';

describe('npm run partition -- retry', () => {
  it('every idempotent hit counts once on every node after the heal, however often and wherever it was retried', async () => {
    const experiment = findExperiment('retry');
    if (experiment === undefined) throw new Error('no retry experiment');
    const lines: string[] = [];
    const report = await runExperiment(
      experiment,
      { nodes: 3, durationS: 5, rate: 150, keys: 10, seed: 1, cutMode: 'cut', convergeLimitS: 30, continuous: false },
      { nodeLine: (id, line) => lines.push(`${id} ${line}`) },
    );
    const text = renderReportText(report);
    const retry = report.retry;
    if (retry === undefined) throw new Error(`no retry section in the report:\n${text}`);
    // The counts: the load's keys and ids as in every experiment, and every retry key over the lifetime, the window and one minute, hour and day.
    expect(report.checks.violations, text).toEqual([]);
    expect(retry.violations, text).toEqual([]);
    expect(retry.checked).toBe(3 * 10 * 5);
    expect(retry.agreedMs).not.toBeNull();
    expect(retry.agreedMs ?? 0).toBeGreaterThanOrEqual(retry.lastAnswerMs ?? Infinity);
    // The answers: no repeat said duplicate false, no phantom duplicate, every other n a 422.
    expect(retry.flags, text).toEqual([]);
    expect(retry.flagViolations).toBe(0);
    // It exercised what it is for: retries across the cut while it held and after the heal, tokens taken on both sides, same-node repeats.
    expect(retry.logical).toBeGreaterThan(50);
    expect(retry.retries).toBeGreaterThan(retry.logical / 2);
    expect(retry.acrossCut).toBeGreaterThan(0);
    expect(retry.acrossAfterHeal).toBeGreaterThan(0);
    expect(retry.bothSides).toBeGreaterThan(0);
    expect(retry.sameNodeRepeats).toBeGreaterThan(0);
    expect(retry.duplicates).toBeGreaterThanOrEqual(retry.sameNodeRepeats);
    expect(retry.conflictsSent).toBeGreaterThan(0);
    expect(retry.conflictsRefused).toBe(retry.conflictsSent);
    expect(retry.acked + retry.failed + retry.unknown).toBe(retry.logical);
    expect(retry.failed).toBe(0);
    // The cut was real: one span, and the two sides' counts diverged under it.
    expect(report.faults).toHaveLength(1);
    const fault = report.faults[0];
    const during = report.timeline.atMs.flatMap((t, i) => (fault !== undefined && t > fault.fromMs + 500 && t < fault.toMs ? [i] : []));
    expect(during.some((i) => new Set(Object.values(report.timeline.counts).map((series) => series[i])).size > 1)).toBe(true);
    expect(report.convergence.converged).toBe(true);
    expect(report.ok, `${text}\n${lines.slice(-20).join('\n')}`).toBe(true);
    expect(text).toMatch(/^PASS: .*; each of \d+ idempotent hits counted once over \d+ attempts$/m);
    const html = renderReportHtml(report);
    expect(html).toContain('<h2>Idempotent retries</h2>');
    expect(html).not.toMatch(/https?:\/\//);
  });
});
