/**
 * The `retry` partition experiment for real: three node processes behind TCP
 * fault proxies, cut into two sides, the usual load plus hits with an
 * `Idempotency-Key` each, retried across the cut, on the same node, during it
 * and after the heal. After the heal every token must count once on every
 * node, and every node's answers must follow the duplicate and 422 rules.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findExperiment } from '../../scripts/partition/experiments.ts';
import { renderReportHtml } from '../../scripts/partition/report-html.ts';
import { renderReportText } from '../../scripts/partition/report-text.ts';
import { runExperiment } from '../../scripts/partition/run-experiment.ts';

const SETTINGS = { nodes: 3, durationS: 5, rate: 150, keys: 10, seed: 1, cutMode: 'cut', convergeLimitS: 30, continuous: false } as const;

describe('npm run partition -- retry', () => {
  it('every idempotent hit counts once on every node after the heal, however often and wherever it was retried', async () => {
    const experiment = findExperiment('retry');
    if (experiment === undefined) throw new Error('no retry experiment');
    const lines: string[] = [];
    const report = await runExperiment(
      experiment,
      SETTINGS,
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

  // The mutation test of the check; its control is the test above (the same settings, without the bug).
  it('a planted bug that never takes a duplicate off (every answer still right) fails the check on the retry keys and nowhere else', async () => {
    const experiment = findExperiment('retry');
    if (experiment === undefined) throw new Error('no retry experiment');
    // Not imported here: importing it would patch this process's TokenState too.
    const fixture = fileURLToPath(new URL('../fixtures/keep-duplicates.ts', import.meta.url));
    const planted = new Set<string>();
    const report = await runExperiment(experiment, SETTINGS, {
      nodeArgs: ['--import', fixture],
      nodeLine: (id, line) => {
        if (line.includes('planted bug: duplicates are never taken off')) planted.add(id);
      },
    });
    // Every node joined some token taken elsewhere too, so the patch ran in each of them.
    expect([...planted].sort()).toEqual(['n1', 'n2', 'n3']);
    const retry = report.retry;
    if (retry === undefined) throw new Error('no retry section in the report');
    expect(report.ok).toBe(false);
    expect(report.convergence.converged).toBe(true);
    expect(report.checks.violations).toEqual([]);
    // The answers were right; the counts were not: every retry key a token taken on both sides fell on is counted too high, on every node.
    expect(retry.flagViolations).toBe(0);
    expect(retry.bothSides).toBeGreaterThan(0);
    expect(retry.violations.length).toBeGreaterThan(0);
    expect(new Set(retry.violations.map((v) => v.kind))).toEqual(new Set(['double-counted']));
    const lifetime = retry.violations.filter((v) => v.window === 'all');
    expect(new Set(lifetime.map((v) => v.node))).toEqual(new Set(['n1', 'n2', 'n3']));
    for (const v of lifetime) expect(v.count ?? 0).toBeGreaterThan(v.acked + v.unknown);
    const text = renderReportText(report);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^FAIL: hits counted twice \(\d+ checks\)$/);
    expect(text).toMatch(/double-counted +n\d {2}key "retry-00\d" {2}window all +count \d+/);
  });
});
