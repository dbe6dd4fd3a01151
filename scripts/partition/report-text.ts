/**
 * The terminal summary of a partition-experiment report: plain text, no colours, so it reads the
 * same in a terminal, a CI log or a file. Drawn from the report alone (see report.ts).
 */
import type { CheckedRange, ClosedRangeResult, ExperimentReport, NodeSummary, Violation, ViolationKind } from './report.ts';
import { retryGaps } from './retry-load.ts';

/** Violations listed one per line; the rest are only counted. */
const MAX_VIOLATION_LINES = 10;

export function renderReportText(report: ExperimentReport): string {
  const { hits, checks } = report;
  const violations = allViolations(report);
  const ids = idsText(report);
  const lines = [
    `hitmesh · ${report.experiment}: ${report.description}`,
    settingsLine(report),
    '',
    ...nodeTable(report),
    '',
    `hits: ${hits.sent} sent, ${hits.acked} acked, ${hits.failed} failed, ${hits.unknown} unknown`,
    `convergence: ${convergenceText(report)}`,
    ...continuousLines(report),
    `checks: ${checks.total} (node, key, window) checked${report.continuous === undefined ? '' : ` after the load stopped, ${plural(report.continuous.ranges.length, 'closed range')} while it ran`}${report.retry === undefined ? '' : `, ${report.retry.checked} of the retry keys`}, ${plural(violations.length, 'violation')}`,
    ...(checks.ranges === undefined ? [] : [`  read: ${rangesText(checks.ranges)}`]),
    ...(ids === undefined ? [] : [`  ${ids}`]),
    ...violations.slice(0, MAX_VIOLATION_LINES).map((v) => `  ${violationText(v)}`),
    ...(violations.length > MAX_VIOLATION_LINES ? [`  … and ${violations.length - MAX_VIOLATION_LINES} more`] : []),
    ...freshLines(report),
    ...retryLines(report),
    verdictLine(report),
  ];
  return `${lines.join('\n')}\n`;
}

/** The `fresh` experiment's probes: per pairing, how many reads saw their write, missed it, or proved nothing. */
export function freshLines(report: ExperimentReport): string[] {
  const fresh = report.fresh;
  if (fresh === undefined) return [];
  const lines = [`read-after-write, links delayed ${fresh.delayMs} ms (write on one node, read at once on another):`];
  for (const [pairing, t] of Object.entries(fresh.byPairing)) {
    lines.push(`  ${pairing}: ${t.seen} seen, ${t.missed} missed, ${t.inconclusive} inconclusive (not a 200), slowest ${t.worstMs} ms`);
  }
  for (const m of fresh.misses) lines.push(`  MISSED ${m.pairing}: ${m.key} written on ${m.writer}, read ${m.count} on ${m.reader}`);
  return lines;
}

/** The `retry` experiment: what the clients sent, how the nodes answered, and the check of the retry keys. */
export function retryLines(report: ExperimentReport): string[] {
  const r = report.retry;
  if (r === undefined) return [];
  const group = (ids: readonly string[]): string => `{${[...ids].sort().join(', ')}}`;
  const ms = (v: number | null): string => (v === null ? 'never' : `${v} ms`);
  const gaps = retryGaps(r);
  return [
    `idempotent hits, cut ${group(r.sides[0])} | ${group(r.sides[1])}: ${r.logical} logical (${r.acked} acked, ${r.failed} failed, ${r.unknown} unknown) on ${r.keys} keys of their own, ${r.attempts} attempts (the slowest answered in ${r.slowestMs} ms)`,
    `  retries: ${r.retries}, ${r.acrossCut} across the cut while it held, ${r.acrossAfterHeal} across sides after the heal`,
    `  taken on both sides while cut (each must count once after the heal): ${r.bothSides}`,
    `  "duplicate": true answers: ${r.duplicates}; repeats on a node that had already answered 200 (each must say so): ${r.sameNodeRepeats}`,
    `  the same token with another n on a node that took it: ${r.conflictsSent} sent, ${r.conflictsRefused} answered 422`,
    `  retry keys: ${r.checked} (node, key, window) checked, ${plural(r.violations.length, 'violation')}; the last retry answered ${ms(r.lastAnswerMs)} after the heal, every node agreed on them ${ms(r.agreedMs)} after it`,
    `  answers that broke the rules: ${r.flagViolations}${r.flagViolations > r.flags.length ? ` (${r.flags.length} listed)` : ''}`,
    ...r.flags.slice(0, MAX_VIOLATION_LINES).map((f) => `  ${f.kind.toUpperCase()} ${f.node} token ${JSON.stringify(f.token)} key ${JSON.stringify(f.key)}: ${f.detail}`),
    ...(gaps.length === 0 ? [] : [`  not exercised: ${gaps.join('; ')}`]),
  ];
}

/**
 * The one-line verdict, shared with the HTML page so both say the same thing. PASS or FAIL follows
 * `report.ok`; a FAIL names every kind of breakage the report records.
 */
export function verdictLine(report: ExperimentReport): string {
  const { convergence } = report;
  if (report.ok) {
    const how = report.continuous === undefined ? '' : ' (on a closed range, the load still running)';
    const retried = report.retry === undefined ? '' : `; each of ${report.retry.logical} idempotent hits counted once over ${report.retry.attempts} attempts`;
    return `PASS: no acknowledged hit lost, none counted twice, converged in ${convergence.ms ?? '?'} ms after the heal${how}${retried}`;
  }
  const broke: string[] = [];
  const lost = countKind(report, 'lost');
  const twice = countKind(report, 'double-counted');
  const silent = countKind(report, 'no-answer');
  if (lost > 0) broke.push(`acknowledged hits lost (${plural(lost, 'check')})`);
  if (twice > 0) broke.push(`hits counted twice (${plural(twice, 'check')})`);
  if (silent > 0) broke.push(`no answer (${plural(silent, 'check')})`);
  const disagree = countKind(report, 'disagree');
  if (disagree > 0) broke.push(`nodes answered differently (${plural(disagree, 'check')})`);
  const unlisted = (report.checks.ids?.violations ?? 0) - (report.checks.ids?.listed ?? 0);
  if (unlisted > 0) broke.push(`${plural(unlisted, 'more id violation')} not listed`);
  const missing = countKind(report, 'missing');
  if (missing > 0) broke.push(`hits missing from closed ranges the nodes never agreed on (${plural(missing, 'check')})`);
  if (!convergence.converged) broke.push(`did not converge within ${report.settings.convergeLimitS} s after the heal`);
  const missed = Object.values(report.fresh?.byPairing ?? {}).reduce((n, t) => n + t.missed, 0);
  if (missed > 0) broke.push(`reads missed acknowledged writes (${plural(missed, 'probe')})`);
  if (report.fresh !== undefined && Object.values(report.fresh.byPairing).some((t) => t.seen === 0)) broke.push('a read-after-write pairing had no conclusive probe');
  const retry = report.retry;
  if (retry !== undefined && retry.flagViolations > 0) broke.push(`answers broke the Idempotency-Key rules (${plural(retry.flagViolations, 'answer')})`);
  if (retry !== undefined && retry.agreedMs === null) broke.push('nodes did not agree on the retry keys');
  if (retry !== undefined) for (const gap of retryGaps(retry)) broke.push(`inconclusive: ${gap}`);
  const unsettled = report.continuous?.ranges.filter((r) => r.agreedAtMs === null).length ?? 0;
  if (unsettled > 0) broke.push(`nodes did not agree on ${plural(unsettled, 'closed range')}`);
  if (report.continuous !== undefined && report.continuous.settledMs === null) broke.push('counts did not agree after the load stopped');
  // ok=false with nothing above is an inconsistent report; say so rather than print an empty reason.
  if (broke.length === 0) broke.push('marked failed, but no violation or convergence failure is recorded');
  return `FAIL: ${broke.join('; ')}`;
}

/** Node ids that broke at least one guarantee. */
export function nodesWithViolations(report: ExperimentReport): ReadonlySet<string> {
  return new Set(allViolations(report).map((v) => v.node));
}

/** The final checks' violations, then those of the closed ranges judged while the load ran. */
export function allViolations(report: ExperimentReport): readonly Violation[] {
  return [...report.checks.violations, ...(report.continuous?.ranges.flatMap((r) => r.violations) ?? []), ...(report.retry?.violations ?? [])];
}

/** One closed range: where it lies (seconds since the load start) and how it went. */
export function closedRangeText(r: ClosedRangeResult): string {
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  const agreed = r.agreedAtMs === null ? 'never agreed' : `agreed ${Math.max(0, r.agreedAtMs - r.closedAtMs)} ms after it closed at ${s(r.closedAtMs)} s`;
  return `${r.label} [${s(r.fromMs)}, ${s(r.toMs)}) s: ${agreed}, ${plural(r.violations.length, 'violation')}`;
}

/** The ranges the final check read on every node: the lifetime, the window of seconds, and one bucket of each coarser tier (UTC). */
export function rangesText(ranges: readonly CheckedRange[]): string {
  const hm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
  const parts = ranges.map((r) => {
    if (r.window === 'window') return `seconds [${(r.fromMs / 1000).toFixed(1)}, ${(r.toMs / 1000).toFixed(1)}) s`;
    if (r.window === 'day') return `day ${new Date(r.epochFromMs).toISOString().slice(0, 10)} UTC`;
    return `${r.window} ${hm(r.epochFromMs)}-${hm(r.epochToMs)} UTC`;
  });
  return ['lifetime', ...parts].join('; ');
}

/** What the identity check covered and found; undefined for a report without one. */
export function idsText(report: ExperimentReport): string | undefined {
  const ids = report.checks.ids;
  if (ids === undefined) return undefined;
  const tally = `${ids.acked} acked, ${ids.failed} failed, ${ids.unknown} unknown`;
  const how = ids.complete
    ? ` (${tally}), and each key's count had to be the sum of its ids'`
    : `, a seeded sample (every unknown one up to a cap, a uniform share of the rest: ${tally})`;
  const found = ids.violations === ids.listed ? plural(ids.violations, 'id violation') : `${plural(ids.violations, 'id violation')}, ${ids.listed} listed`;
  return `ids: ${ids.checked} of ${ids.sent} hits checked one by one on every node and range${how}; ${found}`;
}

export function convergenceText(report: ExperimentReport): string {
  const { convergence, settings } = report;
  const healS = (convergence.healAtMs / 1000).toFixed(1);
  const range = report.continuous?.convergeRange;
  const on = range === undefined ? '' : ` (every node agreeing on the closed range [${(range.fromMs / 1000).toFixed(1)}, ${(range.toMs / 1000).toFixed(1)}) s, load running)`;
  return convergence.converged && convergence.ms !== null
    ? `converged ${convergence.ms} ms after the heal at ${healS} s${on}`
    : `did not converge within ${settings.convergeLimitS} s after the heal at ${healS} s${on}`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function settingsLine(report: ExperimentReport): string {
  const s = report.settings;
  return (
    `started ${report.startedAt}: ${s.nodes} nodes, ${s.durationS} s at ${s.rate} hits/s over ${s.keys} keys, ` +
    `seed ${s.seed}, cut mode ${s.cutMode}${s.continuous ? ', continuous load' : ''}`
  );
}

function continuousLines(report: ExperimentReport): string[] {
  const c = report.continuous;
  if (c === undefined) return [];
  const settled = c.settledMs === null ? 'did not agree after the load stopped' : `every node agreed ${c.settledMs} ms after the load stopped at ${(report.loadEndMs / 1000).toFixed(1)} s`;
  return [
    `load: continuous through the heal and ${(c.tailMs / 1000).toFixed(1)} s past convergence; closed ranges judged while it ran:`,
    ...c.ranges.map((r) => `  ${closedRangeText(r)}`),
    `lifetime and checked window: ${settled}`,
  ];
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
  const expected = v.expected === undefined ? '' : `, its ids say ${v.expected}`;
  return `${v.kind.padEnd(14)} ${v.node}  key ${JSON.stringify(v.key)}  window ${v.window.padEnd(6)} count ${count}, acked ${v.acked}, unknown ${v.unknown}${expected}`;
}

function countKind(report: ExperimentReport, kind: ViolationKind): number {
  return allViolations(report).filter((v) => v.kind === kind).length;
}
