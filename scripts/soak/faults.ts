/**
 * The soak's faults, one at a time: which kind comes next (a seeded deck),
 * what exactly it does (a plan: sides, victim, how long, how far the clock
 * moves), and doing it, holding it and undoing it.
 *
 * Kinds are dealt in rounds, every kind once per round in a seeded order, so
 * a short soak still gets each kind and a long one gets them evenly. The
 * steady node is never killed or wiped: the memory check needs one process
 * that lives through the whole run.
 */
import { SLOW } from '../partition/experiments.ts';
import type { SpanHandle } from '../partition/experiments.ts';
import type { SlowLink } from '../partition/proxied-cluster.ts';
import type { CutMode } from '../partition/report.ts';
import { pick, shuffled } from '../partition/seeded.ts';

export const FAULT_KINDS = ['cut', 'blackhole', 'slow', 'kill', 'wipe', 'skew'] as const;
export type SoakFaultKind = (typeof FAULT_KINDS)[number];

/** How long a fault is held: "a few seconds". */
export const HOLD_MS = { min: 2_000, max: 5_000 } as const;
/** A skewed clock runs this far ahead (never behind: a node must not stamp a hit before it was sent, see closed-ranges.ts). */
export const SKEW_MS = { min: 1_000, max: 3_000 } as const;

export type FaultPlan =
  | { readonly kind: 'cut' | 'blackhole' | 'slow'; readonly sides: readonly [readonly string[], readonly string[]]; readonly holdMs: number }
  | { readonly kind: 'kill' | 'wipe'; readonly victim: string; readonly holdMs: number }
  | { readonly kind: 'skew'; readonly victim: string; readonly holdMs: number; readonly offsetMs: number };

/** Deals kinds in seeded rounds (each kind once per round). */
export class FaultDeck {
  private hand: SoakFaultKind[] = [];

  constructor(
    private readonly kinds: readonly SoakFaultKind[],
    private readonly random: () => number,
  ) {
    if (kinds.length === 0) throw new Error('no fault kinds to deal');
  }

  next(): SoakFaultKind {
    if (this.hand.length === 0) this.hand = shuffled(this.kinds, this.random);
    const kind = this.hand.shift();
    if (kind === undefined) throw new Error('empty deck');
    return kind;
  }
}

/** What a fault of `kind` does this time. `ids` are every node, `steady` the one never killed or wiped. */
export function planFault(kind: SoakFaultKind, ids: readonly string[], steady: string, random: () => number): FaultPlan {
  const holdMs = HOLD_MS.min + Math.floor(random() * (HOLD_MS.max - HOLD_MS.min));
  if (kind === 'cut' || kind === 'blackhole' || kind === 'slow') {
    // One node isolated or a random split, as chaos does: both sides keep their clients.
    const order = shuffled(ids, random);
    const cutAt = 1 + Math.floor(random() * (order.length - 1));
    return { kind, sides: [order.slice(0, cutAt), order.slice(cutAt)], holdMs };
  }
  if (kind === 'skew') {
    return { kind, victim: pick(ids, random), holdMs, offsetMs: SKEW_MS.min + Math.floor(random() * (SKEW_MS.max - SKEW_MS.min)) };
  }
  const victims = ids.filter((id) => id !== steady);
  return { kind, victim: pick(victims.length > 0 ? victims : ids, random), holdMs };
}

const group = (ids: readonly string[]): string => `{${[...ids].sort().join(',')}}`;

export function faultLabel(plan: FaultPlan): string {
  switch (plan.kind) {
    case 'cut':
      return `cut ${group(plan.sides[0])} | ${group(plan.sides[1])}`;
    case 'blackhole':
      return `black-holed ${group(plan.sides[0])} | ${group(plan.sides[1])}`;
    case 'slow':
      return `slow ${group(plan.sides[0])} | ${group(plan.sides[1])}: +${SLOW.delayMs} ms, ${SLOW.bytesPerSecond} B/s`;
    case 'kill':
      return `kill -9 ${plan.victim}, restart on its data`;
    case 'wipe':
      return `${plan.victim} drained, wiped, restarted empty`;
    case 'skew':
      return `${plan.victim} clock +${plan.offsetMs} ms`;
  }
}

export function faultNodes(plan: FaultPlan): readonly string[] {
  return 'sides' in plan ? [...plan.sides[0], ...plan.sides[1]] : [plan.victim];
}

/** What applying a fault needs of the cluster, the load and the timeline. */
export interface FaultTarget {
  cut(a: readonly string[], b: readonly string[], mode: CutMode): void;
  slow(a: readonly string[], b: readonly string[], link: SlowLink): void;
  healAll(): void;
  kill(id: string): Promise<void>;
  /** kill -9 and delete its data directory. */
  wipe(id: string): Promise<void>;
  /** Start it again on its data dir and wait until it is ready. */
  restart(id: string): Promise<void>;
  setClockOffset(id: string, ms: number): Promise<void>;
  /** Take `id` out of the load and wait for its answers in flight. */
  pauseLoad(id: string): Promise<void>;
  resumeLoad(id: string): void;
  waitReplicated(id: string): Promise<void>;
  now(): number;
  until(ms: number): Promise<void>;
  span(label: string, nodes: readonly string[]): SpanHandle;
  event(label: string, node?: string): void;
}

/** Do `plan`, hold it, undo it. Resolves once the cluster is whole again (links healed, the node back, its clock true). */
export async function applyFault(plan: FaultPlan, t: FaultTarget): Promise<void> {
  const span = t.span(faultLabel(plan), faultNodes(plan));
  const holdUntil = t.now() + plan.holdMs;
  try {
    switch (plan.kind) {
      case 'cut':
      case 'blackhole':
        t.cut(plan.sides[0], plan.sides[1], plan.kind);
        await t.until(holdUntil);
        t.healAll();
        break;
      case 'slow':
        t.slow(plan.sides[0], plan.sides[1], SLOW);
        await t.until(holdUntil);
        t.healAll();
        break;
      case 'kill':
        t.event(`kill -9 ${plan.victim}`, plan.victim);
        await t.kill(plan.victim);
        await t.until(holdUntil);
        await t.restart(plan.victim);
        t.event(`${plan.victim} ready`, plan.victim);
        break;
      case 'wipe':
        // A hit acknowledged by one node lives on that node's disk until replicated: losing the disk earlier would lose it.
        await t.pauseLoad(plan.victim);
        try {
          await t.waitReplicated(plan.victim);
          t.event(`${plan.victim} disk lost`, plan.victim);
          await t.wipe(plan.victim);
          await t.until(t.now() + plan.holdMs);
          await t.restart(plan.victim);
          t.event(`${plan.victim} ready (empty)`, plan.victim);
        } finally {
          t.resumeLoad(plan.victim);
        }
        break;
      case 'skew':
        await t.setClockOffset(plan.victim, plan.offsetMs);
        t.event(`${plan.victim} clock +${plan.offsetMs} ms`, plan.victim);
        await t.until(holdUntil);
        await t.setClockOffset(plan.victim, 0);
        t.event(`${plan.victim} clock true`, plan.victim);
        break;
    }
  } finally {
    span.end();
  }
}
