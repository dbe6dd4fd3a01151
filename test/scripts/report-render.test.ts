/**
 * The partition-experiment report renderers: the offline HTML page and the terminal summary, drawn
 * from a hand-built report. The HTML is checked as markup (no browser): no network reference, one
 * series per node, everything escaped, no NaN from degenerate timelines.
 */
import { describe, expect, it } from 'vitest';
import type { ClosedRangeResult, ExperimentReport, Timeline, Violation } from '../../scripts/partition/report.ts';
import { renderReportHtml } from '../../scripts/partition/report-html.ts';
import { renderReportText } from '../../scripts/partition/report-text.ts';
import { esc } from '../../scripts/partition/html-parts.ts';

const NASTY_KEY = '<b>&"x';
const NASTY_ESCAPED = '&lt;b&gt;&amp;&quot;x';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function violation(over: Partial<Violation> = {}): Violation {
  return { kind: 'lost', node: 'c3', key: NASTY_KEY, window: 'all', count: 41, acked: 42, unknown: 0, ...over };
}

/** A split of c3 from 10 s to 20 s, c2 killed and restarted inside it, one lost-hit violation. */
function makeReport(over: Partial<Mutable<ExperimentReport>> = {}): ExperimentReport {
  const atMs = Array.from({ length: 26 }, (_, i) => i * 1000);
  const acked = atMs.map((t) => Math.min(t, 20_000) / 10);
  // c2 is down from 12 s to 15 s; c3 stops answering the sampler at 11 s and 12 s.
  const counts = {
    c1: acked.map((a) => a),
    c2: acked.map((a, i) => (i >= 12 && i < 15 ? null : a)),
    c3: acked.map((a, i) => (i === 11 || i === 12 ? null : i >= 10 && i < 21 ? a / 2 : a)),
  };
  return {
    version: 1,
    experiment: 'split',
    description: 'Cut c3 off from c1 & c2 for 10 s, then heal.',
    settings: { nodes: 3, durationS: 20, rate: 100, keys: 20, seed: 7, cutMode: 'blackhole', convergeLimitS: 30, continuous: false },
    startedAt: '2025-01-02T03:04:05.000Z',
    nodes: [
      { id: 'c1', url: 'http://127.0.0.1:7001', acked: 700, failed: 0, unknown: 1, finalCount: 2000 },
      { id: 'c2', url: 'http://127.0.0.1:7002', acked: 600, failed: 90, unknown: 3, finalCount: 2000 },
      { id: 'c3', url: 'http://127.0.0.1:7003', acked: 700, failed: 0, unknown: 6, finalCount: 1999 },
    ],
    hits: { sent: 2100, acked: 2000, failed: 90, unknown: 10 },
    faults: [{ label: 'c3 cut off', fromMs: 10_000, toMs: 20_000, nodes: ['c3'] }],
    events: [
      { atMs: 12_000, label: 'kill -9 c2', node: 'c2' },
      { atMs: 15_000, label: 'c2 ready', node: 'c2' },
    ],
    loadEndMs: 20_000,
    convergence: { converged: true, ms: 1234, healAtMs: 20_000 },
    window: { epochFromMs: 1_735_787_045_000, epochToMs: 1_735_787_066_000, fromMs: 0, toMs: 21_000 },
    timeline: { atMs, acked, counts },
    checks: { total: 120, violations: [violation()] },
    ok: false,
    ...over,
  };
}

function passing(over: Partial<Mutable<ExperimentReport>> = {}): ExperimentReport {
  return makeReport({ ok: true, checks: { total: 120, violations: [] }, ...over });
}

/** The markup of one node's series group. */
function seriesGroup(html: string, id: string): string {
  const match = new RegExp(`<g class="series" data-node="${id}"[^>]*>(.*?)</g>`).exec(html);
  if (match?.[1] === undefined) throw new Error(`no series group for ${id}`);
  return match[1];
}

function expectFiniteSvg(html: string): void {
  expect(html).toContain('<svg');
  expect(html).not.toMatch(/NaN|Infinity|undefined/);
}

describe('renderReportHtml', () => {
  it('is self-contained: no script, no network reference', () => {
    const html = renderReportHtml(makeReport());
    expect(html).toMatch(/^<!doctype html>/);
    for (const banned of ['http://', 'https://', '<script', 'src=', 'href=', 'url(', '@import', '<link']) {
      expect(html, banned).not.toContain(banned);
    }
  });

  it('draws one series per node, broken where the node did not answer', () => {
    const html = renderReportHtml(makeReport());
    expect(html.match(/<g class="series"/g)).toHaveLength(3);
    expect(seriesGroup(html, 'c1').match(/<polyline/g)).toHaveLength(1);
    expect(seriesGroup(html, 'c2').match(/<polyline/g)).toHaveLength(2);
    expect(seriesGroup(html, 'c3').match(/<polyline/g)).toHaveLength(2);
    // Colours are distinct per node.
    const colours = ['c1', 'c2', 'c3'].map((id) => /stroke="(#[0-9a-f]+)"/.exec(seriesGroup(html, id))?.[1]);
    expect(new Set(colours).size).toBe(3);
    expectFiniteSvg(html);
  });

  it('keeps every line and point inside the drawing, late convergence included', () => {
    const html = renderReportHtml(makeReport({ convergence: { converged: true, ms: 25_000, healAtMs: 20_000 } }));
    const [, width, height] = /viewBox="0 0 (\d+) (\d+)"/.exec(html)?.map(Number) ?? [];
    const xs = [...html.matchAll(/ x[12]?="([^"]+)"/g)].map((m) => Number(m[1]));
    const ys = [...html.matchAll(/ y[12]?="([^"]+)"/g)].map((m) => Number(m[1]));
    for (const [, points] of html.matchAll(/points="([^"]+)"/g)) {
      for (const pair of (points ?? '').split(' ')) {
        const [px, py] = pair.split(',').map(Number);
        xs.push(px ?? NaN);
        ys.push(py ?? NaN);
      }
    }
    expect(xs.length).toBeGreaterThan(100);
    for (const v of xs) expect(v >= 0 && v <= (width ?? 0), `x ${v}`).toBe(true);
    for (const v of ys) expect(v >= 0 && v <= (height ?? 0), `y ${v}`).toBe(true);
    expect(html).toContain('>converged +25000 ms</text>');
  });

  it('marks the acked total, the fault, events, heal, convergence and the checked window', () => {
    const html = renderReportHtml(makeReport());
    expect(html).toMatch(/<g class="acked"><polyline [^>]*stroke-dasharray/);
    expect(html).toContain('>acked</text>');
    expect(html).toMatch(/<g class="fault">.*<rect .*>c3 cut off<\/text>/);
    expect(html).toContain('>kill -9 c2</text>');
    expect(html).toContain('>c2 ready</text>');
    expect(html).toContain('>heal</text>');
    expect(html).toContain('>converged +1234 ms</text>');
    expect(html).toContain('>checked window</text>');
    expect(html).toContain('converged 1234 ms after the heal');
  });

  it('cuts a fault label to its span (the full label stays in the tooltip) and alternates neighbours\' rows', () => {
    const long = 'flapping {n1,n2,n3,n4} | {n5,n6,n7}';
    const html = renderReportHtml(
      makeReport({
        faults: [
          { label: long, fromMs: 10_000, toMs: 11_000, nodes: ['n1'] },
          { label: 'short', fromMs: 12_000, toMs: 20_000, nodes: ['n2'] },
        ],
      }),
    );
    expect(html).toContain(`<title>${long}: n1</title>`);
    expect(html).not.toContain(`>${long}</text>`);
    const texts = [...html.matchAll(/<g class="fault">.*?<text x="[^"]+" y="([^"]+)">([^<]*)<\/text>/g)].map((m) => [m[1], m[2]]);
    expect(texts).toHaveLength(2);
    expect(texts[0]?.[1]).toMatch(/^fl.+…$/);
    expect(texts[1]?.[1]).toBe('short');
    expect(texts[0]?.[0]).not.toBe(texts[1]?.[0]);
  });

  it('escapes every report string and never emits the raw form', () => {
    const html = renderReportHtml(makeReport({ description: 'keys like <i>a</i> & "b"' }));
    expect(html).toContain(NASTY_ESCAPED);
    expect(html).not.toContain(NASTY_KEY);
    expect(html).toContain('keys like &lt;i&gt;a&lt;/i&gt; &amp; &quot;b&quot;');
    expect(html).not.toContain('<i>');
  });

  it('shows the settings, start time, node table and totals', () => {
    const html = renderReportHtml(makeReport());
    expect(html).toContain('<title>hitmesh · split</title>');
    expect(html).toContain('2025-01-02T03:04:05.000Z');
    expect(html).toContain('blackhole');
    expect(html).toContain('127.0.0.1:7002');
    expect(html).toContain('2100 sent, 2000 acked, 90 failed, 10 unknown');
    expect(html).toContain('120 (node, key, window) triples checked, 1 violation');
    // Only c3 has a violation.
    expect(html.match(/<td class="bad">/g)).toHaveLength(1);
    expect(html.match(/<td class="good">none<\/td>/g)).toHaveLength(2);
  });

  it('shows PASS or FAIL from report.ok', () => {
    const fail = renderReportHtml(makeReport());
    expect(fail).toContain('class="verdict fail"><strong>FAIL</strong>');
    expect(fail).not.toContain('verdict pass');
    const pass = renderReportHtml(passing());
    expect(pass).toContain('class="verdict pass"><strong>PASS</strong>');
    expect(pass).not.toContain('verdict fail');
    expect(pass).not.toContain('FAIL');
  });

  it('says when the cluster did not converge, and draws no convergence line', () => {
    const html = renderReportHtml(makeReport({ convergence: { converged: false, ms: null, healAtMs: 20_000 } }));
    expect(html).toContain('did not converge within 30 s');
    expect(html).not.toContain('converged +');
    expect(html).toContain('>heal</text>');
  });

  it('lists at most 50 violations and counts the rest', () => {
    const violations = Array.from({ length: 63 }, (_, i) => violation({ key: `k${i}` }));
    const html = renderReportHtml(makeReport({ checks: { total: 500, violations } }));
    expect(html).toContain('<code>k49</code>');
    expect(html).not.toContain('<code>k50</code>');
    expect(html).toContain('and 13 more');
  });

  const degenerate: [string, Timeline][] = [
    ['an empty timeline', { atMs: [], acked: [], counts: {} }],
    ['empty series', { atMs: [], acked: [], counts: { c1: [], c2: [], c3: [] } }],
    ['a single sample', { atMs: [500], acked: [3], counts: { c1: [3], c2: [null], c3: [2] } }],
    ['all-null series', { atMs: [0, 1000, 2000], acked: [0, 0, 0], counts: { c1: [null, null, null], c2: [null, null, null], c3: [null, null, null] } }],
    ['counts of 0', { atMs: [0, 1000], acked: [0, 0], counts: { c1: [0, 0], c2: [0, 0], c3: [0, 0] } }],
  ];
  for (const [name, timeline] of degenerate) {
    it(`renders ${name} without NaN`, () => {
      expectFiniteSvg(renderReportHtml(makeReport({ timeline })));
    });
  }

  it('renders a report where every instant is 0', () => {
    const html = renderReportHtml(
      makeReport({
        timeline: { atMs: [0], acked: [0], counts: { c1: [0] } },
        faults: [{ label: 'nothing', fromMs: 0, toMs: 0, nodes: [] }],
        events: [],
        loadEndMs: 0,
        convergence: { converged: true, ms: 0, healAtMs: 0 },
        window: { epochFromMs: 0, epochToMs: 0, fromMs: 0, toMs: 0 },
      }),
    );
    expectFiniteSvg(html);
    expect(html).toContain('<circle');
  });
});

describe('renderReportText', () => {
  /** The node table: the header line and the rows up to the blank line after it. */
  function tableLines(text: string): string[] {
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l.startsWith('node '));
    const end = lines.indexOf('', start);
    return lines.slice(start, end);
  }

  it('aligns the node table: every row the same length, figures right-aligned', () => {
    const report = makeReport({
      nodes: [
        { id: 'c1', url: 'http://127.0.0.1:7001', acked: 7, failed: 0, unknown: 1, finalCount: 2000 },
        { id: 'c10', url: 'http://127.0.0.1:7010', acked: 123_456, failed: 90, unknown: 3, finalCount: null },
        { id: 'c3', url: 'http://127.0.0.1:7003', acked: 700, failed: 12_345, unknown: 6, finalCount: 1999 },
      ],
    });
    const rows = tableLines(renderReportText(report));
    expect(rows).toHaveLength(4);
    expect(new Set(rows.map((r) => r.length)).size).toBe(1);
    expect(rows[2]).toMatch(/^c10 +123456 +90 +3 +n\/a +ok$/);
    expect(rows[3]).toMatch(/ ✗$/);
  });

  it('starts with the experiment and ends with a newline, plain text only', () => {
    const text = renderReportText(makeReport());
    expect(text.split('\n')[0]).toBe('hitmesh · split: Cut c3 off from c1 & c2 for 10 s, then heal.');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('\u001b');
    expect(text).toContain('hits: 2100 sent, 2000 acked, 90 failed, 10 unknown');
    expect(text).toContain('convergence: converged 1234 ms after the heal');
  });

  it('prints the PASS verdict', () => {
    const lines = renderReportText(passing()).trimEnd().split('\n');
    expect(lines.at(-1)).toBe('PASS: no acknowledged hit lost, none counted twice, converged in 1234 ms after the heal');
  });

  it('prints a FAIL verdict naming what broke', () => {
    const report = makeReport({
      convergence: { converged: false, ms: null, healAtMs: 20_000 },
      checks: { total: 120, violations: [violation(), violation({ kind: 'double-counted', count: 50 })] },
    });
    const text = renderReportText(report);
    const verdict = text.trimEnd().split('\n').at(-1) ?? '';
    expect(verdict).toMatch(/^FAIL: /);
    expect(verdict).toContain('lost');
    expect(verdict).toContain('counted twice');
    expect(verdict).toContain('did not converge within 30 s');
    expect(verdict).not.toContain('no answer');
    expect(text).toContain('convergence: did not converge within 30 s');
  });

  it('lists at most 10 violations, then how many more', () => {
    const violations = Array.from({ length: 14 }, (_, i) => violation({ key: `k${i}` }));
    const text = renderReportText(makeReport({ checks: { total: 500, violations } }));
    const listed = text.split('\n').filter((l) => l.startsWith('  lost '));
    expect(listed).toHaveLength(10);
    expect(text).toContain('"k9"');
    expect(text).not.toContain('"k10"');
    expect(text).toContain('  … and 4 more');
    expect(text).toContain('checks: 500 (node, key, window) checked, 14 violations');
  });

  it('quotes keys so control characters cannot break the log', () => {
    const text = renderReportText(makeReport({ checks: { total: 1, violations: [violation({ key: 'a\nb\u001b[31m' })] } }));
    expect(text).toContain('key "a\\nb\\u001b[31m"');
    expect(text).not.toContain('\u001b');
  });
});

describe('a --continuous report', () => {
  const closed = (over: Partial<ClosedRangeResult> = {}): ClosedRangeResult => ({
    label: 'fault start → heal second + 1 s',
    epochFromMs: 1_735_787_055_000,
    epochToMs: 1_735_787_066_000,
    fromMs: 10_000,
    toMs: 21_000,
    closedAtMs: 21_050,
    agreedAtMs: 21_234,
    violations: [],
    ...over,
  });
  const continuous = (over: Partial<ExperimentReport> = {}): ExperimentReport =>
    passing({
      settings: { ...makeReport().settings, continuous: true },
      convergence: { converged: true, ms: 1234, healAtMs: 20_000 },
      continuous: {
        convergeRange: { epochFromMs: 1_735_787_055_000, epochToMs: 1_735_787_066_000, fromMs: 10_000, toMs: 21_000 },
        tailMs: 3_000,
        ranges: [closed(), closed({ label: 'load start → last closed second', fromMs: -500, toMs: 24_000, closedAtMs: 24_100, agreedAtMs: 24_103 })],
        settledMs: 40,
      },
      ...over,
    });

  it('says the load was continuous and lists each closed range, in the text and on the page', () => {
    const text = renderReportText(continuous());
    expect(text).toContain(', continuous load');
    expect(text).toContain('convergence: converged 1234 ms after the heal at 20.0 s (every node agreeing on the closed range [10.0, 21.0) s, load running)');
    expect(text).toContain('  fault start → heal second + 1 s [10.0, 21.0) s: agreed 184 ms after it closed at 21.1 s, 0 violations');
    expect(text).toContain('  load start → last closed second [-0.5, 24.0) s: agreed 3 ms after it closed at 24.1 s, 0 violations');
    expect(text).toContain('lifetime and checked window: every node agreed 40 ms after the load stopped');
    expect(text.trimEnd().split('\n').at(-1)).toBe('PASS: no acknowledged hit lost, none counted twice, converged in 1234 ms after the heal (on a closed range, the load still running)');
    const html = renderReportHtml(continuous());
    expect(html).toContain('<dt>load</dt><dd>continuous through the heal</dd>');
    expect(html).toContain('Closed ranges, judged with the load running');
    expect(html.match(/<li class="good">/g)).toHaveLength(2);
  });

  it('a plain report says the load stopped at the heal and lists no closed range', () => {
    const text = renderReportText(passing());
    expect(text).not.toContain('continuous');
    expect(text).not.toContain('closed range');
    const html = renderReportHtml(passing());
    expect(html).toContain('<dt>load</dt><dd>stops at the heal</dd>');
    expect(html).not.toContain('Closed ranges');
  });

  it('a range the nodes never agreed on fails the verdict; its violations are listed with the others', () => {
    const missing = violation({ kind: 'missing', window: 'closed', node: 'c2', count: 40 });
    const report = continuous({ ok: false, continuous: { ...(continuous().continuous as NonNullable<ExperimentReport['continuous']>), ranges: [closed({ agreedAtMs: null, violations: [missing] })], settledMs: null } });
    const text = renderReportText(report);
    const verdict = text.trimEnd().split('\n').at(-1) ?? '';
    expect(verdict).toContain('hits missing from closed ranges the nodes never agreed on (1 check)');
    expect(verdict).toContain('nodes did not agree on 1 closed range');
    expect(verdict).toContain('counts did not agree after the load stopped');
    expect(text).toContain('never agreed, 1 violation');
    expect(text).toMatch(/missing {8}c2 {2}key .* window closed count 40/);
    const html = renderReportHtml(report);
    expect(html).toContain('<li class="bad">');
    expect(html).toContain('<td>missing</td><td>c2</td>');
    // The node table marks c2 as having broken a guarantee.
    expect(html).toMatch(/c2<\/td><td>127\.0\.0\.1:7002<\/td>.*?<td class="bad">/);
  });
});

describe('a retry report', () => {
  const retry = (over: Partial<NonNullable<ExperimentReport['retry']>> = {}): NonNullable<ExperimentReport['retry']> => ({
    sides: [['c1', 'c2'], ['c3']],
    keys: 20,
    logical: 400,
    acked: 398,
    failed: 1,
    unknown: 1,
    attempts: 900,
    retries: 480,
    acrossCut: 190,
    acrossAfterHeal: 40,
    bothSides: 120,
    duplicates: 250,
    sameNodeRepeats: 90,
    conflictsSent: 40,
    conflictsRefused: 40,
    flagViolations: 0,
    checked: 300,
    violations: [],
    flags: [],
    lastAnswerMs: 420,
    agreedMs: 460,
    slowestMs: 35,
    ...over,
  });

  it('gives the idempotent hits, retries, duplicates and the check of their keys, in the text and on the page', () => {
    const report = passing({ experiment: 'retry', retry: retry() });
    const text = renderReportText(report);
    expect(text).toContain('idempotent hits, cut {c1, c2} | {c3}: 400 logical (398 acked, 1 failed, 1 unknown) on 20 keys of their own, 900 attempts (the slowest answered in 35 ms)');
    expect(text).toContain('  retries: 480, 190 across the cut while it held, 40 across sides after the heal');
    expect(text).toContain('  "duplicate": true answers: 250; repeats on a node that had already answered 200 (each must say so): 90');
    expect(text).toContain('  retry keys: 300 (node, key, window) checked, 0 violations; the last retry answered 420 ms after the heal, every node agreed on them 460 ms after it');
    expect(text.trimEnd().split('\n').at(-1)).toBe('PASS: no acknowledged hit lost, none counted twice, converged in 1234 ms after the heal; each of 400 idempotent hits counted once over 900 attempts');
    const html = renderReportHtml(report);
    expect(html).toContain('<h2>Idempotent retries</h2>');
    expect(html).not.toContain('<ul class="retry"><li class="bad">');
    expect(renderReportText(passing())).not.toContain('idempotent');
    expect(renderReportHtml(passing())).not.toContain('Idempotent retries');
  });

  it('a token counted twice, a repeat not flagged and a run that never crossed the cut each fail the verdict, escaped on the page', () => {
    const twice = violation({ kind: 'double-counted', key: 'retry-003', node: 'c3', count: 12, acked: 9 });
    const flag = { kind: 'not-flagged' as const, token: NASTY_KEY, key: 'retry-003', node: 'c1', detail: 'answered "duplicate": false though it had already answered 200 for this token' };
    const report = makeReport({ experiment: 'retry', checks: { total: 120, violations: [] }, retry: retry({ violations: [twice], flags: [flag], flagViolations: 3, acrossCut: 0 }) });
    const verdict = renderReportText(report).trimEnd().split('\n').at(-1) ?? '';
    expect(verdict).toMatch(/^FAIL: hits counted twice \(1 check\)/);
    expect(verdict).toContain('answers broke the Idempotency-Key rules (3 answers)');
    expect(verdict).toContain('inconclusive: no retry crossed the cut while it held');
    const text = renderReportText(report);
    expect(text).toContain('  answers that broke the rules: 3 (1 listed)');
    expect(text).toContain(`  NOT-FLAGGED c1 token ${JSON.stringify(NASTY_KEY)} key "retry-003": answered`);
    const html = renderReportHtml(report);
    // The token is shown JSON-quoted, then escaped.
    expect(html).toContain(`token ${esc(JSON.stringify(NASTY_KEY))} key`);
    expect(html).not.toContain('<b>');
    expect(html).toContain('<td>double-counted</td><td>c3</td><td><code>retry-003</code></td>');
    expect(html.match(/<li class="bad">/g)?.length).toBeGreaterThanOrEqual(3);
  });
});
