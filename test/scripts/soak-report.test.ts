/**
 * The soak's readings (metrics, /cluster), the libfaketime probe, and its
 * report renderers, from a hand-built report.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ClosedRangeResult } from '../../scripts/partition/report.ts';
import { checkFaketime, DEFAULT_FAKETIME_LIBRARY } from '../../scripts/soak/faketime.ts';
import { judgeMemory } from '../../scripts/soak/memory-check.ts';
import { maxClockOffsetMs, maxReplicationLagMs, residentBytes } from '../../scripts/soak/node-stats.ts';
import { renderSoakHtml } from '../../scripts/soak/report-html.ts';
import { quantile, renderSoakText } from '../../scripts/soak/report-text.ts';
import type { SoakReport } from '../../scripts/soak/report.ts';

describe('node readings', () => {
  it('finds the RSS under either name, labelled or not', () => {
    const page = '# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes{node="n1"} 111124480\n';
    expect(residentBytes(page)).toBe(111_124_480);
    expect(residentBytes('process_cpu_seconds_total 3\nprocess_resident_memory_bytes 5.2e7\n')).toBe(52_000_000);
    expect(residentBytes('process_resident_memory_bytes_max 5\nhitmesh_heap_bytes 9\n')).toBeUndefined();
    expect(residentBytes('process_resident_memory_bytes NaN\n')).toBeUndefined();
  });

  it('takes the largest lag and the largest clock offset either way over the peers', () => {
    const cluster = { node: {}, peers: [{ replicationLagMs: 12, clockOffsetMs: -2_100 }, { replicationLagMs: 40, clockOffsetMs: 3 }, { replicationLagMs: null, clockOffsetMs: null }] };
    expect(maxReplicationLagMs(cluster)).toBe(40);
    expect(maxClockOffsetMs(cluster)).toBe(2_100);
    expect(maxReplicationLagMs({ peers: [] })).toBeUndefined();
    expect(maxReplicationLagMs('nonsense')).toBeUndefined();
    expect(maxClockOffsetMs({ peers: [{}, 7] })).toBeUndefined();
  });
});

describe('checkFaketime', () => {
  it('says why the skew fault is skipped when the library is off or missing', async () => {
    expect(await checkFaketime('none')).toEqual({ ok: false, reason: 'turned off with --faketime none' });
    const missing = await checkFaketime('/nonexistent/libfaketime.so.1');
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.reason).toMatch(/libfaketime is not installed \(no \/nonexistent\/libfaketime\.so\.1; Debian: apt-get install faketime\)/);
  });

  it.runIf(existsSync(DEFAULT_FAKETIME_LIBRARY))('finds the installed library moving Node\'s clock', async () => {
    expect(await checkFaketime(DEFAULT_FAKETIME_LIBRARY)).toEqual({ ok: true, library: DEFAULT_FAKETIME_LIBRARY });
  });
});

const NASTY = '<b>&"x';

function range(over: Partial<ClosedRangeResult> = {}): ClosedRangeResult {
  return { label: 'cut {n1} | {n2,n3}', epochFromMs: 1_000_000, epochToMs: 1_005_000, fromMs: 10_000, toMs: 15_000, closedAtMs: 15_100, agreedAtMs: 15_300, violations: [], ...over };
}

function makeReport(over: Partial<SoakReport> = {}): SoakReport {
  const atMs = Array.from({ length: 31 }, (_, i) => i * 2_000);
  const rss = atMs.map(() => 120 * 2 ** 20);
  const timeline = {
    atMs,
    acked: atMs.map((t) => t * 2),
    counts: { n1: atMs.map((t) => t * 2), n2: atMs.map((t, i) => (i === 8 ? null : t * 2)), n3: atMs.map((t) => t * 2) },
    rssBytes: { n1: rss, n2: rss, n3: rss },
    lagMs: { n1: atMs.map(() => 20), n2: atMs.map(() => 30), n3: atMs.map(() => 25) },
    clockOffsetMs: { n1: atMs.map(() => 1), n2: atMs.map(() => 1), n3: atMs.map(() => 1) },
  };
  return {
    version: 1,
    kind: 'soak',
    settings: { nodes: 3, durationS: 55, rate: undefined, keys: 20, seed: 1, faults: ['cut', 'kill', 'skew'], calibrateS: 3, convergeLimitS: 30, faketime: 'none' },
    startedAt: '2026-12-01T10:00:00.000Z',
    rate: 1_500,
    rateSource: 'calibration',
    calibration: { burstMs: 3_010, concurrency: 16, sent: 9_000, acked: 9_000, peakPerS: 3_000, meanPerS: 2_990 },
    loadStartMs: 4_000,
    loadEndMs: 59_000,
    steadyNode: 'n2',
    nodes: ['n1', 'n2', 'n3'].map((id) => ({ id, url: `http://127.0.0.1:70${id.slice(1)}`, acked: 30_000, failed: id === 'n3' ? 500 : 0, unknown: 2, finalCount: 90_004, starts: id === 'n3' ? 2 : 1 })),
    hits: { sent: 90_506, acked: 90_000, failed: 500, unknown: 6 },
    notSent: 0,
    faults: [
      { kind: 'cut', label: 'cut {n1} | {n2,n3}', fromMs: 10_000, toMs: 14_000, nodes: ['n1', 'n2', 'n3'], range: range(), convergedMs: 300 },
      { kind: 'kill', label: `kill -9 n3 ${NASTY}`, fromMs: 20_000, toMs: 24_000, nodes: ['n3'], range: range({ label: 'kill', fromMs: 20_000, toMs: 25_000 }), convergedMs: 120 },
    ],
    skipped: [{ kind: 'skew', reason: 'turned off with --faketime none' }],
    events: [{ atMs: 20_000, label: 'kill -9 n3', node: 'n3' }],
    sampleEveryMs: 2_000,
    timeline,
    markers: atMs.map((t, i) => ({ atMs: t, node: 'n1', ms: i === 5 ? null : 30 + i })),
    tailRange: range({ label: 'run start → last closed second', fromMs: -100, toMs: 58_900 }),
    settledMs: 12,
    checks: { total: 500, violations: [] },
    memory: judgeMemory(timeline, 4_000, 59_000, { n3: [20_000] }),
    verdict: { exact: true, converged: true, memoryFlat: true, faultsApplied: true },
    ok: true,
    ...over,
  };
}

describe('soak report', () => {
  it('the HTML page is self-contained and escapes every string', () => {
    const html = renderSoakHtml(makeReport());
    expect(html).toMatch(/^<!doctype html>/);
    for (const banned of ['http://', 'https://', '<script', 'src=', 'href=', 'url(', '@import', '<link']) expect(html, banned).not.toContain(banned);
    expect(html).not.toContain(NASTY);
    expect(html).toContain('&lt;b&gt;&amp;&quot;x');
    expect(html).not.toMatch(/NaN|Infinity|undefined/);
  });

  it('draws counts, RSS, lag and clock offsets over time, with the faults shaded', () => {
    const html = renderSoakHtml(makeReport());
    expect(html.match(/<svg class="chart"/g)).toHaveLength(4);
    for (const label of ['lifetime count per node', 'resident memory per node', 'replication lag per node', 'clock offset']) expect(html).toContain(label);
    // Two faults shaded on each of the four charts; the marker lag as dots; n2's missing count sample breaks its line.
    expect(html.match(/<g class="fault">/g)).toHaveLength(8);
    expect(html).toMatch(/data-series="marker"[^>]*><circle/);
    expect(/data-series="n2"[^>]*>(.*?)<\/g>/.exec(html)?.[1]?.match(/<polyline/g)).toHaveLength(2);
    expect(html).toContain('class="verdict pass"><strong>PASS</strong>');
    expect(html).toContain('skipped skew: turned off with --faketime none');
  });

  it('the summary gives the rate chosen, the faults, convergence, lag, memory and the verdict', () => {
    const text = renderSoakText(makeReport());
    expect(text).toContain('at 1500 hits/s (half the calibration peak of 3000 hits/s)');
    expect(text).toContain('hits: 90506 sent, 90000 acked, 500 failed, 6 unknown\n');
    expect(renderSoakText(makeReport({ notSent: 7 }))).toContain('6 unknown; 7 not sent (their node had too many in flight)');
    expect(text).toContain('faults: 2 applied, one at a time (cut 1, kill 1)');
    expect(text).toContain('  skipped skew: turned off with --faketime none');
    expect(text).toMatch(/heal → converged: median 120 ms, p90 300 ms, max 300 ms over 2 faults/);
    expect(text).toMatch(/marker hit reached every running node in p50 \d+ ms/);
    expect(text).toMatch(/memory: flat: n1 120 MB → 120 MB \(1\.00×\)/);
    expect(text).toContain('sixth');
    expect(text.trimEnd().split('\n').at(-1)).toBe('PASS: no acknowledged hit lost, none counted twice, every closed range converged, memory flat');
  });

  it('a failed soak says what broke', () => {
    const missing = { kind: 'missing' as const, node: 'n1', key: 'key-001', window: 'closed' as const, count: 3, acked: 5, unknown: 0 };
    const report = makeReport({
      ok: false,
      tailRange: range({ agreedAtMs: null, violations: [missing] }),
      verdict: { exact: true, converged: false, memoryFlat: false, faultsApplied: true },
    });
    const verdict = renderSoakText(report).trimEnd().split('\n').at(-1) ?? '';
    expect(verdict).toMatch(/^FAIL: /);
    expect(verdict).toContain('hits missing from closed ranges the nodes never agreed on (1 check)');
    expect(verdict).toContain('nodes did not agree on 1 closed range within 30 s');
    expect(verdict).toContain('memory not flat');
    expect(renderSoakHtml(report)).toContain('class="verdict fail"><strong>FAIL</strong>');
  });

  it('quantiles by nearest rank', () => {
    expect(quantile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(quantile([5, 1, 4, 2, 3], 1)).toBe(5);
    expect(quantile([5, 1, 4, 2, 3], 0)).toBe(1);
    expect(quantile([], 0.5)).toBeNull();
  });
});
