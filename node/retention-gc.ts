import type { ReplicaState } from '../crdt/replica-state.ts';
import { horizon, type Retention } from '../crdt/retention.ts';
import { TIMED_TIERS, Tier } from '../crdt/tiers.ts';
import { tokenDropLimit } from '../crdt/token-state.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { PeriodicTask } from './periodic-task.ts';
import type { SkipBefore, Store } from './store.ts';

/**
 * Retention runs this far behind the clock. A count plans its buckets once and
 * then reads them in slices (a long answer yields between them): a bucket
 * the plan counted must not vanish half-way through the answer. Reads plan
 * by the retention horizons themselves, so buckets kept a minute longer
 * change no answer.
 */
const READ_GRACE_MS = 60_000;

/**
 * Per timed tier, the start of the oldest bucket a pass at `now` keeps: what
 * start-up need not read, as the first pass would drop it at once.
 */
export function expiryHorizons(now: number, retention: Retention): SkipBefore {
  const at = now - READ_GRACE_MS;
  return {
    [Tier.second]: horizon(Tier.second, at, retention),
    [Tier.minute]: horizon(Tier.minute, at, retention),
    [Tier.hour]: horizon(Tier.hour, at, retention),
    [Tier.day]: horizon(Tier.day, at, retention),
  };
}

/** Buckets deleted per store write: each is a few milliseconds, so hit batches queued behind it wait little. */
const DELETE_CHUNK = 1_000;

/**
 * Deletes buckets past their tier's retention, in memory and in the store, on
 * a timer. Reads never depend on it: the window planner ignores expired
 * buckets whether or not they are gone yet.
 */
export class RetentionGc {
  private readonly task: PeriodicTask;

  constructor(
    private readonly deps: {
      readonly state: ReplicaState;
      readonly store: Store;
      readonly retention: Retention;
      /** The time to expire by; while `paused`, nothing is expired (see RetentionClock). */
      readonly clock: Clock & { readonly paused?: boolean };
      readonly intervalMs: number;
      readonly logger: Logger;
      readonly metrics: NodeMetrics | undefined;
      /** Minute, hour and day buckets that ended this long ago are evicted from memory (see ColdLine); undefined: none are. */
      readonly hotHorizonMs?: number;
      /** Whether memory may hold more of (origin, key) than the store: such buckets are not evicted yet. */
      readonly unwritten?: (key: string, origin: string) => boolean;
    },
  ) {
    this.task = new PeriodicTask(async () => {
      await this.runOnce();
    }, deps.intervalMs);
  }

  /** Run on the timer, with a first pass now (in the background: after a long stop, deleting what expired is many store writes). */
  start(): void {
    this.stopping = false;
    this.task.start();
    void this.task.run();
  }

  /** Stop the timer; a pass under way ends at its next store write (what it left is deleted by a later pass, after start). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.task.stop();
    await this.pass?.catch(() => undefined);
  }

  private stopping = false;

  private pass: Promise<number> | undefined;

  /**
   * One pass; returns the number of in-memory buckets dropped. Errors are
   * logged, never thrown. A pass spans many turns of the event loop: one
   * asked for while another runs (the timer's, and a test's expire()) starts
   * after it, so two never interleave their slices and store deletes.
   */
  runOnce(): Promise<number> {
    const before = this.pass;
    const pass = (async () => {
      if (before !== undefined) await before;
      return this.passOnce();
    })();
    this.pass = pass;
    void pass.finally(() => {
      if (this.pass === pass) this.pass = undefined;
    });
    return pass;
  }

  /** Evict what the hot horizon passed, in slices (started after the expiry slices, awaited at the end of the pass). */
  private async evictCold(): Promise<number> {
    const { state, hotHorizonMs, unwritten, clock } = this.deps;
    if (hotHorizonMs === undefined) return 0;
    let evicted = 0;
    for (const sofar of state.evictCold(clock.now() - hotHorizonMs, unwritten ?? (() => true))) {
      evicted = sofar;
      if (this.stopping) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return evicted;
  }

  private async passOnce(): Promise<number> {
    const { state, store, retention, clock, logger, metrics } = this.deps;
    if (clock.paused === true) return 0;
    const now = clock.now() - READ_GRACE_MS;
    try {
      let tokens = 0;
      let dropped = 0;
      // In slices, with the event loop between them: a pass over every key must not stall the requests.
      for (const sofar of state.expireInSlices(now, retention, () => void tokens++)) {
        dropped = sofar;
        if (this.stopping) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Chunks hold observations by time; those of tokens kept for good are in records of their own.
      const limit = tokenDropLimit(horizon(Tier.second, now, retention));
      while (!this.stopping && (await store.deleteTokensBefore(limit, DELETE_CHUNK)) === DELETE_CHUNK);
      // Every origin the store holds, not only memory's: one whose every bucket had expired at start-up was never loaded.
      for (const origin of await store.slotOrigins()) {
        for (const tier of TIMED_TIERS) {
          while (!this.stopping && (await store.deleteBefore(origin, tier, horizon(tier, now, retention), DELETE_CHUNK)) === DELETE_CHUNK);
        }
      }
      const evicted = this.evictCold();
      metrics?.expiredBuckets.inc(dropped);
      metrics?.keys.set(state.keyCount);
      if (dropped + tokens > 0) logger.debug({ dropped, tokens }, 'expired buckets and tokens deleted');
      const cold = await evicted;
      metrics?.evictedBuckets.inc(cold);
      if (cold > 0) logger.debug({ evicted: cold }, 'buckets past the hot horizon evicted from memory');
      return dropped;
    } catch (error) {
      logger.error({ err: error }, 'retention pass failed; will retry');
      return 0;
    }
  }
}
