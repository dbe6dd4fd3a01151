/**
 * A line chart as inline SVG for the soak page: several series over time,
 * faults as shaded spans (their labels in tooltips: a soak has too many to
 * write on the chart), instants such as kills as thin lines. Drawn like the
 * partition report's chart, from the same helpers.
 */
import { esc, n1, niceAxis, runs, tickValues } from '../partition/html-parts.ts';

export interface LineSeries {
  readonly id: string;
  readonly colour: string;
  readonly atMs: readonly number[];
  /** null breaks the line (no answer). */
  readonly values: readonly (number | null)[];
  readonly dashed?: boolean;
  /** Points rather than a line (samples that are not a continuous quantity). */
  readonly dots?: boolean;
}

export interface LineChart {
  /** For screen readers and the test: what the chart shows. */
  readonly label: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  readonly spans: readonly { readonly fromMs: number; readonly toMs: number; readonly label: string }[];
  readonly marks: readonly { readonly atMs: number; readonly label: string }[];
  /** Extra instants the x axis must hold (load start and end). */
  readonly times: readonly number[];
}

const W = 960;
const H = 260;
const M = { left: 64, right: 20, top: 14, bottom: 40 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;
const BOTTOM = M.top + PH;

export function renderLineChart(c: LineChart): string {
  const secs = [0, ...c.times, ...c.series.flatMap((s) => s.atMs), ...c.spans.flatMap((s) => [s.fromMs, s.toMs]), ...c.marks.map((m) => m.atMs)].filter(Number.isFinite).map((t) => t / 1000);
  const values = [0, ...c.series.flatMap((s) => s.values)].filter((v): v is number => v !== null && Number.isFinite(v));
  const ax = niceAxis(Math.min(...secs), Math.max(...secs), 10, 0.001);
  const ay = niceAxis(0, Math.max(...values) * 1.05, 4, 0.001);
  const x = (ms: number): number => M.left + ((ms / 1000 - ax.min) / (ax.max - ax.min)) * PW;
  const y = (v: number): number => BOTTOM - ((v - ay.min) / (ay.max - ay.min)) * PH;
  const parts: string[] = [];
  for (const s of c.spans) {
    const [x1, x2] = [x(s.fromMs), x(s.toMs)];
    parts.push(`<g class="fault"><title>${esc(s.label)}</title><rect x="${n1(Math.min(x1, x2))}" y="${M.top}" width="${n1(Math.max(0.5, Math.abs(x2 - x1)))}" height="${PH}"/></g>`);
  }
  for (const v of tickValues(ay)) {
    parts.push(`<line class="grid" x1="${M.left}" x2="${M.left + PW}" y1="${n1(y(v))}" y2="${n1(y(v))}"/>`);
    parts.push(`<text x="${M.left - 6}" y="${n1(y(v) + 4)}" text-anchor="end">${v.toFixed(ay.decimals)}</text>`);
  }
  for (const s of tickValues(ax)) {
    const px = n1(x(s * 1000));
    parts.push(`<line class="axis" x1="${px}" x2="${px}" y1="${BOTTOM}" y2="${BOTTOM + 5}"/><text x="${px}" y="${BOTTOM + 18}" text-anchor="middle">${s.toFixed(ax.decimals)}</text>`);
  }
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left + PW}" y1="${BOTTOM}" y2="${BOTTOM}"/><line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${BOTTOM}"/>`);
  parts.push(`<text x="${M.left + PW / 2}" y="${BOTTOM + 34}" text-anchor="middle">seconds since the run started</text>`);
  parts.push(`<text x="14" y="${M.top + PH / 2}" text-anchor="middle" transform="rotate(-90 14 ${M.top + PH / 2})">${esc(c.yLabel)}</text>`);
  for (const m of c.marks) parts.push(`<g class="event"><title>${esc(m.label)}</title><line x1="${n1(x(m.atMs))}" x2="${n1(x(m.atMs))}" y1="${M.top}" y2="${BOTTOM}"/></g>`);
  for (const s of c.series) {
    const drawn = runs(s.atMs, s.values).map((run) => {
      if (s.dots === true || run.length === 1) return run.map(([t, v]) => `<circle cx="${n1(x(t))}" cy="${n1(y(v))}" r="2" fill="${s.colour}"/>`).join('');
      const points = run.map(([t, v]) => `${n1(x(t))},${n1(y(v))}`).join(' ');
      return `<polyline points="${points}" fill="none" stroke="${s.colour}"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`;
    });
    parts.push(`<g class="series" data-series="${esc(s.id)}" stroke-width="1.6">${drawn.join('')}</g>`);
  }
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(c.label)}">\n${parts.join('\n')}\n</svg>`;
}
