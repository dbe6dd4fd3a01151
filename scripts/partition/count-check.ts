/**
 * The guarantee check of an experiment: every node's count of every key, for
 * the lifetime and for one window, must lie in [acked, acked + unknown]. Below
 * it an acknowledged hit was lost; above it one was counted twice.
 */
import type { HitLedger } from './hit-ledger.ts';
import type { Violation } from './report.ts';

/** One node's answers: key → count, or undefined when the node did not answer. */
export type NodeCounts = ReadonlyMap<string, number> | undefined;

export interface CountsToCheck {
  readonly keys: readonly string[];
  /** Per node id: its lifetime counts. */
  readonly all: ReadonlyMap<string, NodeCounts>;
  /** Per node id: its counts over `range`. */
  readonly window: ReadonlyMap<string, NodeCounts>;
  readonly range: { readonly fromMs: number; readonly toMs: number };
}

export function checkCounts(ledger: HitLedger, counts: CountsToCheck): { total: number; violations: Violation[] } {
  const violations: Violation[] = [];
  let total = 0;
  const scopes = [
    { window: 'all' as const, answers: counts.all, range: undefined },
    { window: 'window' as const, answers: counts.window, range: counts.range },
  ];
  for (const { window, answers, range } of scopes) {
    for (const [node, answer] of answers) {
      for (const key of counts.keys) {
        total++;
        const { acked, unknown } = ledger.bounds(key, range);
        const count = answer?.get(key);
        if (count === undefined) violations.push({ kind: 'no-answer', node, key, window, count: null, acked, unknown });
        else if (count < acked) violations.push({ kind: 'lost', node, key, window, count, acked, unknown });
        else if (count > acked + unknown) violations.push({ kind: 'double-counted', node, key, window, count, acked, unknown });
      }
    }
  }
  return { total, violations };
}
