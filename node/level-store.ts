import { Level } from 'level';
import type { Slot } from '../crdt/slot.ts';
import type { TimedTier } from '../crdt/tiers.ts';
import { LOG_RANGE, META_PREFIX, SLOT_RANGE, decodeSlot, logKey, logSeq, padStart, slotKey, slotValue, tierPrefix } from './slot-codec.ts';
import { StoreError, type CommitBatch, type LogRecord, type Store } from './store.ts';

/**
 * The durable store: LevelDB through the `level` package. A batch is written
 * to LevelDB's own log before it resolves, so it survives kill -9 of the
 * process (not a power cut: there is no fsync per batch, which is what makes
 * group commit cheap; see the README).
 */
export class LevelStore implements Store {
  private readonly db: Level<string, string>;

  constructor(readonly location: string) {
    this.db = new Level<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  async open(): Promise<void> {
    try {
      await this.db.open();
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
      const locked = (cause as { code?: string } | undefined)?.code === 'LEVEL_LOCKED';
      throw new StoreError(
        locked ? `the data directory ${this.location} is in use by another node` : `cannot open the data directory ${this.location}: ${cause?.message ?? String(error)}`,
        { cause: error },
      );
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async getMeta(name: string): Promise<string | undefined> {
    return this.db.get(META_PREFIX + name);
  }

  async commit(batch: CommitBatch): Promise<void> {
    const ops: { type: 'put'; key: string; value: string }[] = [];
    for (const s of batch.slots) ops.push({ type: 'put', key: slotKey(s.origin, s.tier, s.start, s.key), value: slotValue(s.count, s.seq) });
    for (const [name, value] of batch.meta) ops.push({ type: 'put', key: META_PREFIX + name, value });
    if (batch.log !== undefined) ops.push({ type: 'put', key: logKey(batch.log.seq), value: batch.log.record });
    await this.db.batch(ops);
  }

  async *scanLog(): AsyncIterable<LogRecord> {
    for await (const [key, record] of this.db.iterator(LOG_RANGE)) yield { seq: logSeq(key), record };
  }

  async truncateLog(throughSeq: number): Promise<void> {
    await this.db.clear({ gte: LOG_RANGE.gte, lte: logKey(throughSeq) });
  }

  async *scanSlots(): AsyncIterable<Slot> {
    // Read in chunks: one native call per thousand entries, not per entry (start-up reads every slot).
    const iterator = this.db.iterator(SLOT_RANGE);
    try {
      for (let entries = await iterator.nextv(1_000); entries.length > 0; entries = await iterator.nextv(1_000)) {
        for (const [key, value] of entries) yield decodeSlot(key, value);
      }
    } finally {
      await iterator.close();
    }
  }

  async deleteBefore(origin: string, tier: TimedTier, start: number): Promise<void> {
    const prefix = tierPrefix(origin, tier);
    await this.db.clear({ gte: prefix, lt: prefix + padStart(start) });
  }
}
