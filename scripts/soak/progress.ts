/**
 * The soak's progress: one line about how it is going (rewritten in place on
 * a terminal, a line every few seconds otherwise), as the partition runner
 * prints it.
 */

export interface ProgressState {
  readonly phase: string;
  /** Ms since the load started (negative while calibrating). */
  readonly atMs: number;
  readonly durationMs: number;
  /** Labels of the faults in force. */
  readonly open: readonly string[];
  readonly rate: number;
  readonly totals: { readonly sent: number; readonly acked: number; readonly failed: number; readonly unknown: number };
  readonly nodes: readonly { readonly id: string; readonly rssBytes: number | null; readonly lagMs: number | null }[];
}

export function soakProgressLine(s: ProgressState): string {
  const when = s.phase === 'soak' ? `${Math.max(0, s.atMs / 1000).toFixed(0)}/${(s.durationMs / 1000).toFixed(0)} s` : s.phase;
  const rss = s.nodes.map((n) => `${n.id} ${n.rssBytes === null ? '—' : `${Math.round(n.rssBytes / 2 ** 20)} MB`}`).join(' ');
  const lag = s.nodes.map((n) => `${n.id} ${n.lagMs === null ? '—' : `${n.lagMs} ms`}`).join(' ');
  const t = s.totals;
  return (
    `soak ${when} · ${s.open.length > 0 ? s.open.join('; ') : 'no fault'} · ${s.rate > 0 ? `${s.rate} hits/s · ` : ''}` +
    `sent ${t.sent} acked ${t.acked} failed ${t.failed} unknown ${t.unknown} · rss ${rss} · lag ${lag}`
  );
}

export { progressWriter } from '../lib/progress-writer.ts';
