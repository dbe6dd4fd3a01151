/**
 * A soak report as one self-contained HTML page, like the partition report:
 * inline CSS and SVG, no script, no network reference. Counts, RSS and
 * replication lag over time with the faults shaded, then the faults, memory,
 * nodes and every violation.
 */
import { colourOf, CSS, esc } from '../partition/html-parts.ts';
import type { Violation } from '../partition/report.ts';
import { renderLineChart, type LineChart, type LineSeries } from './chart.ts';
import type { SoakReport } from './report.ts';
import { convergenceText, faultsText, lagText, memoryText, rangesText, rateText, soakVerdictLine, soakViolations } from './report-text.ts';

const MAX_VIOLATION_ROWS = 50;
const MB = 2 ** 20;

export function renderSoakHtml(r: SoakReport): string {
  const ids = r.nodes.map((n) => n.id);
  const perNode = (series: Readonly<Record<string, readonly (number | null)[]>>, scale = 1): LineSeries[] =>
    ids.map((id, i) => ({ id, colour: colourOf(i), atMs: r.timeline.atMs, values: (series[id] ?? []).map((v) => (v === null ? null : v / scale)) }));
  const common = {
    spans: r.faults.map((f) => ({ fromMs: f.fromMs, toMs: f.toMs, label: f.label })),
    marks: r.events.filter((e) => e.label.startsWith('kill') || e.label.endsWith('disk lost')).map((e) => ({ atMs: e.atMs, label: e.label })),
    times: [r.loadStartMs, r.loadEndMs],
  };
  const charts: [string, LineChart][] = [
    ['Counts over time', { ...common, label: 'lifetime count per node over time', yLabel: 'count', series: [...perNode(r.timeline.counts), { id: 'acked', colour: '#222', atMs: r.timeline.atMs, values: r.timeline.acked, dashed: true }] }],
    ['Memory (RSS)', { ...common, label: 'resident memory per node over time', yLabel: 'MB', series: perNode(r.timeline.rssBytes, MB) }],
    [
      'Replication lag',
      {
        ...common,
        label: 'replication lag per node over time, and marker hits',
        yLabel: 'ms',
        series: [...perNode(r.timeline.lagMs), { id: 'marker', colour: '#222', atMs: r.markers.map((m) => m.atMs), values: r.markers.map((m) => m.ms), dots: true }],
      },
    ],
    ['Clock offset to peers', { ...common, label: 'largest clock offset each node measured to a peer', yLabel: 'ms', series: perNode(r.timeline.clockOffsetMs) }],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hitmesh · soak</title>
<style>${CSS}${EXTRA_CSS}</style>
</head>
<body>
<h1>hitmesh · soak</h1>
<p class="desc">${r.settings.nodes} nodes under steady load for ${r.settings.durationS} s with faults one after another, each held a few seconds and healed before the next.</p>
<div class="verdict ${r.ok ? 'pass' : 'fail'}"><strong>${r.ok ? 'PASS' : 'FAIL'}</strong> ${esc(soakVerdictLine(r).replace(/^(PASS|FAIL): /, ''))}</div>
${settingsHtml(r)}
${charts.map(([title, chart]) => `<h2>${esc(title)}</h2>\n${renderLineChart(chart)}`).join('\n')}
${legendHtml(ids)}
<p class="note">Shaded: a fault in force (hover for which). Thin lines: kill -9 and lost disks. Dots on the lag chart: a marker hit, from its acknowledgement until every running node counted it.</p>
<h2>Results</h2>
<ul class="results">
<li>Hits: ${r.hits.sent} sent, ${r.hits.acked} acked, ${r.hits.failed} failed, ${r.hits.unknown} unknown</li>
<li>Faults: ${esc(faultsText(r))}${r.skipped.map((s) => `; skipped ${esc(s.kind)}: ${esc(s.reason)}`).join('')}</li>
<li>Heal → converged: ${esc(convergenceText(r))}</li>
<li>Replication lag: ${esc(lagText(r))}</li>
<li>Closed ranges: ${esc(rangesText(r))}</li>
<li>Checks: ${r.checks.total} (node, key, range) checked after the load stopped</li>
<li>Memory: ${esc(memoryText(r))}</li>
</ul>
<h2>Faults</h2>
${faultsHtml(r)}
<h2>Nodes</h2>
${nodesHtml(r, ids)}
${violationsHtml(soakViolations(r))}
</body>
</html>
`;
}

function settingsHtml(r: SoakReport): string {
  const s = r.settings;
  const items: [string, string][] = [
    ['nodes', String(s.nodes)],
    ['duration', `${s.durationS} s`],
    ['rate', rateText(r)],
    ['keys', String(s.keys)],
    ['seed', String(s.seed)],
    ['faults dealt', s.faults.join(', ')],
    ['steady node', r.steadyNode],
    ['started', r.startedAt],
  ];
  return `<dl class="settings">${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`;
}

function legendHtml(ids: readonly string[]): string {
  const swatch = (style: string): string => `<svg width="26" height="10" aria-hidden="true"><line x1="1" x2="25" y1="5" y2="5" ${style}/></svg>`;
  const items = ids.map((id, i) => `<li>${swatch(`stroke="${colourOf(i)}" stroke-width="2.5"`)} ${esc(id)}</li>`);
  items.push(`<li>${swatch('stroke="#222" stroke-width="2" stroke-dasharray="6 4"')} acked</li>`);
  return `<ul class="legend">${items.join('')}</ul>`;
}

function faultsHtml(r: SoakReport): string {
  if (r.faults.length === 0) return '<p class="note">No fault was applied.</p>';
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  const rows = r.faults.map((f, i) => {
    const converged = f.error !== undefined ? `<td class="bad">${esc(f.error)}</td>` : f.convergedMs === null ? '<td class="bad">never</td>' : `<td class="num">${f.convergedMs}</td>`;
    const bad = f.range?.violations.length ?? 0;
    return `<tr><td class="num">${i + 1}</td><td>${esc(f.kind)}</td><td>${esc(f.label)}</td><td class="num">${s(f.fromMs)}–${s(f.toMs)}</td>${converged}<td class="${bad > 0 ? 'bad' : 'good'}">${bad > 0 ? `✗ ${bad}` : 'none'}</td></tr>`;
  });
  return `<table><thead><tr><th>#</th><th>kind</th><th>what</th><th>s</th><th>heal → converged, ms</th><th>out of bounds</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function nodesHtml(r: SoakReport, ids: readonly string[]): string {
  const broken = soakViolations(r);
  const mb = (b: number | null): string => (b === null ? '—' : (b / MB).toFixed(0));
  const rows = r.nodes.map((n) => {
    const mem = r.memory.nodes.find((m) => m.id === n.id);
    const bad = broken.filter((v) => v.node === n.id).length;
    const ratio = `${mem?.ratio === null || mem === undefined ? '' : `${mem.ratio.toFixed(2)}×`}${mem?.judged === true ? '' : ` (not judged: ${mem?.notJudged === 'restarted' ? 'restarted in between' : 'no samples'})`}`;
    const dot = `<span class="dot" style="background:${colourOf(ids.indexOf(n.id))}"></span>`;
    return (
      `<tr><td>${dot}${esc(n.id)}${n.id === r.steadyNode ? ' (steady)' : ''}</td><td class="num">${n.acked}</td><td class="num">${n.failed}</td><td class="num">${n.unknown}</td>` +
      `<td class="num">${n.finalCount ?? 'no answer'}</td><td class="num">${n.starts}</td><td class="num">${mb(mem?.earlyBytes ?? null)} → ${mb(mem?.lateBytes ?? null)}</td>` +
      `<td class="${mem?.ok === false ? 'bad' : 'num'}">${ratio}</td><td class="${bad > 0 ? 'bad' : 'good'}">${bad > 0 ? `✗ ${bad}` : 'none'}</td></tr>`
    );
  });
  return (
    `<table><thead><tr><th>node</th><th>acked</th><th>failed</th><th>unknown</th><th>final count</th><th>starts</th><th>RSS MB, ${r.memory.basis === 'minutes' ? '2nd → last minute' : '2nd → last sixth'}</th><th>ratio</th><th>violations</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function violationsHtml(violations: readonly Violation[]): string {
  if (violations.length === 0) return '<p class="note">No violations.</p>';
  const rows = violations.slice(0, MAX_VIOLATION_ROWS).map(
    (v) => `<tr><td>${esc(v.kind)}</td><td>${esc(v.node)}</td><td><code>${esc(v.key)}</code></td><td>${esc(v.window)}</td><td class="num">${v.count ?? 'no answer'}</td><td class="num">${v.acked}</td><td class="num">${v.unknown}</td></tr>`,
  );
  const more = violations.length - MAX_VIOLATION_ROWS;
  return (
    `<h2>Violations</h2><table><thead><tr><th>kind</th><th>node</th><th>key</th><th>range</th><th>count</th><th>acked</th><th>unknown</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>${more > 0 ? `<p class="note">… and ${more} more not shown.</p>` : ''}`
  );
}

const EXTRA_CSS = `
.chart .fault rect { fill-opacity: 0.18; }
`;
