import type { Slot } from '../crdt/slot.ts';
import type { Tier, TimedTier } from '../crdt/tiers.ts';
import { StoreError, type CommitBatch, type SkipBefore, type LogRecord, type OnCorrupt, type SlotPosition, type Store, type StoredCount, type StoredToken } from './store.ts';

/** The store failed a write and takes none until it is reopened; the message says why. */
export class StoreFailedError extends StoreError {}

/**
 * A store that stops at its first failed write. LevelDB goes on appending to
 * its log after a write that failed half-way (a disk-full spell leaves a
 * torn record), and its recovery at the next open drops every record after
 * the tear: writes it acknowledged after the failure would be lost to the
 * next kill -9. So here writes run one at a time, and once one fails every
 * later write is refused until `reopen` has closed the store and opened it on
 * a fresh log (LevelDB recovers what precedes the tear and starts a new log
 * file at open). Writes are few (one per batch of hits, a few per
 * checkpoint), so running them one at a time costs little: LevelDB itself
 * applies them one writer at a time.
 */
export class FailStopStore implements Store {
  private failure_: Error | undefined;
  /** The last write queued: every write starts after it settles. */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly failureListeners: ((error: Error) => void)[] = [];

  constructor(readonly inner: Store) {}

  /** The write error that stopped the store, until a reopen succeeds. */
  get failure(): Error | undefined {
    return this.failure_;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  /** Called once per failure, when the first write fails. */
  onFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener);
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    await this.inner.close();
  }

  /**
   * Close the store once the writes under way have settled, and open it
   * again: on a fresh log, with what was durable before the failure. Writes
   * are taken again once it is open. Throws if it cannot be opened (the store
   * stays failed; try again later).
   */
  async reopen(): Promise<void> {
    await this.tail.catch(() => undefined);
    if (this.inner.isOpen) await this.inner.close().catch(() => undefined);
    await this.inner.open();
    this.failure_ = undefined;
  }

  getMeta(name: string): Promise<string | undefined> {
    return this.inner.getMeta(name);
  }

  scanSlots(onCorrupt?: OnCorrupt, skipBefore?: SkipBefore): AsyncIterable<readonly Slot[]> {
    return this.inner.scanSlots(onCorrupt, skipBefore);
  }

  readSlot(origin: string, tier: Tier, start: number, key: string, onCorrupt?: OnCorrupt): StoredCount | undefined {
    return this.inner.readSlot(origin, tier, start, key, onCorrupt);
  }

  scanColdSlots(origin: string, tier: TimedTier, fromStart: number, toStart: number, afterSeq: number, onCorrupt?: OnCorrupt, after?: SlotPosition): AsyncIterable<readonly Slot[]> {
    return this.inner.scanColdSlots(origin, tier, fromStart, toStart, afterSeq, onCorrupt, after);
  }

  slotOrigins(): Promise<readonly string[]> {
    return this.inner.slotOrigins();
  }

  scanTokens(onCorrupt?: OnCorrupt): AsyncIterable<StoredToken> {
    return this.inner.scanTokens(onCorrupt);
  }

  deleteTokensBefore(at: number, limit: number): Promise<number> {
    return this.write(() => this.inner.deleteTokensBefore(at, limit));
  }

  scanLog(onCorrupt?: OnCorrupt): AsyncIterable<LogRecord> {
    return this.inner.scanLog(onCorrupt);
  }

  get recoveryProblems(): readonly string[] {
    return this.inner.recoveryProblems ?? [];
  }

  commit(batch: CommitBatch): Promise<void> {
    return this.write(() => this.inner.commit(batch));
  }

  truncateLog(throughSeq: number): Promise<void> {
    return this.write(() => this.inner.truncateLog(throughSeq));
  }

  dropLogAfter(seq: number): Promise<void> {
    return this.write(() => this.inner.dropLogAfter(seq));
  }

  deleteBefore(origin: string, tier: TimedTier, start: number, limit: number): Promise<number> {
    return this.write(() => this.inner.deleteBefore(origin, tier, start, limit));
  }

  private write<T>(op: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const failure = this.failure_;
      if (failure !== undefined) throw new StoreFailedError(`the store stopped after a failed write (${failure.message}) and takes no writes until it is reopened`);
      try {
        return await op();
      } catch (error) {
        const failed = error instanceof Error ? error : new Error(String(error));
        if (this.failure_ === undefined && this.inner.isOpen) {
          this.failure_ = failed;
          for (const listener of this.failureListeners) listener(failed);
        }
        throw error;
      }
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
