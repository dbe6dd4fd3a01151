/**
 * A circuit breaker for one node: after `failures` consecutive failed
 * attempts it opens and the node is skipped; `openMs` later it is half-open
 * and lets exactly one probe through; the probe's success closes it, its
 * failure opens it again for another `openMs`.
 */

export interface BreakerOptions {
  /** Consecutive failures that open the breaker (default 5). */
  readonly failures: number;
  /** How long it stays open before one probe is let through (default 5 s). */
  readonly openMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failures: 5, openMs: 5_000 };

export type BreakerState = 'closed' | 'open' | 'half-open';

export function checkBreaker(options: BreakerOptions): BreakerOptions {
  if (!(Number.isInteger(options.failures) && options.failures >= 1)) throw new RangeError(`breaker.failures must be an integer >= 1, got ${options.failures}`);
  if (!(Number.isFinite(options.openMs) && options.openMs >= 0)) throw new RangeError(`breaker.openMs must be a number >= 0, got ${options.openMs}`);
  return options;
}

export class CircuitBreaker {
  private consecutiveFailures = 0;
  /** When it last opened (ms of `now`); undefined while closed. */
  private openedAtMs: number | undefined;
  private probeInFlight = false;

  constructor(
    private readonly options: BreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.openedAtMs === undefined) return 'closed';
    return this.now() - this.openedAtMs >= this.options.openMs ? 'half-open' : 'open';
  }

  /** When it opened, to pick the longest-open node when every one is open; undefined while closed. */
  get openedAt(): number | undefined {
    return this.openedAtMs;
  }

  /** Whether an attempt may go to this node now; a true in half-open state takes the one probe slot. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  /** An attempt that ignores the state (every node open: the longest-open one is tried anyway). */
  forceAcquire(): void {
    if (this.openedAtMs !== undefined) this.probeInFlight = true;
  }

  onSuccess(): void {
    this.consecutiveFailures = 0;
    this.openedAtMs = undefined;
    this.probeInFlight = false;
  }

  onFailure(): void {
    this.consecutiveFailures += 1;
    // A failed probe (or any failure while open) starts a new open period.
    if (this.openedAtMs !== undefined || this.consecutiveFailures >= this.options.failures) this.openedAtMs = this.now();
    this.probeInFlight = false;
  }

  /** An attempt that ended saying nothing about the node's health (e.g. a quorum 504): frees the probe slot only. */
  onNeutral(): void {
    this.probeInFlight = false;
  }
}
