import { Level } from 'level';
import type { Slot } from '../crdt/slot.ts';
import type { Tier, TimedTier } from '../crdt/tiers.ts';
import { decodeLogEntry } from './log-record.ts';
import { LOG_RANGE, META_PREFIX, SLOT_RANGE, SlotDecoder, decodeSlotValue, logKey, pastOrigin, slotKeyOrigin, padStart, slotKey, slotValue, startRange, tierPrefix } from './slot-codec.ts';
import { KEPT_TOKEN_RANGE, TOKEN_CHUNK_RANGE, decodeKeptToken, decodeTokenChunk, keptTokenEntry, tokenChunkEntry, tokenChunkLimit } from './token-codec.ts';
import { recoveryProblems } from './leveldb-info-log.ts';
import { StoreError, decodeOrReport, skippable, type CommitBatch, type SkipBefore, type LogRecord, type OnCorrupt, type Store, type SlotPosition, type StoredCount, type StoredToken } from './store.ts';

/** A point read knows its key: only the value is decoded. */
const valueOnly = (_dbKey: string, dbValue: string): StoredCount => decodeSlotValue(dbValue);

/** Entries per native read of a scan. */
const SCAN_CHUNK = 1_000;

export interface LevelStoreOptions {
  /** fsync every commit before it resolves: an acknowledged hit survives a power cut, not only kill -9. */
  readonly fsync?: boolean;
}

/**
 * The durable store: LevelDB through the `level` package. A batch is written
 * to LevelDB's own log before it resolves, so it survives kill -9 of the
 * process. A power cut is survived only with `fsync`: without it there is no
 * fsync per batch, which is what makes group commit cheap (see the README).
 */
export class LevelStore implements Store {
  readonly fsync: boolean;
  recoveryProblems: readonly string[] = [];
  private readonly db: Level<string, string>;
  /** Per range being deleted in chunks, the last key deleted (one entry per origin and tier at most, dropped when the range is done). */
  private readonly deletedUpTo = new Map<string, string>();

  constructor(
    readonly location: string,
    options: LevelStoreOptions = {},
  ) {
    this.fsync = options.fsync ?? false;
    this.db = new Level<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  async open(): Promise<void> {
    try {
      await this.db.open();
      this.recoveryProblems = await recoveryProblems(this.location);
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

  /**
   * With `fsync`, every commit is synced, checkpoints included. A later synced
   * write does not make earlier unsynced ones durable: LevelDB's log is
   * append-only within one file, but when the memtable fills it switches to a
   * new log file and closes the old one without fsync (db_impl.cc
   * MakeRoomForWrite, LevelDB 1.20 as bundled by classic-level 3; google/leveldb
   * issue #193). An unsynced checkpoint could then be lost while the
   * truncation after it survives, dropping acknowledged hits. A checkpoint is
   * a few writes every 5 s, so syncing it costs nothing that matters.
   * truncateLog and deleteBefore stay unsynced: losing a delete only means the
   * records are replayed (idempotent by seq) or the buckets expired again, and
   * what a truncation drops is already durable in the synced checkpoint.
   */
  async commit(batch: CommitBatch): Promise<void> {
    const ops: { type: 'put'; key: string; value: string }[] = [];
    for (const s of batch.slots) ops.push({ type: 'put', key: slotKey(s.origin, s.tier, s.start, s.key), value: slotValue(s.count, s.seq) });
    if (batch.tokens !== undefined && batch.tokens.length > 0) ops.push({ type: 'put', ...tokenChunkEntry(batch.tokens) });
    for (const kept of batch.keptTokens ?? []) ops.push({ type: 'put', ...keptTokenEntry(kept) });
    for (const [name, value] of batch.meta) ops.push({ type: 'put', key: META_PREFIX + name, value });
    if (batch.log !== undefined) ops.push({ type: 'put', key: logKey(batch.log.seq), value: batch.log.record });
    await this.db.batch(ops, { sync: this.fsync });
  }

  async *scanLog(onCorrupt?: OnCorrupt): AsyncIterable<LogRecord> {
    for await (const [key, value] of this.entries(LOG_RANGE)) {
      const record = decodeOrReport('log', key, value, decodeLogEntry, onCorrupt);
      if (record !== undefined) yield record;
    }
  }

  async truncateLog(throughSeq: number): Promise<void> {
    await this.db.clear({ gte: LOG_RANGE.gte, lte: logKey(throughSeq) });
  }

  async dropLogAfter(seq: number): Promise<void> {
    // A batch of deletes rather than clear(): it can be synced like a commit. There is at most one such record.
    const keys = await this.db.keys({ gt: logKey(seq), lt: LOG_RANGE.lt }).all();
    if (keys.length > 0) await this.db.batch(keys.map((key) => ({ type: 'del' as const, key })), { sync: this.fsync });
  }

  /**
   * Chunks of SCAN_CHUNK entries, the next one read (in LevelDB's thread)
   * while this one is decoded. Keys sort by origin, tier and start, so the
   * first skippable slot of a tier is followed by the rest of its skippable
   * ones: the scan seeks past them all, unread.
   */
  async *scanSlots(onCorrupt?: OnCorrupt, skipBefore?: SkipBefore): AsyncIterable<readonly Slot[]> {
    const iterator = this.db.iterator<string, string>({ ...SLOT_RANGE });
    const decoder = new SlotDecoder();
    let next = iterator.nextv(SCAN_CHUNK);
    try {
      for (let entries = await next; entries.length > 0; entries = await next) {
        next = iterator.nextv(SCAN_CHUNK);
        const slots: Slot[] = [];
        let seekTo: string | undefined;
        for (const [key, value] of entries) {
          const slot = decodeOrReport('slot', key, value, decoder.decode, onCorrupt);
          if (slot === undefined) continue;
          if (skippable(slot.tier, slot.start, skipBefore)) {
            seekTo = tierPrefix(slot.origin, slot.tier) + padStart(skipBefore?.[slot.tier as TimedTier] ?? 0);
            break;
          }
          slots.push(slot);
        }
        if (seekTo !== undefined) {
          await next; // the read ahead is dropped: it may lie in the skipped range
          iterator.seek(seekTo);
          next = iterator.nextv(SCAN_CHUNK);
        }
        if (slots.length > 0) yield slots;
      }
    } finally {
      await next.catch(() => undefined);
      await iterator.close();
    }
  }

  /** One getSync: from LevelDB's block cache or the OS page cache, microseconds, in this thread. */
  readSlot(origin: string, tier: Tier, start: number, key: string, onCorrupt?: OnCorrupt): StoredCount | undefined {
    const dbKey = slotKey(origin, tier, start, key);
    let value: string | undefined;
    try {
      value = this.db.getSync(dbKey);
    } catch (error) {
      const notOpen = (error as { code?: unknown } | undefined)?.code === 'LEVEL_DATABASE_NOT_OPEN';
      const why = notOpen ? `the store is ${this.db.status}, not open` : error instanceof Error ? error.message : String(error);
      throw new StoreError(`cannot read the slot of ${origin} at tier ${tier}, start ${start}: ${why}`, { cause: error });
    }
    return value === undefined ? undefined : decodeOrReport('slot', dbKey, value, valueOnly, onCorrupt);
  }

  /** One iterator over the range, read like scanSlots: the next chunk is read while this one is decoded. */
  async *scanColdSlots(origin: string, tier: TimedTier, fromStart: number, toStart: number, afterSeq: number, onCorrupt?: OnCorrupt, after?: SlotPosition): AsyncIterable<readonly Slot[]> {
    const range = startRange(origin, tier, fromStart, toStart);
    if (range === undefined) return;
    const past = after === undefined ? undefined : slotKey(origin, tier, after.start, after.key);
    if (past !== undefined && past >= range.lt) return;
    const iterator = this.db.iterator<string, string>(past !== undefined && past >= range.gte ? { gt: past, lt: range.lt } : { ...range });
    const decoder = new SlotDecoder();
    let next = iterator.nextv(SCAN_CHUNK);
    try {
      for (let entries = await next; entries.length > 0; entries = await next) {
        next = iterator.nextv(SCAN_CHUNK);
        const slots: Slot[] = [];
        for (const [key, value] of entries) {
          const slot = decodeOrReport('slot', key, value, decoder.decode, onCorrupt);
          if (slot !== undefined && slot.seq > afterSeq) slots.push(slot);
        }
        if (slots.length > 0) yield slots;
      }
    } finally {
      await next.catch(() => undefined);
      await iterator.close();
    }
  }

  async slotOrigins(): Promise<readonly string[]> {
    const origins: string[] = [];
    for (let from: string = SLOT_RANGE.gte; ; ) {
      const [key] = await this.db.keys({ gte: from, lt: SLOT_RANGE.lt, limit: 1 }).all();
      if (key === undefined) return origins;
      const origin = slotKeyOrigin(key);
      origins.push(origin);
      from = pastOrigin(origin);
    }
  }

  async *scanTokens(onCorrupt?: OnCorrupt): AsyncIterable<StoredToken> {
    for (const [range, decode] of [[TOKEN_CHUNK_RANGE, decodeTokenChunk], [KEPT_TOKEN_RANGE, decodeKeptToken]] as const) {
      for await (const [key, value] of this.entries(range)) yield* decodeOrReport('token', key, value, decode, onCorrupt) ?? [];
    }
  }

  deleteTokensBefore(at: number, limit: number): Promise<number> {
    return this.deleteRange(TOKEN_CHUNK_RANGE.gte, tokenChunkLimit(at), limit);
  }

  deleteBefore(origin: string, tier: TimedTier, start: number, limit: number): Promise<number> {
    const prefix = tierPrefix(origin, tier);
    return this.deleteRange(prefix, prefix + padStart(start), limit);
  }

  /**
   * Delete up to `limit` keys of [gte, lt). A range deleted in chunks goes on
   * after the last key the previous chunk deleted: LevelDB keeps a deleted
   * key as a tombstone until compaction, so chunk n started from `gte` would
   * step over n chunks of tombstones first (after a long stop, millions:
   * the first retention pass at a million keys kept a core busy for minutes).
   * Where a range stopped is forgotten once it is done, so the next pass
   * starts from `gte` again and finds what was written behind it meanwhile.
   */
  private async deleteRange(gte: string, lt: string, limit: number): Promise<number> {
    const after = this.deletedUpTo.get(gte);
    const range = after !== undefined && after < lt ? { gt: after, lt, limit } : { gte, lt, limit };
    const keys = await this.db.keys(range).all();
    if (keys.length > 0) await this.db.batch(keys.map((key) => ({ type: 'del' as const, key })));
    if (keys.length === limit && keys.length > 0) this.deletedUpTo.set(gte, keys[keys.length - 1] as string);
    else this.deletedUpTo.delete(gte);
    return keys.length;
  }

  /** Raw entries of a range, read in chunks: one native call per thousand entries, not per entry (start-up reads every slot). */
  private async *entries(range: { readonly gte: string; readonly lt: string }): AsyncIterable<[string, string]> {
    const iterator = this.db.iterator(range);
    try {
      for (let chunk = await iterator.nextv(1_000); chunk.length > 0; chunk = await iterator.nextv(1_000)) yield* chunk;
    } finally {
      await iterator.close();
    }
  }
}
