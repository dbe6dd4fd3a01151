/**
 * Polling a closed range until every node agrees on it, with the load still
 * running: first wait until the range is closed (every hit that can fall in
 * it answered), then read it from every node until all answers agree or the
 * deadline passes, and judge the last answers against the ledger.
 */
import { agree, boundsViolations, isClosed, type EpochRange } from './closed-ranges.ts';
import type { NodeCounts } from './count-check.ts';
import { readCounts } from './count-reader.ts';
import type { HitLedger } from './hit-ledger.ts';
import type { ClosedRangeResult, Violation } from './report.ts';
import { sleep } from './timing.ts';

export interface RangeProbe {
  readonly nodes: readonly { readonly id: string; readonly url: string }[];
  readonly keys: readonly string[];
  readonly ledger: HitLedger;
  /** The closed horizon now, epoch ms (see closedHorizon). */
  horizon(): number;
  /** Ms since the load started. */
  now(): number;
  /** Epoch ms of the load start. */
  readonly epoch0: number;
  readonly signal?: AbortSignal;
}

const POLL_MS = 20;

/** Settle `range` before `deadlineMs` (ms since the load start). Never throws for a node that does not answer: that is a violation. */
export async function settleRange(probe: RangeProbe, label: string, range: EpochRange, deadlineMs: number): Promise<ClosedRangeResult> {
  while (!isClosed(range, probe.horizon()) && probe.now() < deadlineMs) await sleep(POLL_MS, probe.signal);
  const closedAtMs = probe.now();
  let answers: Map<string, NodeCounts>;
  let agreedAtMs: number | null = null;
  // Read at least once, even past the deadline, so the report holds what the nodes said.
  const closed = isClosed(range, probe.horizon());
  do {
    const read = await Promise.all(probe.nodes.map((n) => readCounts(n.url, probe.keys, range)));
    answers = new Map(probe.nodes.map((n, i) => [n.id, read[i]]));
    if (closed && agree(answers.values(), probe.keys)) {
      agreedAtMs = probe.now();
      break;
    }
    await sleep(POLL_MS, probe.signal);
  } while (probe.now() < deadlineMs);
  return {
    label,
    epochFromMs: range.fromMs,
    epochToMs: range.toMs,
    fromMs: range.fromMs - probe.epoch0,
    toMs: range.toMs - probe.epoch0,
    closedAtMs,
    agreedAtMs,
    violations: judged(closed, agreedAtMs !== null, boundsViolations(probe.ledger, probe.keys, range, answers)),
  };
}

/**
 * A range that never closed may hold hits the ledger has no answer for yet: it fails as not agreed, not as
 * miscounted. On one that closed but never agreed, a count below the bound is a hit that had not arrived:
 * missing, not (yet) lost. A count above it is double counted either way: a closed range's count only grows.
 */
function judged(closed: boolean, agreed: boolean, violations: Violation[]): Violation[] {
  if (!closed) return [];
  return agreed ? violations : violations.map((v) => (v.kind === 'lost' ? { ...v, kind: 'missing' } : v));
}

/**
 * Poll every node until all agree on every scope: the lifetime (undefined) or
 * a range. Only meaningful once nothing is written any more (the load has
 * stopped): lifetime slots travel with every later push, so agreeing on the
 * lifetime says nothing about the 1 s buckets. Returns when they did (ms
 * since the load start), or null at the deadline.
 */
export async function awaitAgreement(probe: RangeProbe, scopes: readonly (EpochRange | undefined)[], deadlineMs: number): Promise<number | null> {
  while (probe.now() < deadlineMs) {
    let agreed = true;
    for (const scope of scopes) {
      const answers = await Promise.all(probe.nodes.map((n) => readCounts(n.url, probe.keys, scope)));
      if (!agree(answers, probe.keys)) {
        agreed = false;
        break;
      }
    }
    if (agreed) return probe.now();
    await sleep(POLL_MS, probe.signal);
  }
  return null;
}
