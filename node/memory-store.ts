import type { Slot } from '../crdt/slot.ts';
import type { TimedTier } from '../crdt/tiers.ts';
import { slotKey } from './slot-codec.ts';
import type { CommitBatch, LogRecord, Store } from './store.ts';

/** A Store in memory, for unit tests of the layers above the store. `failNext` makes the next commit fail. */
export class MemoryStore implements Store {
  private readonly slots = new Map<string, Slot>();
  private readonly meta = new Map<string, string>();
  private readonly log = new Map<number, string>();
  private open_ = false;
  failNext: Error | undefined;

  get isOpen(): boolean {
    return this.open_;
  }

  open(): Promise<void> {
    this.open_ = true;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.open_ = false;
    return Promise.resolve();
  }

  getMeta(name: string): Promise<string | undefined> {
    this.assertOpen();
    return Promise.resolve(this.meta.get(name));
  }

  async commit(batch: CommitBatch): Promise<void> {
    this.assertOpen();
    await Promise.resolve(); // a write is never synchronous
    const failure = this.failNext;
    if (failure !== undefined) {
      this.failNext = undefined;
      throw failure;
    }
    for (const s of batch.slots) this.slots.set(slotKey(s.origin, s.tier, s.start, s.key), { ...s });
    for (const [name, value] of batch.meta) this.meta.set(name, value);
    if (batch.log !== undefined) this.log.set(batch.log.seq, batch.log.record);
  }

  async *scanLog(): AsyncIterable<LogRecord> {
    this.assertOpen();
    const seqs = [...this.log.keys()].sort((a, b) => a - b);
    for (const seq of seqs) yield { seq, record: this.log.get(seq) ?? '' };
    await Promise.resolve();
  }

  truncateLog(throughSeq: number): Promise<void> {
    this.assertOpen();
    for (const seq of this.log.keys()) if (seq <= throughSeq) this.log.delete(seq);
    return Promise.resolve();
  }

  async *scanSlots(): AsyncIterable<Slot> {
    this.assertOpen();
    const keys = [...this.slots.keys()].sort();
    for (const key of keys) {
      const slot = this.slots.get(key);
      if (slot !== undefined) yield { ...slot };
    }
    await Promise.resolve();
  }

  deleteBefore(origin: string, tier: TimedTier, start: number): Promise<void> {
    this.assertOpen();
    for (const [key, slot] of this.slots) {
      if (slot.origin === origin && slot.tier === tier && slot.start < start) this.slots.delete(key);
    }
    return Promise.resolve();
  }

  private assertOpen(): void {
    if (!this.open_) throw new Error('store is not open');
  }
}
