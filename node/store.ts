import type { Slot } from '../crdt/slot.ts';
import type { TimedTier } from '../crdt/tiers.ts';

/** One entry of the write-ahead log: the increments of the local batch numbered `seq`, encoded. */
export interface LogRecord {
  readonly seq: number;
  readonly record: string;
}

/** One atomic write: slots with their new absolute counts, metadata, and at most one log record. */
export interface CommitBatch {
  readonly slots: readonly Slot[];
  readonly meta: ReadonlyMap<string, string>;
  readonly log?: LogRecord;
}

/**
 * Where a replica's slots live durably. A commit is atomic: after it resolves
 * every slot and meta entry in it survives a crash of the process; after it
 * rejects, none is visible. LevelDB is the real one; the in-memory one serves
 * unit tests of the layers above.
 */
export interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  readonly isOpen: boolean;
  getMeta(name: string): Promise<string | undefined>;
  commit(batch: CommitBatch): Promise<void>;
  /** Every slot, for rebuilding the in-memory state at start-up. */
  scanSlots(): AsyncIterable<Slot>;
  /** The log records, in seq order. */
  scanLog(): AsyncIterable<LogRecord>;
  /** Delete the log records up to and including `seq` (they are checkpointed). */
  truncateLog(throughSeq: number): Promise<void>;
  /** Delete `origin`'s buckets of `tier` that start before `start`. */
  deleteBefore(origin: string, tier: TimedTier, start: number): Promise<void>;
}

/** The store broke a promise it cannot keep (disk error, corruption). */
export class StoreError extends Error {
  readonly code = 'HITMESH_STORE';
}
