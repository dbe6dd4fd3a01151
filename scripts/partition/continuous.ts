/**
 * The end of a `--continuous` experiment: the load keeps going through the
 * heal, so "converged" can only be judged on closed time ranges (see
 * closed-ranges.ts). Convergence time is from the heal until every node
 * agrees on [fault start, heal second + 1 s); then the load runs on for a
 * tail, the ranges up to the last closed second are judged with the load
 * still on, and only then does the load stop for the usual final checks.
 */
import { checkedRange, closedSecond, wholeSeconds } from './closed-ranges.ts';
import { awaitAgreement, settleRange, type RangeProbe } from './range-convergence.ts';
import type { CheckedWindow, ClosedRangeResult, ContinuousChecks } from './report.ts';

/** The load goes on this long after convergence: long enough for several more seconds to close under load. */
export const CONTINUOUS_TAIL_MS = 3_000;

export interface ContinuousPhase {
  readonly probe: RangeProbe;
  /** When the faults started and when they were healed, ms since the load start. */
  readonly faultAtMs: number;
  readonly healAtMs: number;
  /** How long each wait for agreement may take. */
  readonly limitMs: number;
  /** Stop the load and wait for every hit in flight. */
  stopLoad(): Promise<void>;
  until(ms: number): Promise<void>;
}

export interface ContinuousOutcome {
  /** Heal → every node agrees on the convergence range; null if not within the limit. */
  readonly convergedMs: number | null;
  readonly loadEndMs: number;
  readonly checks: ContinuousChecks;
}

export async function finishContinuous(phase: ContinuousPhase): Promise<ContinuousOutcome> {
  const { probe, healAtMs, limitMs } = phase;
  const faultEpoch = probe.epoch0 + phase.faultAtMs;
  const convergeRange = wholeSeconds(faultEpoch, probe.epoch0 + healAtMs);
  const converge = await settleRange(probe, 'fault start → heal second + 1 s', convergeRange, healAtMs + limitMs);
  const convergedMs = converge.agreedAtMs === null ? null : converge.agreedAtMs - healAtMs;

  await phase.until(probe.now() + CONTINUOUS_TAIL_MS);
  // The lifetime keeps growing while the load runs: the run start to the last closed second stands in for it.
  const end = closedSecond(probe.horizon());
  const deadline = probe.now() + limitMs;
  const later: ClosedRangeResult[] = [];
  later.push(await settleRange(probe, 'fault start → last closed second', { fromMs: convergeRange.fromMs, toMs: end }, deadline));
  later.push(await settleRange(probe, 'load start → last closed second', { fromMs: closedSecond(probe.epoch0), toMs: end }, deadline));

  await phase.stopLoad();
  const loadEndMs = probe.now();
  // The final checks read the lifetime and the checked window: both must have settled, not only the lifetime.
  const settledAt = await awaitAgreement(probe, [undefined, checkedRange(probe.epoch0, phase.faultAtMs, loadEndMs)], loadEndMs + limitMs);
  return {
    convergedMs,
    loadEndMs,
    checks: {
      convergeRange: window(convergeRange, probe.epoch0),
      tailMs: CONTINUOUS_TAIL_MS,
      ranges: [converge, ...later],
      settledMs: settledAt === null ? null : settledAt - loadEndMs,
    },
  };
}

/** Every closed range agreed, none out of bounds, and the lifetime settled after the stop. */
export function continuousHeld(checks: ContinuousChecks): boolean {
  return checks.settledMs !== null && checks.ranges.every((r) => r.agreedAtMs !== null && r.violations.length === 0);
}

function window(range: { fromMs: number; toMs: number }, epoch0: number): CheckedWindow {
  return { epochFromMs: range.fromMs, epochToMs: range.toMs, fromMs: range.fromMs - epoch0, toMs: range.toMs - epoch0 };
}
