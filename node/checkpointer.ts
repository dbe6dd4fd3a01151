import type { ReplicaState } from '../crdt/replica-state.ts';
import type { Slot } from '../crdt/slot.ts';
import type { Tier } from '../crdt/tiers.ts';
import { dirtySlotsOf, type DirtySet, type DirtySlots } from './dirty-slots.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { PeriodicTask } from './periodic-task.ts';
import type { Store } from './store.ts';

/** Most slots in one LevelDB batch of a checkpoint. */
const CHUNK_SLOTS = 2_000; // small enough that one chunk never stalls the event loop for long
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

  constructor(
    private readonly deps: {
      readonly state: ReplicaState;
      readonly store: Store;
      readonly dirty: DirtySlots;
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
    },
  ) {
    this.task = new PeriodicTask(() => this.checkpoint(), deps.intervalMs);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One checkpoint (or the one already running). Failures are logged and retried on the next run. */
  run(): Promise<void> {
    return this.task.run();
  }

  private async checkpoint(): Promise<void> {
    const { state, store, dirty, logger, metrics } = this.deps;
    const origin = this.deps.origin();
    if (dirty.size === 0) {
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
    // Own slots are read now, synchronously: they are exactly the state of batches up to `through` (replay relies on it).
    const slots: Slot[] = [];
    for (const [key, indexes] of dirtySlotsOf(taken)) {
      for (const [index, seq] of indexes) {
        const tier = (index % 1000) as Tier;
        const start = index - tier;
        const count = state.get(origin, key, tier, start);
        // 0: retention dropped the bucket since it changed; do not write it back.
        if (count > 0) slots.push({ origin, key, tier, start, count, seq });
      }
    }
    // Other origins' slots are read a chunk at a time, between writes: a big repair leaves millions, and a later
    // (higher) count than the one marked is as good, the vector written with the last chunk only vouches for less.
    const remote = remoteSlots(state, taken);
    const stopTimer = metrics?.checkpointSeconds.startTimer();
    let written = 0;
    try {
      let chunk = slots.splice(0, CHUNK_SLOTS);
      for (;;) {
        while (chunk.length < CHUNK_SLOTS) {
          const next = remote.next(); // own slots are all taken first: `slots` is empty once a chunk is short
          if (next.done === true) break;
          chunk.push(next.value);
        }
        const last = chunk.length < CHUNK_SLOTS;
        await store.commit({ slots: chunk, meta: last ? meta : new Map() });
        written += chunk.length;
        if (last) break;
        chunk = slots.splice(0, CHUNK_SLOTS);
      }
      await store.truncateLog(through);
      metrics?.checkpointSlots.observe(written);
      this.failed = false;
    } catch (error) {
      dirty.restore(taken);
      this.failed = true;
      logger.error({ err: error, slots: written }, 'checkpoint failed; will retry');
    } finally {
      stopTimer?.();
    }
  }
}

/** The remote slots a dirty set marked, with their current counts (0: expired since, skipped). */
function* remoteSlots(state: ReplicaState, taken: DirtySet): Generator<Slot> {
  for (const [other, keys] of taken.remote) {
    for (const [key, indexes] of keys) {
      for (const [index, seq] of indexes) {
        const tier = (index % 1000) as Tier;
        const start = index - tier;
        const count = state.get(other, key, tier, start);
        if (count > 0) yield { origin: other, key, tier, start, count, seq };
      }
    }
  }
}
