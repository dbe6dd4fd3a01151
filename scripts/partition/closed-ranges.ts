/**
 * Closed time ranges: how to judge counts while the load is still running.
 *
 * A node stamps a hit no earlier than it was sent (it stamps with its own
 * clock when it takes the hit, and clocks here are never set behind the
 * machine's). So once every request sent before `b` has been answered or
 * given up on, every hit that can ever be stamped before `b` is in the
 * ledger: the whole seconds before `b` are closed. A closed range
 * [a, b) has a final true count per key; nodes converge on it even though
 * hits keep arriving for later seconds, and each count must lie in the
 * ledger's bounds for it.
 */
import type { NodeCounts } from './count-check.ts';
import type { HitLedger } from './hit-ledger.ts';
import type { Violation } from './report.ts';

/** [fromMs, toMs), epoch ms. */
export interface EpochRange {
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * The instant before which every hit has been answered: the send time of the
 * oldest request still in flight, or now when none is.
 */
export function closedHorizon(oldestInFlightSentAt: number | undefined, nowMs: number): number {
  return oldestInFlightSentAt === undefined ? nowMs : Math.min(oldestInFlightSentAt, nowMs);
}

/** The latest whole second `b` with every second before it closed. */
export function closedSecond(horizonMs: number): number {
  return Math.floor(horizonMs / 1000) * 1000;
}

export function isClosed(range: EpochRange, horizonMs: number): boolean {
  return range.toMs <= horizonMs;
}

/** The whole seconds from the one holding `fromMs` to the end of the one holding `lastMs`: [floor(from), floor(last) + 1 s). */
export function wholeSeconds(fromMs: number, lastMs: number): EpochRange {
  const from = Math.floor(fromMs / 1000) * 1000;
  return { fromMs: from, toMs: Math.max(from + 1000, Math.floor(lastMs / 1000) * 1000 + 1000) };
}

/** The window an experiment checks besides the lifetime: the whole seconds from the one the faults started in to the end of the load. */
export function checkedRange(epoch0: number, faultAtMs: number, loadEndMs: number): EpochRange {
  const fromMs = Math.floor((epoch0 + faultAtMs) / 1000) * 1000;
  return { fromMs, toMs: Math.max(fromMs + 1000, Math.ceil((epoch0 + loadEndMs) / 1000) * 1000) };
}

/** Whether every node answered and all answers agree key by key. */
export function agree(answers: Iterable<NodeCounts>, keys: readonly string[]): boolean {
  let first: ReadonlyMap<string, number> | undefined;
  for (const answer of answers) {
    if (answer === undefined) return false;
    if (first === undefined) {
      first = answer;
      continue;
    }
    for (const key of keys) if (answer.get(key) !== first.get(key)) return false;
  }
  return first !== undefined;
}

/**
 * Every node's count of every key over a closed `range` against the ledger:
 * acked ≤ count ≤ acked + unknown, and a missing answer is a violation too.
 */
export function boundsViolations(ledger: HitLedger, keys: readonly string[], range: EpochRange, answers: ReadonlyMap<string, NodeCounts>): Violation[] {
  const violations: Violation[] = [];
  // One pass over the ledger per key, not per (node, key): a soak's ledger holds millions of hits.
  const bounds = new Map(keys.map((key) => [key, ledger.bounds(key, range)]));
  for (const [node, answer] of answers) {
    for (const key of keys) {
      const { acked, unknown } = bounds.get(key) ?? { acked: 0, unknown: 0 };
      const count = answer?.get(key);
      if (count === undefined) violations.push({ kind: 'no-answer', node, key, window: 'closed', count: null, acked, unknown });
      else if (count < acked) violations.push({ kind: 'lost', node, key, window: 'closed', count, acked, unknown });
      else if (count > acked + unknown) violations.push({ kind: 'double-counted', node, key, window: 'closed', count, acked, unknown });
    }
  }
  return violations;
}
