/** The terminal summary of a soak report: plain text, drawn from the report alone (see report.ts). */
import { plural } from '../partition/report-text.ts';
import type { ClosedRangeResult, Violation } from '../partition/report.ts';
import type { SoakReport } from './report.ts';

const MAX_VIOLATION_LINES = 10;

export function renderSoakText(r: SoakReport): string {
  const violations = soakViolations(r);
  const lines = [
    `hitmesh · soak: ${r.settings.nodes} nodes, ${r.settings.durationS} s at ${rateText(r)} over ${r.settings.keys} keys, seed ${r.settings.seed}`,
    `started ${r.startedAt}; ${r.steadyNode} is never killed or wiped (the memory check's steady process)`,
    '',
    ...nodeTable(r),
    '',
    `hits: ${r.hits.sent} sent, ${r.hits.acked} acked, ${r.hits.failed} failed, ${r.hits.unknown} unknown${r.notSent > 0 ? `; ${r.notSent} not sent (their node had too many in flight)` : ''}`,
    `faults: ${faultsText(r)}`,
    ...r.skipped.map((s) => `  skipped ${s.kind}: ${s.reason}`),
    ...r.faults.filter((f) => f.error !== undefined).map((f) => `  failed to apply ${f.label}: ${f.error ?? ''}`),
    `heal → converged: ${convergenceText(r)}`,
    `replication lag: ${lagText(r)}`,
    `closed ranges: ${rangesText(r)}`,
    `checks: ${r.checks.total} (node, key, range) checked after the load stopped, ${plural(violations.length, 'violation')} in all`,
    ...violations.slice(0, MAX_VIOLATION_LINES).map((v) => `  ${v.kind.padEnd(14)} ${v.node}  key ${JSON.stringify(v.key)}  ${v.window.padEnd(6)} count ${v.count ?? 'no answer'}, acked ${v.acked}, unknown ${v.unknown}`),
  ];
  if (violations.length > MAX_VIOLATION_LINES) lines.push(`  … and ${violations.length - MAX_VIOLATION_LINES} more`);
  lines.push(`memory: ${memoryText(r)}`, soakVerdictLine(r));
  return `${lines.join('\n')}\n`;
}

/** PASS or FAIL with what broke; shared with the HTML page. */
export function soakVerdictLine(r: SoakReport): string {
  if (r.ok) return 'PASS: no acknowledged hit lost, none counted twice, every closed range converged, memory flat';
  const broke: string[] = [];
  const violations = soakViolations(r);
  const count = (kind: Violation['kind']): number => violations.filter((v) => v.kind === kind).length;
  if (count('lost') > 0) broke.push(`acknowledged hits lost (${plural(count('lost'), 'check')})`);
  if (count('double-counted') > 0) broke.push(`hits counted twice (${plural(count('double-counted'), 'check')})`);
  if (count('no-answer') > 0) broke.push(`no answer (${plural(count('no-answer'), 'check')})`);
  if (count('missing') > 0) broke.push(`hits missing from closed ranges the nodes never agreed on (${plural(count('missing'), 'check')})`);
  const unagreed = closedRanges(r).filter((x) => x.agreedAtMs === null).length;
  if (unagreed > 0) broke.push(`nodes did not agree on ${plural(unagreed, 'closed range')} within ${r.settings.convergeLimitS} s`);
  if (r.settledMs === null) broke.push('counts did not agree after the load stopped');
  if (!r.verdict.memoryFlat) broke.push(r.memory.nodes.some((n) => n.judged) ? `memory not flat (${r.memory.note})` : `memory could not be judged (${r.memory.note})`);
  if (!r.verdict.faultsApplied) broke.push('a fault could not be applied or undone');
  if (broke.length === 0) broke.push('marked failed, but no broken check is recorded');
  return `FAIL: ${broke.join('; ')}`;
}

/** Every closed range judged with the load running: each fault's, then the tail's. */
export function closedRanges(r: SoakReport): ClosedRangeResult[] {
  return [...r.faults.flatMap((f) => (f.range === undefined ? [] : [f.range])), r.tailRange];
}

export function soakViolations(r: SoakReport): Violation[] {
  return [...closedRanges(r).flatMap((x) => x.violations), ...r.checks.violations];
}

export function rateText(r: SoakReport): string {
  const c = r.calibration;
  return c === undefined ? `${r.rate} hits/s (--rate)` : `${r.rate} hits/s (half the calibration peak of ${c.peakPerS} hits/s)`;
}

/** The q-quantile (0..1) of `values`, nearest rank; null for none. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

export function faultsText(r: SoakReport): string {
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  return `${r.faults.length} applied, one at a time (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`;
}

export function convergenceText(r: SoakReport): string {
  const ms = r.faults.flatMap((f) => (f.convergedMs === null ? [] : [f.convergedMs]));
  const never = r.faults.filter((f) => f.range !== undefined && f.convergedMs === null).length;
  if (ms.length === 0) return never > 0 ? `never, on ${plural(never, 'fault')}` : 'no fault healed';
  const kinds = [...new Set(r.faults.map((f) => f.kind))].map((kind) => {
    const of = r.faults.filter((f) => f.kind === kind).flatMap((f) => (f.convergedMs === null ? [] : [f.convergedMs]));
    return `${kind} ${quantile(of, 0.5) ?? '—'}`;
  });
  return `median ${quantile(ms, 0.5)} ms, p90 ${quantile(ms, 0.9)} ms, max ${quantile(ms, 1)} ms over ${plural(ms.length, 'fault')}${never > 0 ? `, ${never} never` : ''}; median per kind (ms): ${kinds.join(', ')}`;
}

export function lagText(r: SoakReport): string {
  const reported = Object.values(r.timeline.lagMs).flat().filter((v): v is number => v !== null);
  const markers = r.markers.flatMap((m) => (m.ms === null ? [] : [m.ms]));
  const missing = r.markers.length - markers.length;
  return (
    `nodes report p50 ${quantile(reported, 0.5) ?? '—'} ms, p99 ${quantile(reported, 0.99) ?? '—'} ms, max ${quantile(reported, 1) ?? '—'} ms; ` +
    `a marker hit reached every running node in p50 ${quantile(markers, 0.5) ?? '—'} ms, p99 ${quantile(markers, 0.99) ?? '—'} ms, max ${quantile(markers, 1) ?? '—'} ms ` +
    `(${markers.length} markers${missing > 0 ? `, ${missing} not acked or not seen within 10 s` : ''})`
  );
}

export function rangesText(r: SoakReport): string {
  const ranges = closedRanges(r);
  const agreed = ranges.filter((x) => x.agreedAtMs !== null).length;
  const settled = r.settledMs === null ? 'counts did not agree after the load stopped' : `every range agreed ${r.settledMs} ms after the load stopped`;
  return `${ranges.length} judged with the load running, ${agreed} agreed on every node; ${settled}`;
}

export function memoryText(r: SoakReport): string {
  const mb = (b: number | null): string => (b === null ? '—' : `${(b / 2 ** 20).toFixed(0)} MB`);
  const ratio = (n: SoakReport['memory']['nodes'][number]): string => (n.ratio === null ? '' : `${n.ratio.toFixed(2)}×`);
  const nodes = r.memory.nodes.map((n) => `${n.id} ${mb(n.earlyBytes)} → ${mb(n.lateBytes)} (${n.judged ? `${ratio(n)}${n.ok ? '' : ' ✗'}` : `${ratio(n)}${n.ratio === null ? '' : ', '}not judged`})`);
  const verdict = r.memory.ok ? 'flat' : r.memory.nodes.some((n) => n.judged) ? 'NOT flat' : 'could not be judged';
  return `${verdict}: ${nodes.join(', ')}; ${r.memory.note}`;
}

function nodeTable(r: SoakReport): string[] {
  const broken = new Set(soakViolations(r).map((v) => v.node));
  const header = ['node', 'acked', 'failed', 'unknown', 'final', 'starts', 'ok'];
  const rows = r.nodes.map((n) => [n.id, String(n.acked), String(n.failed), String(n.unknown), n.finalCount === null ? 'n/a' : String(n.finalCount), String(n.starts), broken.has(n.id) ? '✗' : 'ok']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}
