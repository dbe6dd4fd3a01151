/**
 * The final check of an experiment, once the load has stopped: every node's
 * count of every key, and of every hit's id, over the lifetime and four
 * ranges around the fault start: the checked window of whole seconds, and
 * the minute, the hour and the UTC day that hold the fault start. Each of the
 * last three is aligned to its tier and one bucket long, so a node plans it
 * as exactly one bucket of that tier (crdt/window-plan.ts): a count wrong in
 * one tier only shows there, and a run of seconds would never read it.
 * Every count must lie within the ledger's bounds, every id must count as
 * its one hit did, and all nodes must answer the same.
 */
import { TIER_SIZE_MS, Tier, floorTo, type TimedTier } from '../../crdt/tiers.ts';
import { agree, checkedRange, type EpochRange } from './closed-ranges.ts';
import { checkScopes, type NodeCounts, type ScopeAnswers } from './count-check.ts';
import { readCounts } from './count-reader.ts';
import { checkIds, idSums } from './id-check.ts';
import { awaitAgreement, type RangeProbe } from './range-convergence.ts';
import type { CheckedRange, CheckWindow, ExperimentReport, IdChecks } from './report.ts';
import { sleep } from './timing.ts';

/** Id violations listed in the report; the rest are only counted (a tier bug breaks every id at once). */
export const MAX_ID_VIOLATIONS = 100;

/** A range the final check reads: the lifetime when `range` is omitted. */
export interface Scope {
  readonly window: Exclude<CheckWindow, 'closed'>;
  readonly range?: EpochRange;
}

/** The lifetime, the whole seconds from the faults to the load's end, and the minute, hour and UTC day of the fault start. */
export function checkedScopes(epoch0: number, faultAtMs: number, loadEndMs: number): Scope[] {
  const faultEpoch = epoch0 + faultAtMs;
  const bucket = (tier: TimedTier): EpochRange => {
    const fromMs = floorTo(faultEpoch, TIER_SIZE_MS[tier]);
    return { fromMs, toMs: fromMs + TIER_SIZE_MS[tier] };
  };
  return [
    { window: 'all' },
    { window: 'window', range: checkedRange(epoch0, faultAtMs, loadEndMs) },
    { window: 'minute', range: bucket(Tier.minute) },
    { window: 'hour', range: bucket(Tier.hour) },
    { window: 'day', range: bucket(Tier.day) },
  ];
}

export interface FinalCheck {
  /** Per node: its lifetime counts of the experiment keys. */
  readonly lifetime: ReadonlyMap<string, NodeCounts>;
  readonly checks: ExperimentReport['checks'];
}

/** Wait (until `deadlineMs`, ms since the load start) for every node to agree on every scope, then read and judge. */
export async function finalCheck(probe: RangeProbe, scopes: readonly Scope[], deadlineMs: number): Promise<FinalCheck> {
  // Agreeing on the lifetime says nothing about the tiers (a repair may bring their slots later): wait on every range read.
  await awaitAgreement(probe, scopes.map((s) => s.range), deadlineMs);
  const keyAnswers = await readScopes(probe, probe.keys, scopes);
  const sample = probe.ledger.ids;
  const hits = sample.hits();
  const idKeys = hits.map((h) => h.id);
  let idAnswers = await readScopes(probe, idKeys, scopes);
  // Ids travel in the same batches as their keys, so they have almost surely agreed too; if not, they get until the deadline.
  while (!idAnswers.every((answers) => agree(answers.values(), idKeys)) && probe.now() < deadlineMs) {
    await sleep(100, probe.signal);
    idAnswers = await readScopes(probe, idKeys, scopes);
  }
  const answersAt = (i: number): ReadonlyMap<string, NodeCounts> => idAnswers[i] ?? new Map<string, NodeCounts>();
  const keyScopes = scopes.map(
    (scope, i): ScopeAnswers => ({ ...scope, answers: keyAnswers[i] ?? new Map(), ...(sample.complete ? { expected: idSums(hits, answersAt(i)) } : {}) }),
  );
  const { total, violations } = checkScopes(probe.ledger, probe.keys, keyScopes);
  const idViolations = checkIds(
    hits,
    scopes.map((scope, i) => ({ ...scope, answers: answersAt(i) })),
  );
  const listed = idViolations.slice(0, MAX_ID_VIOLATIONS);
  const ids: IdChecks = {
    sent: sample.sent,
    checked: hits.length,
    acked: hits.filter((h) => h.outcome.kind === 'acked').length,
    failed: hits.filter((h) => h.outcome.kind === 'failed').length,
    unknown: hits.filter((h) => h.outcome.kind === 'unknown').length,
    complete: sample.complete,
    violations: idViolations.length,
    listed: listed.length,
  };
  const ranges = scopes.flatMap(({ window, range }): CheckedRange[] =>
    window === 'all' || range === undefined ? [] : [{ window, epochFromMs: range.fromMs, epochToMs: range.toMs, fromMs: range.fromMs - probe.epoch0, toMs: range.toMs - probe.epoch0 }],
  );
  const lifetime = keyAnswers[scopes.findIndex((s) => s.range === undefined)] ?? new Map<string, NodeCounts>();
  return { lifetime, checks: { total, violations: [...violations, ...listed], ranges, ids } };
}

/** Per scope, per node id: its counts of `keys`, the nodes read at once. */
async function readScopes(probe: RangeProbe, keys: readonly string[], scopes: readonly Scope[]): Promise<Map<string, NodeCounts>[]> {
  const out: Map<string, NodeCounts>[] = [];
  for (const scope of scopes) {
    const read = await Promise.all(probe.nodes.map((n) => readCounts(n.url, keys, scope.range)));
    out.push(new Map(probe.nodes.map((n, i) => [n.id, read[i]])));
  }
  return out;
}
