import type { Slot } from '../crdt/slot.ts';
import type { Tier, TimedTier } from '../crdt/tiers.ts';
import { decodeLogEntry } from './log-record.ts';
import { LOG_RANGE, META_PREFIX, SLOT_RANGE, decodeSlot, decodeSlotValue, logKey, slotKeyOrigin, padStart, slotKey, slotValue, startRange, tierPrefix } from './slot-codec.ts';
import { KEPT_TOKEN_RANGE, TOKEN_CHUNK_RANGE, decodeKeptToken, decodeTokenChunk, keptTokenEntry, tokenChunkEntry, tokenChunkLimit } from './token-codec.ts';
import { decodeOrReport, skippable, type CommitBatch, type SkipBefore, type CorruptRecord, type LogRecord, type OnCorrupt, type Store, type SlotPosition, type StoredCount, type StoredToken } from './store.ts';

/** A point read knows its key: only the value is decoded. */
const valueOnly = (_dbKey: string, dbValue: string): StoredCount => decodeSlotValue(dbValue);

/** The most slots a chunk of scanColdSlots holds, as LevelStore reads them. */
const COLD_CHUNK = 1_000;

type Range = { readonly gte: string; readonly lt?: string; readonly lte?: string };

function inRange(key: string, range: Range): boolean {
  return key >= range.gte && (range.lt === undefined || key < range.lt) && (range.lte === undefined || key <= range.lte);
}

/**
 * A Store in memory, for unit tests of the layers above the store. It keeps
 * the same raw keys and values as LevelDB and decodes them with the same
 * codec, so a scan skips and reports a bad record exactly as LevelStore does.
 * `failNext` makes the next write fail and `failWrites` every write until
 * `heal`, tearing the log as LevelDB does (see `write`); `plantRaw` plants a
 * record as if a disk or a peer had put it there.
 */
export class MemoryStore implements Store {
  private readonly raw = new Map<string, string>();
  private open_ = false;
  failNext: Error | undefined;
  private fault: { readonly error: Error; readonly written: boolean } | undefined;
  /** The contents as of the first failed write since the last open: what the next open recovers. */
  private tornAt: Map<string, string> | undefined;

  get isOpen(): boolean {
    return this.open_;
  }

  open(): Promise<void> {
    if (this.tornAt !== undefined) {
      // Recovery stops at the tear: what was written after it is lost.
      this.raw.clear();
      for (const [key, value] of this.tornAt) this.raw.set(key, value);
      this.tornAt = undefined;
    }
    this.open_ = true;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.open_ = false;
    return Promise.resolve();
  }

  getMeta(name: string): Promise<string | undefined> {
    this.assertOpen();
    return Promise.resolve(this.raw.get(META_PREFIX + name));
  }

  commit(batch: CommitBatch): Promise<void> {
    return this.write(() => {
      for (const s of batch.slots) this.raw.set(slotKey(s.origin, s.tier, s.start, s.key), slotValue(s.count, s.seq));
      if (batch.tokens !== undefined && batch.tokens.length > 0) {
        const chunk = tokenChunkEntry(batch.tokens);
        this.raw.set(chunk.key, chunk.value);
      }
      for (const kept of batch.keptTokens ?? []) {
        const entry = keptTokenEntry(kept);
        this.raw.set(entry.key, entry.value);
      }
      for (const [name, value] of batch.meta) this.raw.set(META_PREFIX + name, value);
      if (batch.log !== undefined) this.raw.set(logKey(batch.log.seq), batch.log.record);
    });
  }

  /**
   * Every write fails from now on, until `heal`; `written` makes a failing
   * write reach the store all the same (an error after the bytes were out).
   */
  failWrites(error: Error, options: { written?: boolean } = {}): void {
    this.fault = { error, written: options.written === true };
  }

  heal(): void {
    this.fault = undefined;
  }

  /**
   * One write, failing as LevelDB does: a failed write tears its log, and the
   * next open recovers only what came before the tear, so writes that
   * succeeded after it are gone again at the next open.
   */
  private async write<T>(apply: () => T): Promise<T> {
    this.assertOpen();
    await Promise.resolve(); // a write is never synchronous
    const failure = this.failNext ?? this.fault?.error;
    if (failure !== undefined) {
      this.failNext = undefined;
      if (this.fault?.written === true) apply();
      this.tornAt ??= new Map(this.raw);
      throw failure;
    }
    return apply();
  }

  /** Put a raw db key and value in the slot or log range, open or not (tests only: it bypasses the codec). */
  plantRaw(kind: CorruptRecord['kind'], key: string, value: string): void {
    if (!inRange(key, kind === 'slot' ? SLOT_RANGE : kind === 'token' ? (key.startsWith('d') ? KEPT_TOKEN_RANGE : TOKEN_CHUNK_RANGE) : LOG_RANGE)) throw new Error(`${JSON.stringify(key)} is not a ${kind} db key`);
    this.raw.set(key, value);
  }

  async *scanLog(onCorrupt?: OnCorrupt): AsyncIterable<LogRecord> {
    this.assertOpen();
    for (const [key, value] of this.entries(LOG_RANGE)) {
      const record = decodeOrReport('log', key, value, decodeLogEntry, onCorrupt);
      if (record !== undefined) yield record;
    }
    await Promise.resolve();
  }

  truncateLog(throughSeq: number): Promise<void> {
    return this.write(() => this.deleteRange({ gte: LOG_RANGE.gte, lte: logKey(throughSeq) }));
  }

  dropLogAfter(seq: number): Promise<void> {
    return this.write(() => {
      for (const key of this.raw.keys()) if (key > logKey(seq) && inRange(key, LOG_RANGE)) this.raw.delete(key);
    });
  }

  async *scanSlots(onCorrupt?: OnCorrupt, skipBefore?: SkipBefore): AsyncIterable<readonly Slot[]> {
    this.assertOpen();
    const slots: Slot[] = [];
    for (const [key, value] of this.entries(SLOT_RANGE)) {
      const slot = decodeOrReport('slot', key, value, decodeSlot, onCorrupt);
      if (slot !== undefined && !skippable(slot.tier, slot.start, skipBefore)) slots.push(slot);
    }
    await Promise.resolve();
    if (slots.length > 0) yield slots;
  }

  /** The raw map is keyed by db key: a point read is one lookup. */
  readSlot(origin: string, tier: Tier, start: number, key: string, onCorrupt?: OnCorrupt): StoredCount | undefined {
    this.assertOpen();
    const dbKey = slotKey(origin, tier, start, key);
    const value = this.raw.get(dbKey);
    return value === undefined ? undefined : decodeOrReport('slot', dbKey, value, valueOnly, onCorrupt);
  }

  async *scanColdSlots(origin: string, tier: TimedTier, fromStart: number, toStart: number, afterSeq: number, onCorrupt?: OnCorrupt, after?: SlotPosition): AsyncIterable<readonly Slot[]> {
    this.assertOpen();
    const range = startRange(origin, tier, fromStart, toStart);
    const past = after === undefined ? undefined : slotKey(origin, tier, after.start, after.key);
    const slots: Slot[] = [];
    for (const [key, value] of range === undefined ? [] : this.entries(range)) {
      if (past !== undefined && key <= past) continue;
      const slot = decodeOrReport('slot', key, value, decodeSlot, onCorrupt);
      if (slot !== undefined && slot.seq > afterSeq) slots.push(slot);
    }
    await Promise.resolve();
    for (let i = 0; i < slots.length; i += COLD_CHUNK) yield slots.slice(i, i + COLD_CHUNK);
  }

  slotOrigins(): Promise<readonly string[]> {
    this.assertOpen();
    const origins = new Set<string>();
    for (const [key] of this.entries(SLOT_RANGE)) origins.add(slotKeyOrigin(key));
    return Promise.resolve([...origins]);
  }

  async *scanTokens(onCorrupt?: OnCorrupt): AsyncIterable<StoredToken> {
    this.assertOpen();
    for (const [range, decode] of [[TOKEN_CHUNK_RANGE, decodeTokenChunk], [KEPT_TOKEN_RANGE, decodeKeptToken]] as const) {
      for (const [key, value] of this.entries(range)) yield* decodeOrReport('token', key, value, decode, onCorrupt) ?? [];
    }
    await Promise.resolve();
  }

  deleteTokensBefore(at: number, limit: number): Promise<number> {
    const keys = this.entries({ gte: TOKEN_CHUNK_RANGE.gte, lt: tokenChunkLimit(at) }).slice(0, limit).map(([key]) => key);
    return this.write(() => {
      for (const key of keys) this.raw.delete(key);
      return keys.length;
    });
  }

  deleteBefore(origin: string, tier: TimedTier, start: number, limit: number): Promise<number> {
    const prefix = tierPrefix(origin, tier);
    const keys = this.entries({ gte: prefix, lt: prefix + padStart(start) }).slice(0, limit).map(([key]) => key);
    return this.write(() => {
      for (const key of keys) this.raw.delete(key);
      return keys.length;
    });
  }

  /**
   * A snapshot of a range in key order. UTF-16 order differs from LevelDB's
   * byte order only between hit keys with characters above U+FFFF and ones in
   * U+E000-U+FFFF; nothing relies on the order of slots.
   */
  private entries(range: Range): [string, string][] {
    return [...this.raw].filter(([key]) => inRange(key, range)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private deleteRange(range: Range): void {
    for (const key of this.raw.keys()) if (inRange(key, range)) this.raw.delete(key);
  }

  private assertOpen(): void {
    if (!this.open_) throw new Error('store is not open');
  }
}
