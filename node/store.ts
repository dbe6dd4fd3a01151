import type { Slot } from '../crdt/slot.ts';
import { Tier, type TimedTier } from '../crdt/tiers.ts';
import type { TokenChange } from '../gossip/replica-view.ts';
import type { Observation } from '../crdt/key-tokens.ts';

/** One increment of a log record: `n` hits of `key` in the second bucket starting at `second`. */
export type LogIncrement = readonly [key: string, second: number, n: number];

/** What a commit writes to the write-ahead log: the increments of the local batch numbered `seq`, encoded. */
export interface LogEntry {
  readonly seq: number;
  readonly record: string;
}

/** One write-ahead log record as read back, decoded (a record that does not decode is never yielded). */
export interface LogRecord {
  readonly seq: number;
  readonly increments: readonly LogIncrement[];
  /** The idempotency tokens the batch observed (absent: none). */
  readonly tokens?: readonly TokenChange[];
}

/** One origin's observation of an idempotency token, as stored. */
export interface StoredToken extends TokenChange {
  readonly origin: string;
}

/** A token observed more than once, with every observation of it: kept for good. */
export interface KeptToken {
  readonly key: string;
  readonly token: string;
  readonly observations: readonly Observation[];
}

/** One atomic write: slots with their new absolute counts, token observations, metadata, and at most one log record. */
export interface CommitBatch {
  readonly slots: readonly Slot[];
  /** Token observations to write, as one chunk (absent: none). */
  readonly tokens?: readonly StoredToken[];
  /** Tokens that proved a duplicate, written (again) whole. */
  readonly keptTokens?: readonly KeptToken[];
  readonly meta: ReadonlyMap<string, string>;
  readonly log?: LogEntry;
}

/** Where a slot sorts within its origin's tier: by start, then key. */
export interface SlotPosition {
  readonly start: number;
  readonly key: string;
}

/** What one slot holds: its count and the seq of the commit that last changed it. */
export interface StoredCount {
  readonly count: number;
  readonly seq: number;
}

/** A stored record that does not decode, skipped by a scan. `key` is the raw db key, at most 200 characters. */
export interface CorruptRecord {
  readonly kind: 'slot' | 'log' | 'meta' | 'token';
  readonly key: string;
  readonly reason: string;
}

export type OnCorrupt = (record: CorruptRecord) => void;

/** Per timed tier, the earliest bucket start a scan must return (the retention horizons). */
export type SkipBefore = Readonly<Record<TimedTier, number>>;

/** Whether a scan with `skipBefore` may leave out the bucket of `tier` starting at `start`. */
export function skippable(tier: Tier, start: number, skipBefore: SkipBefore | undefined): boolean {
  return skipBefore !== undefined && tier !== Tier.lifetime && start < skipBefore[tier];
}

/**
 * Where a replica's slots live durably. A commit is atomic: after it resolves
 * every slot and meta entry in it survives a crash of the process; after it
 * rejects, none is visible. LevelDB is the real one; the in-memory one serves
 * unit tests of the layers above.
 *
 * Scans never throw on a bad record: whatever a peer sent or a disk mangled,
 * the store still opens. A record that does not decode is skipped and passed
 * to `onCorrupt` (once per scan); a caller that does not pass one skips it
 * silently, so Replica.load must pass one to log and count it.
 */
export interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  readonly isOpen: boolean;
  getMeta(name: string): Promise<string | undefined>;
  commit(batch: CommitBatch): Promise<void>;
  /**
   * Every slot, in chunks, for rebuilding the in-memory state at start-up.
   * With `skipBefore`, slots of a timed tier starting before
   * `skipBefore[tier]` may be left out unread (expired ones: retention
   * deletes them, corrupt records among them included, without their being
   * reported).
   */
  scanSlots(onCorrupt?: OnCorrupt, skipBefore?: SkipBefore): AsyncIterable<readonly Slot[]>;
  /**
   * Every origin the slots held name, found by seeking from one to the next
   * (a few reads, not a scan): retention deletes by origin, and an origin
   * whose every bucket expired is held by no one in memory. A corrupt key's
   * origin part is listed as it is.
   */
  slotOrigins(): Promise<readonly string[]>;
  /**
   * One slot's count and seq, or undefined if it is absent. Synchronous: the
   * in-memory state reads buckets past its hot horizon through it from
   * synchronous code (sums, merges, repairs), and a point read of LevelDB's
   * block cache or the OS page cache takes microseconds. A stored value that
   * does not decode is passed to `onCorrupt` and reads as absent. A store
   * that is not open throws (LevelStore: StoreError).
   */
  readSlot(origin: string, tier: Tier, start: number, key: string, onCorrupt?: OnCorrupt): StoredCount | undefined;
  /**
   * The slots of `origin` in `tier` starting in [fromStart, toStart) whose
   * seq is past `afterSeq`, in db key order (start, then key), in chunks of
   * at most 1,000, never an empty one: a repair of an origin's old buckets
   * reads them from here, not from memory. The bounds are clamped to
   * [0, MAX_START], so -Infinity is from the first and Infinity to the last
   * (NaN is a RangeError). Corrupt records in the range are skipped and reported as by scanSlots;
   * a consumer that stops early releases what the scan holds. With `after`,
   * the scan resumes past that slot (a repair reads a page at a time, each
   * scan closed before the next, so a repair given up holds nothing open).
   */
  scanColdSlots(origin: string, tier: TimedTier, fromStart: number, toStart: number, afterSeq: number, onCorrupt?: OnCorrupt, after?: SlotPosition): AsyncIterable<readonly Slot[]>;
  /** Every token observation, chunked and kept. */
  scanTokens(onCorrupt?: OnCorrupt): AsyncIterable<StoredToken>;
  /** Delete at most `limit` chunks of token observations all made before `at` (kept tokens stay); resolves with how many went. */
  deleteTokensBefore(at: number, limit: number): Promise<number>;
  /** The log records, in seq order. */
  scanLog(onCorrupt?: OnCorrupt): AsyncIterable<LogRecord>;
  /** Delete the log records up to and including `seq` (they are checkpointed). */
  truncateLog(throughSeq: number): Promise<void>;
  /** Delete the log records after `seq`: a batch whose write failed may still have reached the disk, and it was never counted. */
  dropLogAfter(seq: number): Promise<void>;
  /** What the store's own recovery at the last open reported losing (LevelDB: dropped log bytes); empty if nothing. */
  readonly recoveryProblems?: readonly string[];
  /**
   * Delete `origin`'s buckets of `tier` that start before `start`, at most
   * `limit` of them (the oldest); resolves with how many went. Retention calls
   * it until fewer than `limit` go: each call is one small write, so hits are
   * never queued behind the deletion of a million expired buckets.
   */
  deleteBefore(origin: string, tier: TimedTier, start: number, limit: number): Promise<number>;
}

/** The store broke a promise it cannot keep (disk error, corruption). */
export class StoreError extends Error {
  readonly code = 'HITMESH_STORE';
}

/** A stored record is not one the store could have written; the message says what is wrong with it. */
export class CorruptRecordError extends Error {
  readonly code = 'HITMESH_CORRUPT_RECORD';
}

const MAX_REPORTED_KEY = 200;

/** `text` cut to at most `max` characters (an ellipsis marks the cut), never splitting a surrogate pair. */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Decode one raw entry for a scan: the decoded record, or undefined after
 * reporting it. Only CorruptRecordError is a bad record; anything else is a
 * bug and propagates.
 */
export function decodeOrReport<T>(kind: CorruptRecord['kind'], dbKey: string, dbValue: string, decode: (dbKey: string, dbValue: string) => T, onCorrupt: OnCorrupt | undefined): T | undefined {
  try {
    return decode(dbKey, dbValue);
  } catch (error) {
    if (!(error instanceof CorruptRecordError)) throw error;
    onCorrupt?.({ kind, key: shorten(dbKey, MAX_REPORTED_KEY), reason: error.message });
    return undefined;
  }
}
