import type { FailStopStore } from './fail-stop-store.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';

export interface StoreRecoveryOptions {
  readonly store: FailStopStore;
  /** Make the reopened store hold what memory holds (drop a failed batch, checkpoint); throws if a write fails. */
  readonly resync: () => Promise<void>;
  readonly logger: Logger;
  readonly metrics: NodeMetrics | undefined;
  /** The first wait before a reopen, doubled after each failed try up to `maxRetryMs`. */
  readonly firstRetryMs?: number;
  readonly maxRetryMs?: number;
}

/**
 * Fail-stop for the hit path: from a failed store write until the store is
 * reopened and in step with memory again, `reason` says why hits are refused
 * (503, and /readyz 503). Meanwhile it retries the reopen with backoff, for
 * as long as it takes (a disk that stays full keeps the node not ready, which
 * is what a supervisor or a load balancer should see).
 */
export class StoreRecovery {
  private failure: Error | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StoreRecoveryOptions) {
    options.store.onFailure((error) => this.begin(error));
  }

  /** Why hits are refused right now, or undefined once the store is sound. */
  get reason(): string | undefined {
    if (this.failure === undefined) return undefined;
    return `the store failed a write (${this.failure.message}); it is being reopened`;
  }

  /** Resolves once the store is sound again (at once if it is) or recovery was stopped. */
  async settled(): Promise<void> {
    await this.running;
  }

  /** Stop retrying (the replica is closing). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.running;
  }

  private begin(error: Error): void {
    if (this.stopped || this.failure !== undefined) return;
    this.failure = error;
    this.options.metrics?.storeFailed.set(1);
    this.options.logger.error({ err: error }, 'store write failed: refusing hits until the store is reopened');
    this.running = this.retry().finally(() => (this.running = undefined));
  }

  private async retry(): Promise<void> {
    const { store, resync, logger, metrics } = this.options;
    const max = this.options.maxRetryMs ?? 10_000;
    let delay = this.options.firstRetryMs ?? 250;
    for (let attempt = 1; !this.stopped; attempt++) {
      await this.sleep(delay);
      if (this.stopped) return;
      try {
        await store.reopen();
        reportRecoveryProblems(store.recoveryProblems, logger, metrics);
        await resync();
        logger.warn({ attempt, was: this.failure?.message }, 'store reopened on a fresh log; taking hits again');
        metrics?.storeReopens.inc();
        metrics?.storeFailed.set(0);
        this.failure = undefined;
        return;
      } catch (error) {
        logger.error({ err: error, attempt, retryInMs: Math.min(delay * 2, max) }, 'store still failing; will try to reopen it again');
        delay = Math.min(delay * 2, max);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }
}

/** Say in hitmesh's own log and metrics what the store's recovery dropped (LevelDB says it only in its LOG file). */
export function reportRecoveryProblems(problems: readonly string[], logger: Logger, metrics: NodeMetrics | undefined): void {
  if (problems.length === 0) return;
  metrics?.storeRecoveryProblems.inc(problems.length);
  logger.error({ problems }, "the store's recovery dropped records it could not read: hits in them are lost here (peers may still hold them)");
}
