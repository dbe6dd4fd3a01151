/**
 * What the offline HTML reports share (the partition report, the soak report):
 * escaping, chart axes, series colours and the page style. No script and no
 * network reference of any kind goes into a page.
 */

/** Distinct colours for node series, cycled when there are more nodes. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in text and in quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** SVG coordinates: one decimal is plenty and keeps the markup small. */
export function n1(v: number): string {
  return v.toFixed(1);
}

export function colourOf(i: number): string {
  return PALETTE[i % PALETTE.length] ?? '#000';
}

export interface Axis {
  readonly min: number;
  readonly max: number;
  readonly step: number;
  readonly decimals: number;
}

/**
 * A 1/2/5 × 10^k tick step for [lo, hi]. The domain stays the data's and ticks fall inside it, so a
 * -0.4 s window start or a count just past a round number does not cost a whole empty step. A flat
 * or empty range still gets a usable axis.
 */
export function niceAxis(lo: number, hi: number, target: number, minStep: number): Axis {
  const top = hi > lo ? hi : lo + Math.max(minStep, 1);
  const raw = (top - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = Math.max(minStep, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag);
  return { min: lo, max: top, step, decimals: Math.max(0, -Math.floor(Math.log10(step))) };
}

export function tickValues(a: Axis): number[] {
  // Whole multiples of the step inside the domain, multiplied rather than accumulated so float error
  // neither drifts nor drops the last tick.
  const first = Math.ceil(a.min / a.step - 1e-9);
  const last = Math.floor(a.max / a.step + 1e-9);
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, k) => (first + k) * a.step);
}

/** Runs of consecutive answered samples as [ms, count]: a null (no answer) breaks the line. */
export function runs(atMs: readonly number[], values: readonly (number | null)[]): [number, number][][] {
  const out: [number, number][][] = [];
  let run: [number, number][] = [];
  atMs.forEach((t, i) => {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v) || !Number.isFinite(t)) {
      if (run.length > 0) out.push(run);
      run = [];
    } else run.push([t, v]);
  });
  if (run.length > 0) out.push(run);
  return out;
}

export const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; max-width: 1000px; margin: 24px auto; padding: 0 16px; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 28px 0 8px; font-size: 17px; }
.desc { margin: 0 0 12px; color: #444; }
.verdict { padding: 10px 14px; border-radius: 6px; font-size: 16px; color: #fff; }
.verdict strong { font-size: 20px; margin-right: 8px; }
.verdict.pass { background: #1e8e3e; }
.verdict.fail { background: #c5221f; }
.settings { display: flex; flex-wrap: wrap; gap: 6px 24px; margin: 14px 0; }
.settings dt { color: #666; font-size: 12px; }
.settings dd { margin: 0; font-weight: 600; }
.chart { width: 100%; height: auto; font-size: 11px; }
.chart text { fill: #333; }
.chart .axis { stroke: #333; }
.chart .grid { stroke: #e4e4e4; }
.chart .fault rect { fill: #f4a300; fill-opacity: 0.14; }
.chart .fault text { fill: #8a5a00; font-weight: 600; }
.chart .event line { stroke: #888; stroke-width: 0.8; }
.chart .event text { fill: #555; font-size: 10px; }
.chart .marker line { stroke: #111; stroke-width: 1.2; }
.chart .marker text { font-weight: 600; }
.chart .window path { fill: none; stroke: #555; }
.chart .acked-label { font-weight: 600; }
.legend, .faults { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0; }
.legend li { display: flex; align-items: center; gap: 4px; }
.faults { color: #555; font-size: 13px; }
.results, .ranges { padding-left: 18px; }
.ranges .good { color: #1e8e3e; }
.ranges .bad { color: #c5221f; font-weight: 600; }
.note { color: #555; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { font-size: 12px; color: #555; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: #c5221f; font-weight: 600; }
td.good { color: #1e8e3e; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
`;
