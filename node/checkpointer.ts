import type { ReplicaState } from '../crdt/replica-state.ts';
import type { Slot } from '../crdt/slot.ts';
import type { Tier } from '../crdt/tiers.ts';
import { slotIndexesOf, type DirtySet, type DirtySlots } from './dirty-slots.ts';
import type { DirtyTokens } from './dirty-tokens.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { PeriodicTask } from './periodic-task.ts';
import type { KeptToken, Store } from './store.ts';

/**
 * Most slots in one LevelDB batch of a checkpoint: few enough that a chunk
 * never stalls the event loop for long. With 2,000 a GET /top on the bench's
 * server core waited 10-34 ms behind each chunk (encoding it, and LevelDB's
 * write thread on the same core); with 500, under 10.
 */
const CHUNK_SLOTS = 500;
export const SEQ_META = 'seq';
/** This origin's last hit stamp, and the version vector of the other origins, as of the checkpoint. */
export const AT_META = 'at';
export const VV_META = 'vv';

/**
 * Turns the write-ahead log into slots: writes the absolute count and last
 * seq of every slot changed since the last checkpoint, then deletes the log
 * records they cover. Hot keys collapse here: a thousand batches that touched
 * one key become one slot write. Replay after a crash applies a record only
 * to slots whose stored seq is older, so a checkpoint cut short by a crash
 * (written in chunks) never counts a hit twice.
 */
export class Checkpointer {
  private readonly task: PeriodicTask;
  /** Did the last run fail (its changes are marked again, for the next run)? */
  failed = false;
  /** While above 0, runs do nothing (see `paused`). */
  private pauses = 0;

  constructor(
    private readonly deps: {
      readonly state: ReplicaState;
      readonly store: Store;
      readonly dirty: DirtySlots;
      readonly dirtyTokens: DirtyTokens;
      /** This replica's own origin (it changes when the replica starts a new incarnation). */
      readonly origin: () => string;
      /** The seq every applied batch is at or below, and the last hit stamp. */
      readonly seq: () => number;
      readonly lastAt: () => number;
      /** The version vector of other origins: persisted with the slots it vouches for. */
      readonly remoteVector: () => Record<string, readonly [number, number]>;
      readonly intervalMs: number;
      readonly logger: Logger;
      readonly metrics: NodeMetrics | undefined;
      /** Hears of every chunk of slots once it is written (the cold cache drops what it held of them). */
      readonly written?: (slots: readonly Slot[]) => void;
    },
  ) {
    this.task = new PeriodicTask(() => (this.pauses > 0 ? Promise.resolve() : this.checkpoint()), deps.intervalMs);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /**
   * Run `fn` with no other checkpoint under way or starting until it ends;
   * `fn` gets the one way to checkpoint meanwhile. A new incarnation needs
   * this: seqs start over at 1 and log records are keyed by seq, so a
   * checkpoint that began before the new identity was written and ended after
   * it would truncate the new incarnation's log by the old seq (and write the
   * old seq as the new identity's checkpoint), losing acknowledged hits.
   */
  async paused<T>(fn: (checkpoint: () => Promise<void>) => Promise<T>): Promise<T> {
    this.pauses++;
    try {
      await this.task.idle();
      return await fn(() => this.checkpoint());
    } finally {
      this.pauses--;
    }
  }

  /**
   * Whether what memory holds of `origin`'s buckets of `key` may not all be
   * in the store: marked since the last checkpoint, or taken by the one under
   * way (a failed one marks them again). Eviction keeps such buckets.
   */
  holdsUnwritten(origin: string, key: string): boolean {
    const taken = this.taken;
    if (this.deps.dirty.has(origin, key)) return true;
    return taken !== undefined && (taken.local.has(key) || taken.remote.get(origin)?.has(key) === true);
  }

  /** What the checkpoint under way took (undefined: none is). */
  private taken: DirtySet | undefined;

  /** One checkpoint (or the one already running). Failures are logged and retried on the next run. */
  run(): Promise<void> {
    return this.task.run();
  }

  private async checkpoint(): Promise<void> {
    const { state, store, dirty, dirtyTokens, logger, metrics } = this.deps;
    const origin = this.deps.origin();
    if (dirty.size === 0 && dirtyTokens.size === 0) {
      this.failed = false;
      return;
    }
    const through = this.deps.seq();
    const meta = new Map([
      [SEQ_META, String(through)],
      [AT_META, String(this.deps.lastAt())],
      [VV_META, JSON.stringify(this.deps.remoteVector())],
    ]);
    const taken = dirty.take();
    this.taken = taken;
    const tokens = dirtyTokens.take();
    // Slots are read a chunk at a time, between writes (a burst can leave a million). An own slot is written with
    // its count and its key's last seq read in the same synchronous step, so replay after a crash applies exactly
    // the records that count does not hold yet: a record that touched the slot has a seq at most the key's last
    // seq if its hits are in the count, and above it if they are not. Another origin's later (higher) count is as
    // good; the vector written with the last chunk only vouches for less.
    const slots = allSlots(state, origin, taken);
    const stopTimer = metrics?.checkpointSeconds.startTimer();
    let written = 0;
    try {
      // Tokens first: the log records they came in are truncated below, and the vector goes with the last slots.
      // One retention dropped since it was marked is not written back (its record would outlive it until the next start).
      const dropped = state.tokens.droppedBefore;
      const held = tokens.tokens.filter((t) => t.at >= dropped || state.tokens.holds(t.key, t.token, t.origin));
      for (let i = 0; i < held.length; i += CHUNK_SLOTS) await store.commit({ slots: [], tokens: held.slice(i, i + CHUNK_SLOTS), meta: new Map() });
      const kept: KeptToken[] = [];
      for (const { key, token } of tokens.kept) {
        const observations = state.tokens.keptOf(key, token);
        if (observations !== undefined) kept.push({ key, token, observations });
      }
      for (let i = 0; i < kept.length; i += CHUNK_SLOTS) await store.commit({ slots: [], keptTokens: kept.slice(i, i + CHUNK_SLOTS), meta: new Map() });
      for (;;) {
        const chunk: Slot[] = [];
        for (let next = slots.next(); next.done !== true; next = slots.next()) {
          chunk.push(next.value);
          if (chunk.length >= CHUNK_SLOTS) break;
        }
        const last = chunk.length < CHUNK_SLOTS;
        await store.commit({ slots: chunk, meta: last ? meta : new Map() });
        this.deps.written?.(chunk);
        written += chunk.length;
        if (last) break;
      }
      await store.truncateLog(through);
      metrics?.checkpointSlots.observe(written);
      this.failed = false;
    } catch (error) {
      dirty.restore(taken);
      dirtyTokens.restore(tokens);
      this.failed = true;
      logger.error({ err: error, slots: written }, 'checkpoint failed; will retry');
    } finally {
      this.taken = undefined;
      stopTimer?.();
    }
  }
}

/** Every slot a dirty set marked, own ones first, each read with its current count when it is reached (0: expired since, skipped). */
function* allSlots(state: ReplicaState, origin: string, taken: DirtySet): Generator<Slot> {
  for (const [key, seconds] of taken.local) {
    for (const index of slotIndexesOf(seconds)) {
      const tier = (index % 1000) as Tier;
      const start = index - tier;
      const count = state.get(origin, key, tier, start);
      if (count > 0) yield { origin, key, tier, start, count, seq: state.lastSeq(origin, key) };
    }
  }
  for (const [other, keys] of taken.remote) {
    for (const [key, mark] of keys) {
      // The changed slots, and the few between them in each tier.
      for (const [tier, start, count] of state.bucketsIn(other, key, mark.spans)) yield { origin: other, key, tier, start, count, seq: mark.seq };
    }
  }
}
