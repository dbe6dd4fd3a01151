/**
 * The report of one partition experiment (SPEC §6): what was run, every hit's
 * fate, each node's count over time, the faults, the time from heal to
 * convergence and every broken guarantee. Written as JSON; the HTML page and
 * the terminal summary are drawn from this alone.
 *
 * Times ending in `Ms` are milliseconds since the load started, unless named
 * `epoch…`.
 */
import type { FreshSummary } from './fresh-probes.ts';
import type { RetryReport } from './retry-load.ts';

export type { FreshSummary } from './fresh-probes.ts';
export type { RetryReport } from './retry-load.ts';

export type ExperimentName = 'split' | 'isolate' | 'bridge' | 'flap' | 'slow' | 'fresh' | 'retry' | 'crash' | 'wipe' | 'chaos';

/** How a cut link fails: refuse connections, or accept and forward nothing. */
export type CutMode = 'cut' | 'blackhole';

export interface ExperimentSettings {
  readonly nodes: number;
  /** Seconds of load, faults included. */
  readonly durationS: number;
  /** Hits per second, spread over all nodes. */
  readonly rate: number;
  readonly keys: number;
  readonly seed: number;
  readonly cutMode: CutMode;
  /** How long to wait for convergence after the heal before calling it a failure. */
  readonly convergeLimitS: number;
  /** The load goes on through the heal and after it; convergence is judged on closed time ranges. */
  readonly continuous: boolean;
}

/** A fault that lasts: drawn as a shaded span. */
export interface FaultSpan {
  readonly label: string;
  readonly fromMs: number;
  /** When it was healed. */
  readonly toMs: number;
  /** The nodes it acts on (cut off, crashed, …). */
  readonly nodes: readonly string[];
}

/** An instant worth marking on the timeline: kill -9, a node ready again. The heal is `convergence.healAtMs`. */
export interface TimelineEvent {
  readonly atMs: number;
  readonly label: string;
  readonly node?: string;
}

export interface NodeSummary {
  readonly id: string;
  readonly url: string;
  /** Hits sent to this node and acknowledged (200). */
  readonly acked: number;
  /** Hits this node refused or could not have taken (connection refused, 4xx, 503). */
  readonly failed: number;
  /** Hits with no answer (timeout, connection reset after sending): maybe counted, maybe not. */
  readonly unknown: number;
  /** Its lifetime count over every experiment key at the end; null if it did not answer. */
  readonly finalCount: number | null;
}

/** Samples of every node's lifetime count (all keys summed) and the acked total. */
export interface Timeline {
  readonly atMs: readonly number[];
  /** Hits acknowledged so far, cluster-wide, at each sample. */
  readonly acked: readonly number[];
  /** Per node id: its count at each sample; null where it did not answer. */
  readonly counts: Readonly<Record<string, readonly (number | null)[]>>;
}

/** The window checked besides `all`: [epochFromMs, epochToMs), whole seconds. */
export interface CheckedWindow {
  readonly epochFromMs: number;
  readonly epochToMs: number;
  /** The same, as offsets from the load start. */
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * `missing`: below the acked bound on a closed range the nodes never agreed on while the load ran: those hits had
 * not arrived (a convergence failure, not yet a loss; the final checks after the stop say whether they ever came).
 * `disagree`: within the bounds, but not what the other nodes answer for the same key and range after the stop.
 */
export type ViolationKind = 'lost' | 'double-counted' | 'no-answer' | 'missing' | 'disagree';

/**
 * What a count covered: `all` the lifetime, `window` the whole seconds around the faults, `minute`, `hour` and
 * `day` the one bucket of that tier holding the fault start, `closed` a closed range read while the load ran.
 */
export type CheckWindow = 'all' | 'window' | 'minute' | 'hour' | 'day' | 'closed';

/**
 * One (node, key, window) whose count is outside [acked, acked + unknown], or not the other nodes' count. The key
 * may be a hit's identity key (`id-…`): then acked and unknown are 0 or 1, that one hit's bounds.
 */
export interface Violation {
  readonly kind: ViolationKind;
  readonly node: string;
  readonly key: string;
  readonly window: CheckWindow;
  readonly count: number | null;
  readonly acked: number;
  readonly unknown: number;
  /** The exact count the key's hits' ids add up to on that node, when every id was read and it differs. */
  readonly expected?: number;
}

/** A range the final check read on every node, besides the lifetime. */
export interface CheckedRange {
  readonly window: Exclude<CheckWindow, 'all' | 'closed'>;
  readonly epochFromMs: number;
  readonly epochToMs: number;
  /** The same, as offsets from the load start. */
  readonly fromMs: number;
  readonly toMs: number;
}

/** The identity check: each id's count, on every node and every range checked, against that one hit's fate. */
export interface IdChecks {
  /** Hits sent with an id. */
  readonly sent: number;
  /** Ids read and checked, and how many of those were acked, failed and unknown. */
  readonly checked: number;
  readonly acked: number;
  readonly failed: number;
  readonly unknown: number;
  /** Every id sent was checked (no sample), so each key's count had to equal the sum of its ids' counts too. */
  readonly complete: boolean;
  /** (node, id, range) violations found; `listed` of them are in `checks.violations`. */
  readonly violations: number;
  readonly listed: number;
}

export interface Convergence {
  readonly converged: boolean;
  /** From the heal until every node answered the same count for every key; null if it never did within the limit. */
  readonly ms: number | null;
  readonly healAtMs: number;
}

/** One closed range [epochFromMs, epochToMs) of whole seconds, read from every node while the load ran. */
export interface ClosedRangeResult {
  readonly label: string;
  readonly epochFromMs: number;
  readonly epochToMs: number;
  /** The same, as offsets from the load start. */
  readonly fromMs: number;
  readonly toMs: number;
  /** When every hit that can fall in it had been answered (it was first read then). */
  readonly closedAtMs: number;
  /** When every node first answered the same count for every key; null if they did not within the limit. */
  readonly agreedAtMs: number | null;
  /** Counts outside the ledger's bounds in the last answers read. */
  readonly violations: readonly Violation[];
}

/** What a `--continuous` run checked besides the usual final checks. */
export interface ContinuousChecks {
  /** The closed range convergence is measured on: [fault start, heal second + 1 s). */
  readonly convergeRange: CheckedWindow;
  /** The load went on this long after convergence before it stopped. */
  readonly tailMs: number;
  /** Closed ranges judged while the load ran: agreement and bounds. */
  readonly ranges: readonly ClosedRangeResult[];
  /** From the load stop until every node answered the same lifetime counts and the same over `window`; null if not within the limit. */
  readonly settledMs: number | null;
}

export interface ExperimentReport {
  readonly version: 1;
  readonly experiment: ExperimentName;
  /** One sentence: what was done to whom. */
  readonly description: string;
  readonly settings: ExperimentSettings;
  /** ISO time the load started. */
  readonly startedAt: string;
  readonly nodes: readonly NodeSummary[];
  readonly hits: { readonly sent: number; readonly acked: number; readonly failed: number; readonly unknown: number };
  readonly faults: readonly FaultSpan[];
  readonly events: readonly TimelineEvent[];
  /** When the load stopped (at the heal, or after the tail with --continuous). */
  readonly loadEndMs: number;
  readonly convergence: Convergence;
  readonly window: CheckedWindow;
  readonly timeline: Timeline;
  /** Present when the load ran through the heal (--continuous). */
  readonly continuous?: ContinuousChecks;
  /** The `fresh` experiment's read-after-write probes. */
  readonly fresh?: FreshSummary;
  /** The `retry` experiment's idempotent hits: what was sent and answered, and the check of their keys' counts. */
  readonly retry?: RetryReport;
  readonly checks: {
    /** (node, key, window) triples checked, experiment keys only (ids: see `ids`). */
    readonly total: number;
    readonly violations: readonly Violation[];
    /** The ranges read besides the lifetime: the checked window and the minute, hour and day of the fault start. */
    readonly ranges?: readonly CheckedRange[];
    readonly ids?: IdChecks;
  };
  /** No hit lost, none double counted, converged (with --continuous: on every closed range too). */
  readonly ok: boolean;
}
