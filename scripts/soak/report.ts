/**
 * The report of one soak (SPEC §6): the settings and the rate chosen, every
 * hit's fate, the faults with the convergence of each one's closed range,
 * counts, memory and replication lag over time, and every check. Written as
 * JSON; the HTML page and the terminal summary are drawn from it alone.
 *
 * Times ending in `Ms` are ms since the run started (the calibration burst
 * comes first, then the load), unless named `epoch…`.
 */
import type { ClosedRangeResult, FaultSpan, NodeSummary, TimelineEvent, Violation } from '../partition/report.ts';
import type { Calibration } from './calibrate.ts';
import type { SoakFaultKind } from './faults.ts';
import type { MemoryJudgement } from './memory-check.ts';
import type { SoakSettings } from './options.ts';

export interface SoakFault extends FaultSpan {
  readonly kind: SoakFaultKind;
  /** [start second, heal second + 1 s), judged once closed, the load running; absent if the fault failed to apply. */
  readonly range?: ClosedRangeResult;
  /** From the heal (the node back, the link clean) until every node agreed on `range`; null if it did not. */
  readonly convergedMs: number | null;
  /** Why the fault could not be done or undone (a node that did not restart, say): the soak stops dealing faults. */
  readonly error?: string;
}

export interface SoakTimeline {
  readonly atMs: readonly number[];
  /** Hits acknowledged so far, cluster-wide. */
  readonly acked: readonly number[];
  /** Per node: lifetime count over every soak key, null where it did not answer. */
  readonly counts: Readonly<Record<string, readonly (number | null)[]>>;
  /** Per node: resident set size in bytes (GET /metrics). */
  readonly rssBytes: Readonly<Record<string, readonly (number | null)[]>>;
  /** Per node: the largest replicationLagMs over its peers (GET /cluster). */
  readonly lagMs: Readonly<Record<string, readonly (number | null)[]>>;
  /** Per node: the largest clock offset, either way, it measured to a peer (GET /cluster clockOffsetMs). */
  readonly clockOffsetMs: Readonly<Record<string, readonly (number | null)[]>>;
}

/** A marker hit on one node and how long until every running node counted it. */
export interface MarkerSample {
  readonly atMs: number;
  readonly node: string;
  /** null: it was not acknowledged, or not seen everywhere within the marker timeout. */
  readonly ms: number | null;
}

export interface SoakReport {
  readonly version: 1;
  readonly kind: 'soak';
  readonly settings: SoakSettings;
  readonly startedAt: string;
  /** Hits per second the load ran at, and where that figure came from. */
  readonly rate: number;
  readonly rateSource: 'flag' | 'calibration';
  /** Absent with --rate. */
  readonly calibration?: Calibration;
  readonly loadStartMs: number;
  readonly loadEndMs: number;
  /** Never killed or wiped, so one process lives through the whole run for the memory check. */
  readonly steadyNode: string;
  readonly nodes: readonly (NodeSummary & { readonly starts: number })[];
  readonly hits: { readonly sent: number; readonly acked: number; readonly failed: number; readonly unknown: number };
  /** Hits of the steady load not sent because their node already had too many in flight (it stalled). */
  readonly notSent: number;
  readonly faults: readonly SoakFault[];
  /** Fault kinds that were asked for and could not be dealt, and why. */
  readonly skipped: readonly { readonly kind: SoakFaultKind; readonly reason: string }[];
  readonly events: readonly TimelineEvent[];
  readonly sampleEveryMs: number;
  readonly timeline: SoakTimeline;
  readonly markers: readonly MarkerSample[];
  /** Judged with the load still running at the end: the run start to the last closed second. */
  readonly tailRange: ClosedRangeResult;
  /** From the load stop until every node answered the same for the lifetime, the whole run and every fault's range; null if not within the limit. */
  readonly settledMs: number | null;
  /** After the load stopped: the lifetime, the whole run, and every fault's range again. */
  readonly checks: { readonly total: number; readonly violations: readonly Violation[] };
  readonly memory: MemoryJudgement;
  readonly verdict: {
    /** No hit lost or counted twice, and every node answered, in any check (`missing` counts under `converged`). */
    readonly exact: boolean;
    /** Every closed range agreed on every node, and the lifetime after the stop. */
    readonly converged: boolean;
    readonly memoryFlat: boolean;
    /** Every fault was done and undone. */
    readonly faultsApplied: boolean;
  };
  readonly ok: boolean;
}
