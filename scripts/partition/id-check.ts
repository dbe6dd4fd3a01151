/**
 * The identity check: each id's count stands for one hit, so on every node
 * and every range it must be what that hit's fate allows:
 * - acked: 1 where its stamp lies inside the range, 0 where it lies outside,
 *   and 0 or 1 where the stamp is only known to a span across an end of it;
 * - failed: 0;
 * - unknown: 0 or 1 if it was sent before the range's end, else 0;
 * and every node must answer the same. A lost acked hit and a counted unknown
 * one on the same key are then two violations, not a sum that nets to zero.
 */
import type { EpochRange } from './closed-ranges.ts';
import { judge, outliers, type NodeCounts, type ScopeAnswers } from './count-check.ts';
import { placeStamp } from './hit-ledger.ts';
import type { IdHit } from './id-sample.ts';
import type { Violation } from './report.ts';

/** The bounds of one hit's id over `range` (the lifetime when omitted): at least `acked`, at most `acked + unknown`. */
export function idBounds(hit: IdHit, range?: EpochRange): { acked: 0 | 1; unknown: 0 | 1 } {
  const { outcome } = hit;
  if (outcome.kind === 'failed') return { acked: 0, unknown: 0 };
  if (outcome.kind === 'unknown') return { acked: 0, unknown: range === undefined || hit.sentAt < range.toMs ? 1 : 0 };
  const place = placeStamp(outcome.at, outcome.atMax ?? outcome.at, range);
  return place === 'in' ? { acked: 1, unknown: 0 } : place === 'maybe' ? { acked: 0, unknown: 1 } : { acked: 0, unknown: 0 };
}

/** Every (node, id, scope) out of its bounds, and every node that answers an id differently from the others. */
export function checkIds(hits: readonly IdHit[], scopes: readonly Omit<ScopeAnswers, 'expected'>[]): Violation[] {
  const violations: Violation[] = [];
  for (const scope of scopes) {
    for (const hit of hits) {
      const { acked, unknown } = idBounds(hit, scope.range);
      const counts = new Map<string, number>();
      const flagged = new Set<string>();
      for (const [node, answer] of scope.answers) {
        const count = answer?.get(hit.id);
        const at = { node, key: hit.id, window: scope.window, acked, unknown };
        if (count === undefined) {
          violations.push({ kind: 'no-answer', ...at, count: null });
          continue;
        }
        counts.set(node, count);
        const kind = judge(count, acked, acked + unknown);
        if (kind === undefined) continue;
        violations.push({ kind, ...at, count });
        flagged.add(node);
      }
      for (const node of outliers(counts, flagged)) {
        violations.push({ kind: 'disagree', node, key: hit.id, window: scope.window, count: counts.get(node) ?? null, acked, unknown });
      }
    }
  }
  return violations;
}

/**
 * Per node: each key's count as its ids add up there. A batch is all or nothing, so with every id read this is
 * the exact count the key must have on that node. A key with an id the node did not answer for is left out.
 */
export function idSums(hits: readonly IdHit[], answers: ReadonlyMap<string, NodeCounts>): Map<string, Map<string, number> | undefined> {
  const sums = new Map<string, Map<string, number> | undefined>();
  for (const [node, answer] of answers) {
    if (answer === undefined) {
      sums.set(node, undefined);
      continue;
    }
    const perKey = new Map<string, number>();
    const unread = new Set<string>();
    for (const hit of hits) {
      const count = answer.get(hit.id);
      if (count === undefined) unread.add(hit.key);
      else perKey.set(hit.key, (perKey.get(hit.key) ?? 0) + count);
    }
    for (const key of unread) perKey.delete(key);
    sums.set(node, perKey);
  }
  return sums;
}
