/**
 * A partition-experiment report as one self-contained HTML page: inline CSS and a hand-drawn inline
 * SVG chart, with no script and no network reference of any kind, so it opens offline and can be
 * archived next to the JSON it was drawn from. Every string taken from the report is escaped.
 */
import type { ExperimentReport, FaultSpan, NodeSummary, TimelineEvent, Violation } from './report.ts';
import { colourOf, CSS, esc, n1, niceAxis, runs, tickValues } from './html-parts.ts';
import { allViolations, closedRangeText, convergenceText, idsText, nodesWithViolations, plural, rangesText, retryLines, verdictLine } from './report-text.ts';

const MAX_VIOLATION_ROWS = 50;

// Chart geometry, in SVG user units (the SVG scales to the page width).
const W = 960;
const H = 440;
const M = { left: 64, right: 28, top: 28, bottom: 80 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;
const BOTTOM = M.top + PH;
/** Rough width of one character of the chart's 11 px labels, to keep labels inside what they label. */
const CHAR_PX = 6.5;

export function renderReportHtml(report: ExperimentReport): string {
  const title = `hitmesh · ${report.experiment}`;
  const verdictClass = report.ok ? 'pass' : 'fail';
  const ids = seriesIds(report);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="desc">${esc(report.description)}</p>
<div class="verdict ${verdictClass}"><strong>${report.ok ? 'PASS' : 'FAIL'}</strong> ${esc(verdictLine(report).replace(/^(PASS|FAIL): /, ''))}</div>
${settingsHtml(report)}
<h2>Counts over time</h2>
${renderChart(report, ids)}
${legendHtml(ids)}
${faultsHtml(report.faults)}
<h2>Nodes</h2>
${nodesHtml(report, ids)}
<h2>Results</h2>
<ul class="results">
<li>Hits: ${report.hits.sent} sent, ${report.hits.acked} acked, ${report.hits.failed} failed, ${report.hits.unknown} unknown</li>
<li>Convergence: ${esc(convergenceText(report))}</li>
<li>Checks: ${report.checks.total} (node, key, window) triples checked${report.retry === undefined ? '' : `, ${report.retry.checked} of the retry keys`}, ${plural(report.checks.violations.length + (report.retry?.violations.length ?? 0), 'violation')}</li>
${checkedHtml(report)}</ul>
${closedRangesHtml(report)}
${freshHtml(report)}
${retryHtml(report)}
${violationsHtml(allViolations(report))}
</body>
</html>
`;
}

/** Report nodes first (their order), then any series the timeline has that the node list lacks. */
function seriesIds(report: ExperimentReport): string[] {
  const ids = report.nodes.map((n) => n.id);
  for (const id of Object.keys(report.timeline.counts)) if (!ids.includes(id)) ids.push(id);
  return ids;
}

function settingsHtml(r: ExperimentReport): string {
  const s = r.settings;
  const cut = s.cutMode === 'cut' ? 'cut (connections refused)' : 'blackhole (accepted, nothing forwarded)';
  const items: [string, string][] = [
    ['nodes', String(s.nodes)],
    ['duration', `${s.durationS} s`],
    ['rate', `${s.rate} hits/s`],
    ['keys', String(s.keys)],
    ['seed', String(s.seed)],
    ['cut mode', cut],
    ['convergence limit', `${s.convergeLimitS} s`],
    ['load', s.continuous ? 'continuous through the heal' : 'stops at the heal'],
    ['started', r.startedAt],
  ];
  return `<dl class="settings">${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`;
}

// ---- the chart ----

function renderChart(r: ExperimentReport, ids: readonly string[]): string {
  const { timeline, convergence: conv } = r;
  const convergedAt = conv.converged && conv.ms !== null ? conv.healAtMs + conv.ms : null;
  // Every instant drawn must fit, not only the samples: faults, events, heal, window.
  const times = [0, ...timeline.atMs, r.loadEndMs, conv.healAtMs, r.window.fromMs, r.window.toMs, ...r.faults.flatMap((f) => [f.fromMs, f.toMs]), ...r.events.map((e) => e.atMs)];
  if (convergedAt !== null) times.push(convergedAt);
  const secs = times.filter(Number.isFinite).map((t) => t / 1000);
  const counts = [0, ...timeline.acked, ...Object.values(timeline.counts).flat()].filter((v): v is number => v !== null && Number.isFinite(v));
  const ax = niceAxis(Math.min(...secs), Math.max(...secs), 10, 0.001);
  // 5% headroom so a flat line at the maximum does not sit on the frame; counts are whole, so steps are too.
  const ay = niceAxis(0, Math.max(...counts) * 1.05, 5, 1);
  const x = (ms: number): number => M.left + ((ms / 1000 - ax.min) / (ax.max - ax.min)) * PW;
  const y = (v: number): number => BOTTOM - ((v - ay.min) / (ay.max - ay.min)) * PH;
  const points = (run: readonly [number, number][]): string => run.map(([t, v]) => `${n1(x(t))},${n1(y(v))}`).join(' ');
  /** A lone sample has no line to draw, so it gets a dot. */
  const path = (run: readonly [number, number][], colour: string, attrs = ''): string =>
    run.length === 1 && run[0] !== undefined
      ? `<circle cx="${n1(x(run[0][0]))}" cy="${n1(y(run[0][1]))}" r="2.5" fill="${colour}"/>`
      : `<polyline points="${points(run)}" fill="none" stroke="${colour}"${attrs}/>`;

  const parts: string[] = [];
  // Faults first so everything else is drawn over the shading.
  for (const [i, f] of r.faults.entries()) parts.push(faultSvg(f, x(f.fromMs), x(f.toMs), i % 2));
  for (const v of tickValues(ay)) {
    parts.push(`<line class="grid" x1="${M.left}" x2="${M.left + PW}" y1="${n1(y(v))}" y2="${n1(y(v))}"/>`);
    parts.push(`<text x="${M.left - 6}" y="${n1(y(v) + 4)}" text-anchor="end">${v.toFixed(ay.decimals)}</text>`);
  }
  for (const s of tickValues(ax)) {
    const px = n1(x(s * 1000));
    parts.push(`<line class="axis" x1="${px}" x2="${px}" y1="${BOTTOM}" y2="${BOTTOM + 5}"/>`);
    parts.push(`<text x="${px}" y="${BOTTOM + 18}" text-anchor="middle">${s.toFixed(ax.decimals)}</text>`);
  }
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left + PW}" y1="${BOTTOM}" y2="${BOTTOM}"/>`);
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${BOTTOM}"/>`);
  parts.push(`<text x="${M.left + PW / 2}" y="${BOTTOM + 34}" text-anchor="middle">seconds since load start</text>`);
  parts.push(`<text x="16" y="${M.top + PH / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + PH / 2})">count</text>`);

  ids.forEach((id, i) => {
    const drawn = runs(timeline.atMs, timeline.counts[id] ?? []).map((run) => path(run, colourOf(i)));
    parts.push(`<g class="series" data-node="${esc(id)}" stroke-width="1.8">${drawn.join('')}</g>`);
  });
  const acked = runs(timeline.atMs, timeline.acked);
  parts.push(`<g class="acked">${acked.map((run) => path(run, '#222', ' stroke-width="1.6" stroke-dasharray="6 4"')).join('')}</g>`);
  const lastAcked = acked.at(-1)?.at(-1);
  if (lastAcked !== undefined) {
    parts.push(`<text class="acked-label" x="${n1(x(lastAcked[0]) - 4)}" y="${n1(y(lastAcked[1]) - 6)}" text-anchor="end">acked</text>`);
  }

  for (const e of r.events) parts.push(eventSvg(e, x(e.atMs)));
  const healPx = x(conv.healAtMs);
  let healRow = 0;
  if (convergedAt !== null) {
    const px = x(convergedAt);
    const label = `converged +${conv.ms} ms`;
    // Flip the label left of its line when it would run off the right edge; then the heal label, also left, moves up a row.
    const flip = px + label.length * CHAR_PX > W;
    if (flip && px - label.length * CHAR_PX < healPx) healRow = 1;
    parts.push(markerSvg(px, label, flip ? 'end' : 'start'));
  }
  parts.push(markerSvg(healPx, 'heal', 'end', healRow));
  parts.push(windowSvg(x(r.window.fromMs), x(r.window.toMs)));

  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(`Counts per node over time, ${r.experiment}`)}">\n${parts.join('\n')}\n</svg>`;
}

/** A shaded span; its label is cut to the span's width (the full one is in the tooltip and the list under the chart), and neighbours alternate rows. */
function faultSvg(f: FaultSpan, x1: number, x2: number, row: number): string {
  const tip = `${f.label}: ${f.nodes.join(', ')}`;
  const width = Math.abs(x2 - x1);
  const fits = Math.floor((width - 8) / CHAR_PX);
  const label = f.label.length <= fits ? f.label : fits >= 4 ? `${f.label.slice(0, fits - 1)}…` : '';
  return (
    `<g class="fault"><title>${esc(tip)}</title>` +
    `<rect x="${n1(Math.min(x1, x2))}" y="${M.top}" width="${n1(width)}" height="${PH}"/>` +
    (label === '' ? '' : `<text x="${n1(Math.min(x1, x2) + 4)}" y="${M.top + 13 + row * 14}">${esc(label)}</text>`) +
    '</g>'
  );
}

/** Event labels run up the line from the bottom, so neighbouring events do not overwrite each other. */
function eventSvg(e: TimelineEvent, px: number): string {
  // The label names its node already ("kill -9 n2"); `node` is for tools that filter by node.
  const label = e.label;
  const ly = BOTTOM - 6;
  return (
    `<g class="event"><line x1="${n1(px)}" x2="${n1(px)}" y1="${M.top}" y2="${BOTTOM}"/>` +
    `<text x="${n1(px - 3)}" y="${ly}" transform="rotate(-90 ${n1(px - 3)} ${ly})">${esc(label)}</text></g>`
  );
}

/** Heal and convergence: a full-height line with its label above the plot. */
function markerSvg(px: number, label: string, anchor: 'start' | 'end', row = 0): string {
  const lx = anchor === 'end' ? px - 3 : px + 3;
  return (
    `<g class="marker"><line x1="${n1(px)}" x2="${n1(px)}" y1="${M.top - 4 - row * 12}" y2="${BOTTOM}"/>` +
    `<text x="${n1(lx)}" y="${M.top - 8 - row * 12}" text-anchor="${anchor}">${esc(label)}</text></g>`
  );
}

/** The checked window as a bracket under the axis labels. */
function windowSvg(x1: number, x2: number): string {
  const by = BOTTOM + 46;
  return (
    `<g class="window"><path d="M${n1(x1)} ${by - 6} V${by} H${n1(x2)} V${by - 6}"/>` +
    `<text x="${n1((x1 + x2) / 2)}" y="${by + 14}" text-anchor="middle">checked window</text></g>`
  );
}

function legendHtml(ids: readonly string[]): string {
  const swatch = (style: string): string => `<svg width="26" height="10" aria-hidden="true"><line x1="1" x2="25" y1="5" y2="5" ${style}/></svg>`;
  const items = ids.map((id, i) => `<li>${swatch(`stroke="${colourOf(i)}" stroke-width="2.5"`)} ${esc(id)}</li>`);
  items.push(`<li>${swatch('stroke="#222" stroke-width="2" stroke-dasharray="6 4"')} acked</li>`);
  return `<ul class="legend">${items.join('')}</ul>`;
}

function faultsHtml(faults: readonly FaultSpan[]): string {
  if (faults.length === 0) return '<p class="note">No lasting fault.</p>';
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  const items = faults.map((f) => `<li>${esc(f.label)}: ${s(f.fromMs)}–${s(f.toMs)} s on ${esc(f.nodes.join(', ') || 'no node')}</li>`);
  return `<ul class="faults">${items.join('')}</ul>`;
}

// ---- tables ----

/** Node URLs are shown as host:port: the page is meant to hold no http(s) URL at all, not even as text. */
function address(url: string): string {
  return url.replace(/^https?:\/\//, '');
}

function nodesHtml(r: ExperimentReport, ids: readonly string[]): string {
  const broken = nodesWithViolations(r);
  const perNode = (n: NodeSummary): number => allViolations(r).filter((v) => v.node === n.id).length;
  const rows = r.nodes.map((n) => {
    const dot = `<span class="dot" style="background:${colourOf(ids.indexOf(n.id))}"></span>`;
    const violations = broken.has(n.id) ? `<td class="bad">✗ ${perNode(n)}</td>` : '<td class="good">none</td>';
    const final = n.finalCount === null ? 'no answer' : String(n.finalCount);
    return `<tr><td>${dot}${esc(n.id)}</td><td>${esc(address(n.url))}</td><td class="num">${n.acked}</td><td class="num">${n.failed}</td><td class="num">${n.unknown}</td><td class="num">${final}</td>${violations}</tr>`;
  });
  return `<table><thead><tr><th>node</th><th>address</th><th>acked</th><th>failed</th><th>unknown</th><th>final count</th><th>violations</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The ranges read (every tier) and the identity check, for reports that have them. */
function checkedHtml(r: ExperimentReport): string {
  const ranges = r.checks.ranges === undefined ? '' : `<li class="read">Ranges read on every node: ${esc(rangesText(r.checks.ranges))}</li>\n`;
  const ids = idsText(r);
  return `${ranges}${ids === undefined ? '' : `<li class="ids">${esc(ids.replace(/^ids: /, 'Ids: '))}</li>\n`}`;
}

/** The `fresh` experiment: per pairing of write and read levels, reads that saw the write, missed it, or proved nothing. */
function freshHtml(r: ExperimentReport): string {
  const fresh = r.fresh;
  if (fresh === undefined) return '';
  const rows = Object.entries(fresh.byPairing).map(
    ([pairing, t]) => `<tr class="${t.missed === 0 && t.seen > 0 ? 'good' : 'bad'}"><td>${esc(pairing)}</td><td>${t.seen}</td><td>${t.missed}</td><td>${t.inconclusive}</td><td>${t.worstMs} ms</td></tr>`,
  );
  const misses = fresh.misses.map((m) => `<li class="bad">${esc(`${m.pairing}: ${m.key} written on ${m.writer}, read ${m.count} on ${m.reader}`)}</li>`);
  return (
    `<h2>Read after write</h2><p class="note">Every link delayed each chunk by ${fresh.delayMs} ms. A write at one level on one node, then at once a read on another at the level that must see it.</p>` +
    `<table class="fresh"><thead><tr><th>write, then read</th><th>seen</th><th>missed</th><th>inconclusive</th><th>slowest</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    (misses.length > 0 ? `<ul>${misses.join('')}</ul>` : '')
  );
}

/** The `retry` experiment: the same figures as the text summary, one per line; a line about broken answers or gaps is marked bad. */
function retryHtml(r: ExperimentReport): string {
  const [title, ...lines] = retryLines(r);
  if (title === undefined || r.retry === undefined) return '';
  const bad = (line: string): boolean => /^ {2}([A-Z-]+ |not exercised:)/.test(line) || (line.startsWith('  answers that broke') && r.retry?.flagViolations !== 0);
  const items = lines.map((line) => `<li${bad(line) ? ' class="bad"' : ''}>${esc(line.trim())}</li>`);
  return `<h2>Idempotent retries</h2><p class="note">${esc(title)}</p><ul class="retry">${items.join('')}</ul>`;
}

function closedRangesHtml(r: ExperimentReport): string {
  const c = r.continuous;
  if (c === undefined) return '';
  const settled = c.settledMs === null ? 'did not agree after the load stopped' : `agreed ${c.settledMs} ms after the load stopped`;
  const items = c.ranges.map((range) => `<li class="${range.agreedAtMs !== null && range.violations.length === 0 ? 'good' : 'bad'}">${esc(closedRangeText(range))}</li>`);
  return (
    `<h2>Closed ranges, judged with the load running</h2><p class="note">The load went on through the heal and ${(c.tailMs / 1000).toFixed(1)} s past convergence. ` +
    `A range of whole seconds is closed once every hit sent before its end has been answered.</p><ul class="ranges">${items.join('')}<li>Lifetime and checked window: ${esc(settled)}</li></ul>`
  );
}

function violationsHtml(violations: readonly Violation[]): string {
  if (violations.length === 0) return '<p class="note">No violations.</p>';
  const rows = violations.slice(0, MAX_VIOLATION_ROWS).map(
    (v) =>
      `<tr><td>${esc(v.kind)}</td><td>${esc(v.node)}</td><td><code>${esc(v.key)}</code></td><td>${esc(v.window)}</td>` +
      `<td class="num">${v.count === null ? 'no answer' : v.count}${v.expected === undefined ? '' : ` (ids: ${v.expected})`}</td><td class="num">${v.acked}</td><td class="num">${v.unknown}</td></tr>`,
  );
  const more = violations.length - MAX_VIOLATION_ROWS;
  return (
    `<h2>Violations</h2><table><thead><tr><th>kind</th><th>node</th><th>key</th><th>window</th><th>count</th><th>acked</th><th>unknown</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>${more > 0 ? `<p class="note">… and ${more} more not shown.</p>` : ''}`
  );
}
