import type { ReplicaState } from '../crdt/replica-state.ts';
import type { Slot } from '../crdt/slot.ts';
import type { Tier } from '../crdt/tiers.ts';
import { dirtySlotsOf, type DirtySlots } from './dirty-slots.ts';
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

  constructor(
    private readonly deps: {
      readonly state: ReplicaState;
      readonly store: Store;
      readonly dirty: DirtySlots;
      readonly origin: string;
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
    const { state, store, dirty, origin, logger, metrics } = this.deps;
    if (dirty.size === 0) return;
    const through = this.deps.seq();
    const meta = new Map([
      [SEQ_META, String(through)],
      [AT_META, String(this.deps.lastAt())],
      [VV_META, JSON.stringify(this.deps.remoteVector())],
    ]);
    const taken = dirty.take();
    // Read the counts now, synchronously: they are exactly the state of batches up to `through`.
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
    for (const [other, keys] of taken.remote) {
      for (const [key, indexes] of keys) {
        for (const [index, seq] of indexes) {
          const tier = (index % 1000) as Tier;
          const start = index - tier;
          const count = state.get(other, key, tier, start);
          if (count > 0) slots.push({ origin: other, key, tier, start, count, seq });
        }
      }
    }
    const stopTimer = metrics?.checkpointSeconds.startTimer();
    try {
      for (let i = 0; i === 0 || i < slots.length; i += CHUNK_SLOTS) {
        const last = i + CHUNK_SLOTS >= slots.length;
        await store.commit({ slots: slots.slice(i, i + CHUNK_SLOTS), meta: last ? meta : new Map() });
      }
      await store.truncateLog(through);
      metrics?.checkpointSlots.observe(slots.length);
    } catch (error) {
      dirty.restore(taken);
      logger.error({ err: error, slots: slots.length }, 'checkpoint failed; will retry');
    } finally {
      stopTimer?.();
    }
  }
}
