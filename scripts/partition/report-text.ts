/**
 * The terminal summary of a partition-experiment report: plain text, no colours, so it reads the
 * same in a terminal, a CI log or a file. Drawn from the report alone (see report.ts).
 */
import type { ExperimentReport, NodeSummary, Violation, ViolationKind } from './report.ts';

/** Violations listed one per line; the rest are only counted. */
const MAX_VIOLATION_LINES = 10;

export function renderReportText(report: ExperimentReport): string {
  const { hits, checks } = report;
  const violations = checks.violations;
  const lines = [
    `hitmesh · ${report.experiment}: ${report.description}`,
    settingsLine(report),
    '',
    ...nodeTable(report),
    '',
    `hits: ${hits.sent} sent, ${hits.acked} acked, ${hits.failed} failed, ${hits.unknown} unknown`,
    `convergence: ${convergenceText(report)}`,
    `checks: ${checks.total} (node, key, window) checked, ${plural(violations.length, 'violation')}`,
    ...violations.slice(0, MAX_VIOLATION_LINES).map((v) => `  ${violationText(v)}`),
  ];
  if (violations.length > MAX_VIOLATION_LINES) lines.push(`  … and ${violations.length - MAX_VIOLATION_LINES} more`);
  lines.push(verdictLine(report));
  return `${lines.join('\n')}\n`;
}

/**
 * The one-line verdict, shared with the HTML page so both say the same thing. PASS or FAIL follows
 * `report.ok`; a FAIL names every kind of breakage the report records.
 */
export function verdictLine(report: ExperimentReport): string {
  const { convergence } = report;
  if (report.ok) {
    return `PASS: no acknowledged hit lost, none counted twice, converged in ${convergence.ms ?? '?'} ms after the heal`;
  }
  const broke: string[] = [];
  const lost = countKind(report, 'lost');
  const twice = countKind(report, 'double-counted');
  const silent = countKind(report, 'no-answer');
  if (lost > 0) broke.push(`acknowledged hits lost (${plural(lost, 'check')})`);
  if (twice > 0) broke.push(`hits counted twice (${plural(twice, 'check')})`);
  if (silent > 0) broke.push(`no answer (${plural(silent, 'check')})`);
  if (!convergence.converged) broke.push(`did not converge within ${report.settings.convergeLimitS} s after the heal`);
  // ok=false with nothing above is an inconsistent report; say so rather than print an empty reason.
  if (broke.length === 0) broke.push('marked failed, but no violation or convergence failure is recorded');
  return `FAIL: ${broke.join('; ')}`;
}

/** Node ids that broke at least one guarantee. */
export function nodesWithViolations(report: ExperimentReport): ReadonlySet<string> {
  return new Set(report.checks.violations.map((v) => v.node));
}

export function convergenceText(report: ExperimentReport): string {
  const { convergence, settings } = report;
  const healS = (convergence.healAtMs / 1000).toFixed(1);
  return convergence.converged && convergence.ms !== null
    ? `converged ${convergence.ms} ms after the heal at ${healS} s`
    : `did not converge within ${settings.convergeLimitS} s after the heal at ${healS} s`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function settingsLine(report: ExperimentReport): string {
  const s = report.settings;
  return (
    `started ${report.startedAt}: ${s.nodes} nodes, ${s.durationS} s at ${s.rate} hits/s over ${s.keys} keys, ` +
    `seed ${s.seed}, cut mode ${s.cutMode}`
  );
}

/** Node id left-aligned, figures right-aligned, so every row has the same length. */
function nodeTable(report: ExperimentReport): string[] {
  const broken = nodesWithViolations(report);
  const header = ['node', 'acked', 'failed', 'unknown', 'final', 'ok'];
  const rows = report.nodes.map((n: NodeSummary) => [
    n.id,
    String(n.acked),
    String(n.failed),
    String(n.unknown),
    n.finalCount === null ? 'n/a' : String(n.finalCount),
    broken.has(n.id) ? '✗' : 'ok',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

function violationText(v: Violation): string {
  // Keys are quoted with JSON escaping: a key holding a newline or an escape sequence cannot break the log.
  const count = v.count === null ? 'no answer' : String(v.count);
  return `${v.kind.padEnd(14)} ${v.node}  key ${JSON.stringify(v.key)}  window ${v.window.padEnd(6)} count ${count}, acked ${v.acked}, unknown ${v.unknown}`;
}

function countKind(report: ExperimentReport, kind: ViolationKind): number {
  return report.checks.violations.filter((v) => v.kind === kind).length;
}
