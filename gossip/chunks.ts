import type { KeyChanges } from './replica-view.ts';
import { encodeDelta, estimateHitRowBytes, estimateSlotGroupBytes, estimateTokenBytes } from './delta-codec.ts';
import { LIMITS } from './limits.ts';
import type { Delta, VersionEntry } from './messages.ts';
import type { HitRow, SlotRow, TokenChange } from './replica-view.ts';

/**
 * A delta too big for one frame, sent as a run of frames of about
 * LIMITS.chunkBytes each, produced one at a time as the socket drains. All
 * but the last are partial (`from: null`: applied, vector unchanged); the
 * last carries `from`, so a receiver that got the whole run in order holds
 * `to`, and one whose connection broke half-way claims nothing it lacks.
 */
export interface ChunkSource {
  readonly origin: string;
  /** `from` of the last chunk: complete from that seq, or null for a partial exchange. */
  readonly from: number | null;
  readonly to: VersionEntry;
  readonly done: boolean;
  /** False while the next frame waits on a read (a repair reading the store): the queue waits behind it, in order. */
  readonly ready?: boolean;
  /** The next frame, of about `budget` bytes (LIMITS.chunkBytes by default; less for a slow peer). */
  next(budget?: number): Delta;
}

/** A repair (or a partial exchange): every changed key of an origin, read lazily from the state. */
export class RepairChunks implements ChunkSource {
  done = false;
  private pending: { key: string; buckets: readonly (readonly [number, number, number])[]; offset: number; tokens: readonly TokenChange[]; tokenOffset: number } | undefined;

  constructor(
    readonly origin: string,
    readonly from: number | null,
    readonly to: VersionEntry,
    private readonly keys: KeyChanges,
  ) {}

  get ready(): boolean {
    return this.pending !== undefined || this.keys.ready !== false;
  }

  next(budget: number = LIMITS.chunkBytes): Delta {
    const slots: SlotRow[] = [];
    const tokens: TokenChange[] = [];
    let bytes = 0;
    for (;;) {
      if (this.pending === undefined) {
        if (this.keys.ready === false) return this.partial(slots, tokens);
        const step = this.keys.next();
        if (step.done === true) {
          this.done = true;
          // Cut short (the store failed a read): what was sent stands, but vouches for nothing.
          return encodeDelta(this.origin, { hits: [], slots, tokens }, this.to, this.keys.failed === true ? null : this.from);
        }
        const { key, buckets } = step.value;
        const keyTokens = (step.value.tokens ?? []).map(([token, at, n]) => ({ key, token, at, n }));
        this.pending = { key, buckets, offset: 0, tokens: keyTokens, tokenOffset: 0 };
      }
      const { key, buckets, offset } = this.pending;
      // A key whose buckets do not fit whole is split (a key hit for weeks); its buckets come coarsest first, the lifetime last (KeyBuckets.entriesCoarseFirst).
      const fit = Math.max(1, Math.floor((budget - bytes - estimateSlotGroupBytes(key, 0)) / estimateSlotGroupBytes('', 1)));
      const take = Math.min(buckets.length - offset, fit, LIMITS.maxDeltaRows / 2 - slots.length);
      if (offset < buckets.length && slots.length + tokens.length > 0 && (take < buckets.length - offset || take <= 0)) return this.partial(slots, tokens);
      for (let i = offset; i < offset + take; i++) {
        const [tier, start, count] = buckets[i] as readonly [number, number, number];
        slots.push({ key, tier: tier as SlotRow['tier'], start, count });
      }
      if (take > 0) bytes += estimateSlotGroupBytes(key, take);
      if (offset + take < buckets.length) {
        this.pending.offset += take;
        return this.partial(slots, tokens);
      }
      // Then the key's tokens, as many as fit; the rest in the next frames.
      const pending = this.pending;
      pending.offset = buckets.length;
      while (pending.tokenOffset < pending.tokens.length) {
        const change = pending.tokens[pending.tokenOffset] as TokenChange;
        const size = estimateTokenBytes(change);
        if (slots.length + tokens.length > 0 && (bytes + size > budget || tokens.length >= LIMITS.maxDeltaRows / 2)) return this.partial(slots, tokens);
        tokens.push(change);
        bytes += size;
        pending.tokenOffset++;
      }
      this.pending = undefined;
      if (bytes >= budget) return this.partial(slots, tokens);
    }
  }

  private partial(slots: SlotRow[], tokens: TokenChange[]): Delta {
    return encodeDelta(this.origin, { hits: [], slots, tokens }, this.to, null);
  }
}

/** Local commits as hit rows and the tokens they observed (a coalesced push, or one too big for a frame), in chunks. */
export class HitChunks implements ChunkSource {
  private index = 0;
  private tokenIndex = 0;
  private started = false;

  constructor(
    readonly origin: string,
    readonly from: number,
    readonly to: VersionEntry,
    private readonly rows: readonly HitRow[],
    private readonly tokens: readonly TokenChange[] = [],
  ) {}

  get done(): boolean {
    return this.started && this.index >= this.rows.length && this.tokenIndex >= this.tokens.length;
  }

  next(budget: number = LIMITS.chunkBytes): Delta {
    this.started = true;
    const start = this.index;
    let end = start;
    let bytes = 0;
    while (end < this.rows.length && end - start < LIMITS.maxDeltaRows / 2) {
      const size = estimateHitRowBytes(this.rows[end] as HitRow);
      if (end > start && bytes + size > budget) break;
      bytes += size;
      end++;
    }
    this.index = end;
    const tokenStart = this.tokenIndex;
    if (end >= this.rows.length) {
      let rows = end - start;
      while (this.tokenIndex < this.tokens.length && this.tokenIndex - tokenStart < LIMITS.maxDeltaRows / 2) {
        const size = estimateTokenBytes(this.tokens[this.tokenIndex] as TokenChange);
        if (rows > 0 && bytes + size > budget) break;
        bytes += size;
        rows++;
        this.tokenIndex++;
      }
    }
    const changes = { hits: this.rows.slice(start, end), slots: [], tokens: this.tokens.slice(tokenStart, this.tokenIndex) };
    return encodeDelta(this.origin, changes, this.to, this.done ? this.from : null);
  }
}

/** Every frame of a source at once (small deltas: a push that fits one frame is the common case). */
export function allChunks(source: ChunkSource): Delta[] {
  const frames: Delta[] = [];
  do frames.push(source.next());
  while (!source.done);
  return frames;
}
