/**
 * The `retry` experiment's ledger. A logical hit is one `Idempotency-Key`
 * token on one key with one n; a client sends it once or several times
 * (attempts), to nodes on either side of a cut, during it and after the heal,
 * and every attempt's true answer is kept. The contract (SPEC section 3): the
 * token counts once, however many nodes took it.
 *
 * What a logical hit must count, on every node, after the heal:
 * - acked (some attempt got a 200): exactly n, stamped at the earliest of the
 *   nodes that took it, which lies between the send of its first attempt that
 *   may have been taken and the first stamp known (a 200's `at`, or the
 *   answer's arrival);
 * - unknown (no 200, some attempt unanswered): 0 or n, never 2n;
 * - failed (every attempt refused, a 4xx or a 503): 0.
 * The counts are then judged by the partition lab's own check (HitLedger's
 * bounds, count-check.ts), fed with each logical hit as n hits.
 *
 * The answers are judged too (`flagViolations`): a node that already answered
 * 200 for a token must say `"duplicate": true` to every later attempt and say
 * `false` at most once; `true` from a node that cannot have heard of the token
 * (no earlier attempt that may have been taken, or only ones across the cut
 * while it held) is a phantom; the same token with another n on a node that
 * took it must be a 422.
 */
import { HitLedger, type HitOutcome } from './hit-ledger.ts';

export type AttemptAnswer =
  /** A 200; `duplicate` as the body said it (undefined if it did not), `at` the stamp it gave. */
  | { readonly kind: 'acked'; readonly duplicate: boolean | undefined; readonly at?: number }
  /** Certainly not taken: refused (status 0), a 4xx or a 503. */
  | { readonly kind: 'failed'; readonly status: number }
  /** No answer (timeout, reset) or one that cannot be read: maybe taken. */
  | { readonly kind: 'unknown' };

export interface Attempt {
  readonly node: string;
  /** The n sent: the logical hit's own, or another for a conflict probe. */
  readonly n: number;
  readonly conflict: boolean;
  readonly sentAt: number;
  answeredAt: number;
  answer: AttemptAnswer | undefined;
}

export interface LogicalHit {
  readonly token: string;
  readonly key: string;
  readonly n: number;
  /** In the order they were sent. */
  readonly attempts: Attempt[];
}

/** The cut the experiment held: its two sides, and when it began and was healed (epoch ms). */
export interface CutTimes {
  readonly sides: readonly [readonly string[], readonly string[]];
  readonly cutAt: number;
  readonly healedAt: number | undefined;
}

export type RetryFlagKind = 'not-flagged' | 'phantom-duplicate' | 'conflict-taken' | 'conflict-not-422';

export interface RetryFlagViolation {
  readonly kind: RetryFlagKind;
  readonly token: string;
  readonly key: string;
  readonly node: string;
  readonly detail: string;
}

/** What the clients did and how the nodes answered, for the report. */
export interface RetryTally {
  readonly logical: number;
  /** Logical hits by outcome. */
  readonly acked: number;
  readonly failed: number;
  readonly unknown: number;
  /** Attempts, conflict probes included. */
  readonly attempts: number;
  /** Attempts after a token's first (conflict probes not included). */
  readonly retries: number;
  /** Retries sent to a node on the other side from the token's first attempt: while the cut held, and after the heal. */
  readonly acrossCut: number;
  readonly acrossAfterHeal: number;
  /** Tokens that a node on each side took (200, duplicate false) while the cut held: counted on both, once after the heal. */
  readonly bothSides: number;
  /** 200s with `"duplicate": true`. */
  readonly duplicates: number;
  /** 200s from a node that had already answered 200 for the token when the attempt was sent. */
  readonly sameNodeRepeats: number;
  readonly conflictsSent: number;
  readonly conflictsRefused: number;
  readonly flagViolations: number;
  /** The longest an attempt waited for its answer, ms. */
  readonly slowestMs: number;
}

/** Flag violations listed in the report; the rest are counted. */
export const MAX_FLAG_VIOLATIONS = 50;

const taken = (a: Attempt): boolean => a.answer !== undefined && a.answer.kind !== 'failed';
const acked = (a: Attempt): a is Attempt & { answer: Extract<AttemptAnswer, { kind: 'acked' }> } => a.answer?.kind === 'acked';

/** A logical hit's fate, as one hit of the partition lab's ledger: when it was (maybe) sent, and its outcome. */
export function logicalOutcome(hit: LogicalHit): { sentAt: number; outcome: HitOutcome } {
  const real = hit.attempts.filter((a) => !a.conflict);
  const maybe = real.filter(taken);
  const sentAt = Math.min(...(maybe.length > 0 ? maybe : real).map((a) => a.sentAt));
  if (maybe.length === 0) return { sentAt, outcome: { kind: 'failed' } };
  const oks = real.filter(acked);
  if (oks.length === 0) return { sentAt, outcome: { kind: 'unknown' } };
  // The node that answered first stamped it by then (at `at` for a first taking); the earliest taker, no later.
  const known = Math.min(...oks.map((a) => (a.answer.duplicate === false && a.answer.at !== undefined ? a.answer.at : a.answeredAt)));
  return { sentAt, outcome: { kind: 'acked', at: sentAt, atMax: Math.max(sentAt, known) } };
}

export class RetryLedger {
  readonly hits: LogicalHit[] = [];
  healedAt: number | undefined;

  constructor(
    readonly sides: readonly [readonly string[], readonly string[]],
    readonly cutAt: number,
  ) {}

  add(token: string, key: string, n: number): LogicalHit {
    const hit: LogicalHit = { token, key, n, attempts: [] };
    this.hits.push(hit);
    return hit;
  }

  /** The last answer of any attempt (epoch ms), or undefined before the first. */
  lastAnsweredAt(): number | undefined {
    let last: number | undefined;
    for (const hit of this.hits) for (const a of hit.attempts) if (a.answer !== undefined && (last === undefined || a.answeredAt > last)) last = a.answeredAt;
    return last;
  }

  /** Every logical hit as n hits of one ledger, for the partition lab's count check of `nodes`. */
  toHitLedger(nodes: readonly string[]): HitLedger {
    const ledger = new HitLedger(nodes);
    for (const hit of this.hits) {
      const first = hit.attempts[0];
      if (first === undefined) continue;
      const { sentAt, outcome } = logicalOutcome(hit);
      for (let i = 0; i < hit.n; i++) ledger.record(first.node, hit.key, sentAt, outcome);
    }
    return ledger;
  }

  flagViolations(): RetryFlagViolation[] {
    const cut: CutTimes = { sides: this.sides, cutAt: this.cutAt, healedAt: this.healedAt };
    return this.hits.flatMap((hit) => flagsOf(hit, cut));
  }

  tally(): RetryTally {
    const side = sideOf(this.sides);
    const beforeHeal = (t: number): boolean => this.healedAt === undefined || t < this.healedAt;
    const t = { logical: this.hits.length, acked: 0, failed: 0, unknown: 0, attempts: 0, retries: 0, acrossCut: 0, acrossAfterHeal: 0, bothSides: 0 };
    let duplicates = 0;
    let sameNodeRepeats = 0;
    let conflictsSent = 0;
    let conflictsRefused = 0;
    let slowestMs = 0;
    for (const hit of this.hits) {
      t[logicalOutcome(hit).outcome.kind]++;
      t.attempts += hit.attempts.length;
      for (const a of hit.attempts) if (a.answer !== undefined) slowestMs = Math.max(slowestMs, a.answeredAt - a.sentAt);
      const [first, ...rest] = hit.attempts.filter((a) => !a.conflict);
      for (const a of rest) {
        t.retries++;
        if (first !== undefined && side(a.node) !== side(first.node)) {
          if (beforeHeal(a.sentAt)) t.acrossCut++;
          else t.acrossAfterHeal++;
        }
      }
      const firstTakers = hit.attempts.filter((a) => acked(a) && !a.conflict && a.answer.duplicate === false && beforeHeal(a.answeredAt));
      if (new Set(firstTakers.map((a) => side(a.node))).size === 2) t.bothSides++;
      for (const a of hit.attempts) {
        if (a.conflict) {
          conflictsSent++;
          if (a.answer?.kind === 'failed' && a.answer.status === 422) conflictsRefused++;
          continue;
        }
        if (!acked(a)) continue;
        if (a.answer.duplicate === true) duplicates++;
        if (answeredBefore(hit, a)) sameNodeRepeats++;
      }
    }
    return { ...t, duplicates, sameNodeRepeats, conflictsSent, conflictsRefused, flagViolations: this.flagViolations().length, slowestMs };
  }
}

/** Which side of the cut a node is on: 0 or 1. */
function sideOf(sides: CutTimes['sides']): (node: string) => number {
  return (node) => (sides[0].includes(node) ? 0 : 1);
}

/** Whether the same node had already answered 200 for this token when `a` was sent. */
function answeredBefore(hit: LogicalHit, a: Attempt): boolean {
  return hit.attempts.some((b) => b !== a && !b.conflict && b.node === a.node && acked(b) && b.answeredAt <= a.sentAt);
}

/** The answers of one logical hit that break the contract. */
export function flagsOf(hit: LogicalHit, cut: CutTimes): RetryFlagViolation[] {
  const out: RetryFlagViolation[] = [];
  const side = sideOf(cut.sides);
  const flag = (kind: RetryFlagKind, a: Attempt, detail: string): void => {
    out.push({ kind, token: hit.token, key: hit.key, node: a.node, detail });
  };
  const real = hit.attempts.filter((a) => !a.conflict);
  for (const [i, a] of real.entries()) {
    if (!acked(a)) continue;
    if (a.answer.duplicate !== true) {
      // A second "first" from one node: either it had answered 200 before this was sent, or two concurrent ones both said false.
      const before = answeredBefore(hit, a);
      const twin = real.some((b, j) => b !== a && b.node === a.node && acked(b) && b.answer.duplicate !== true && (b.answeredAt < a.answeredAt || (b.answeredAt === a.answeredAt && j < i)));
      const said = a.answer.duplicate === undefined ? 'no duplicate flag' : '"duplicate": false';
      if (before) flag('not-flagged', a, `answered ${said} though it had already answered 200 for this token`);
      else if (twin) flag('not-flagged', a, `answered ${said} a second time for this token`);
      continue;
    }
    // "duplicate": true needs an earlier attempt that may have been taken and that this node can have heard of.
    const withinCut = a.sentAt >= cut.cutAt && (cut.healedAt === undefined || a.answeredAt <= cut.healedAt);
    const heardOf = real.some((b) => b !== a && taken(b) && b.sentAt <= a.answeredAt && (!withinCut || side(b.node) === side(a.node)));
    if (!heardOf) flag('phantom-duplicate', a, withinCut ? 'said "duplicate": true, but no attempt on its side of the cut came before' : 'said "duplicate": true, but no attempt that may have been taken came before');
  }
  for (const a of hit.attempts) {
    if (!a.conflict || a.answer === undefined || a.answer.kind === 'unknown') continue;
    if (a.answer.kind === 'acked') flag('conflict-taken', a, `took n=${a.n} for a token it had taken with n=${hit.n} (must be a 422)`);
    else if (a.answer.status !== 422) flag('conflict-not-422', a, `answered ${a.answer.status} to n=${a.n} for a token taken with n=${hit.n} (must be a 422)`);
  }
  return out;
}
