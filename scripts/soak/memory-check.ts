/**
 * "Memory stayed flat": per node, the RSS of the last minute of the load is
 * at most 1.1 × that of its second minute (the first minute is warm-up: the
 * JIT, the first buckets of every key). A run under three minutes has no
 * such minutes, so its second and last sixths stand in for them.
 *
 * A window's RSS is the median of its samples, so one sample caught in a GC
 * spike does not decide. A leak is growth within one process: a node
 * restarted between the windows (or just before the first: its fresh process
 * is still growing) is shown but not judged, since its two figures are two
 * processes (one freshly rebuilt from its store, one long-running). So is a
 * node with no sample in a window. The steady node, never killed, always is
 * judged, and it lives through every fault as a peer.
 */

export const RSS_LIMIT_RATIO = 1.1;
export const WARMUP_MS = 10_000;
/** At least this long, the minutes are compared; shorter runs compare sixths. */
export const MINUTES_FROM_MS = 180_000;

export interface RssSeries {
  readonly atMs: readonly number[];
  readonly rssBytes: Readonly<Record<string, readonly (number | null)[]>>;
}

export interface MemoryWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

export interface NodeMemory {
  readonly id: string;
  /** Median RSS of the early and the late window; null where there is no sample. */
  readonly earlyBytes: number | null;
  readonly lateBytes: number | null;
  /** late / early, shown even when not judged. */
  readonly ratio: number | null;
  readonly judged: boolean;
  /** Why it was not judged. */
  readonly notJudged?: 'restarted' | 'no samples';
  readonly ok: boolean;
}

export interface MemoryJudgement {
  readonly basis: 'minutes' | 'sixths';
  /** The second minute (or sixth) of the load, and its last. */
  readonly early: MemoryWindow;
  readonly late: MemoryWindow;
  readonly limitRatio: number;
  readonly nodes: readonly NodeMemory[];
  /** Every judged node within the limit, and at least one judged. */
  readonly ok: boolean;
  readonly note: string;
}

/** The two windows compared, for a load from `loadStartMs` to `loadEndMs`. */
export function memoryWindows(loadStartMs: number, loadEndMs: number): { basis: 'minutes' | 'sixths'; early: MemoryWindow; late: MemoryWindow } {
  const span = loadEndMs - loadStartMs;
  const unit = span >= MINUTES_FROM_MS ? 60_000 : span / 6;
  return {
    basis: span >= MINUTES_FROM_MS ? 'minutes' : 'sixths',
    early: { fromMs: loadStartMs + unit, toMs: loadStartMs + 2 * unit },
    late: { fromMs: loadEndMs - unit, toMs: loadEndMs },
  };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? null) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * Judge every node's RSS. `restartsMs`: per node, when each process after its
 * first became ready, ms on the same clock as the samples.
 */
export function judgeMemory(series: RssSeries, loadStartMs: number, loadEndMs: number, restartsMs: Readonly<Record<string, readonly number[]>>): MemoryJudgement {
  const { basis, early, late } = memoryWindows(loadStartMs, loadEndMs);
  const nodes = Object.keys(series.rssBytes).map((id): NodeMemory => {
    const values = series.rssBytes[id] ?? [];
    const inWindow = (w: MemoryWindow): number[] =>
      series.atMs.flatMap((at, i) => {
        const v = values[i];
        return v === null || v === undefined || at < w.fromMs || at >= w.toMs ? [] : [v];
      });
    const earlyBytes = median(inWindow(early));
    const lateBytes = median(inWindow(late));
    const ratio = earlyBytes !== null && lateBytes !== null && earlyBytes > 0 ? lateBytes / earlyBytes : null;
    const restarted = (restartsMs[id] ?? []).some((at) => at >= early.fromMs - WARMUP_MS && at < late.toMs);
    if (restarted || ratio === null) return { id, earlyBytes, lateBytes, ratio, judged: false, notJudged: restarted ? 'restarted' : 'no samples', ok: true };
    return { id, earlyBytes, lateBytes, ratio, judged: true, ok: lateBytes !== null && earlyBytes !== null && lateBytes <= RSS_LIMIT_RATIO * earlyBytes };
  });
  const judged = nodes.filter((n) => n.judged);
  const ok = judged.length > 0 && judged.every((n) => n.ok);
  const which = basis === 'minutes' ? 'last minute vs second minute' : 'last sixth vs second sixth of the run (shorter than 3 minutes)';
  const unjudged = nodes.filter((n) => !n.judged).map((n) => `${n.id} (${n.notJudged === 'restarted' ? 'restarted in between' : 'no samples'})`);
  const note =
    `${which}, median RSS per window, limit ${RSS_LIMIT_RATIO}× within one process` +
    (judged.length === 0 ? '; no node could be judged' : unjudged.length > 0 ? `; not judged: ${unjudged.join(', ')}` : '');
  return { basis, early, late, limitRatio: RSS_LIMIT_RATIO, nodes, ok, note };
}
