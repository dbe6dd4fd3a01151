/**
 * The guarantee check of an experiment's counts: every node's count of every
 * key, over each range read, must lie in [acked, acked + unknown]. Below it an
 * acknowledged hit was lost; above it one was counted twice. The partition
 * lab also asks, once the load has stopped, that every node answers the same
 * (`disagree` otherwise), and, when every hit's id was read, that each count
 * is exactly what the key's ids add up to on that node.
 */
import type { EpochRange } from './closed-ranges.ts';
import type { HitLedger } from './hit-ledger.ts';
import type { CheckWindow, Violation, ViolationKind } from './report.ts';

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

/** One range read on every node (the lifetime when `range` is omitted). */
export interface ScopeAnswers {
  readonly window: CheckWindow;
  readonly range?: EpochRange;
  /** Per node id: its counts over the range. */
  readonly answers: ReadonlyMap<string, NodeCounts>;
  /** Per node id: the exact count of each key, as its hits' ids add up on that node; keys absent are not known. */
  readonly expected?: ReadonlyMap<string, ReadonlyMap<string, number> | undefined>;
}

export interface CheckResult {
  /** (node, key, range) triples checked. */
  total: number;
  violations: Violation[];
}

/** The lifetime and one window, bounds only: what the soak checks after its nodes agreed. */
export function checkCounts(ledger: HitLedger, counts: CountsToCheck): CheckResult {
  const scopes: ScopeAnswers[] = [
    { window: 'all', answers: counts.all },
    { window: 'window', range: counts.range, answers: counts.window },
  ];
  return checkScopes(ledger, counts.keys, scopes, { agreement: false });
}

/** Every scope, every node, every key: bounds, the exact count where known, and (by default) agreement. */
export function checkScopes(ledger: HitLedger, keys: readonly string[], scopes: readonly ScopeAnswers[], options: { agreement: boolean } = { agreement: true }): CheckResult {
  const violations: Violation[] = [];
  let total = 0;
  for (const scope of scopes) {
    // One pass over the ledger per key, not per (node, key): a soak's ledger holds millions of hits.
    const bounds = new Map(keys.map((key) => [key, ledger.bounds(key, scope.range)]));
    /** Per key: the nodes already reported, and every answer, for the agreement pass. */
    const flagged = new Map(keys.map((key) => [key, new Set<string>()]));
    const answered = new Map(keys.map((key) => [key, new Map<string, number>()]));
    for (const [node, answer] of scope.answers) {
      for (const key of keys) {
        total++;
        const { acked, unknown } = bounds.get(key) ?? { acked: 0, unknown: 0 };
        const count = answer?.get(key);
        const at = { node, key, window: scope.window, acked, unknown };
        if (count === undefined) {
          violations.push({ kind: 'no-answer', ...at, count: null });
          continue;
        }
        answered.get(key)?.set(node, count);
        const expected = scope.expected?.get(node)?.get(key);
        const kind = judge(count, acked, acked + unknown) ?? (expected === undefined ? undefined : judge(count, expected, expected));
        if (kind === undefined) continue;
        violations.push({ kind, ...at, count, ...(expected !== undefined && expected !== count ? { expected } : {}) });
        flagged.get(key)?.add(node);
      }
    }
    if (!options.agreement) continue;
    for (const key of keys) {
      const counts = answered.get(key) ?? new Map<string, number>();
      const { acked, unknown } = bounds.get(key) ?? { acked: 0, unknown: 0 };
      for (const node of outliers(counts, flagged.get(key))) {
        violations.push({ kind: 'disagree', node, key, window: scope.window, count: counts.get(node) ?? null, acked, unknown });
      }
    }
  }
  return { total, violations };
}

/** `lost` below `min`, `double-counted` above `max`, else undefined. */
export function judge(count: number, min: number, max: number): Extract<ViolationKind, 'lost' | 'double-counted'> | undefined {
  if (count < min) return 'lost';
  if (count > max) return 'double-counted';
  return undefined;
}

/**
 * Among the nodes not already reported (`flagged`: out of bounds, say), those
 * whose answer is not the most common one (on a tie, the one the first of
 * them gave): none when they all agree. Each gets one `disagree`.
 */
export function outliers(counts: ReadonlyMap<string, number>, flagged: ReadonlySet<string> = new Set()): string[] {
  const judged = [...counts].filter(([node]) => !flagged.has(node));
  const votes = new Map<number, number>();
  for (const [, count] of judged) votes.set(count, (votes.get(count) ?? 0) + 1);
  if (votes.size <= 1) return [];
  let reference: number | undefined;
  let most = 0;
  for (const [count, n] of votes) {
    if (n > most) {
      most = n;
      reference = count;
    }
  }
  return judged.filter(([, count]) => count !== reference).map(([node]) => node);
}
