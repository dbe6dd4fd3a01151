import type { TokenChange } from '../gossip/replica-view.ts';

/**
 * Group commit: hits that arrive while a write is in flight (or in the same
 * turn of the event loop) join one batch, written in one LevelDB batch and
 * acknowledged together when it is durable. One write is in flight at a time,
 * so each batch is computed from the state the previous one left.
 */
export class PendingHits {
  /** second bucket start → key → hits. Nearly every batch has one second, so this is one Map op per hit. */
  readonly bySecond = new Map<number, Map<string, number>>();
  hits = 0;
  requests = 0;
  /** The latest hit stamp in the batch. */
  maxAt = 0;
  /** Idempotency tokens observed in this batch (their hits are in `bySecond` too), by key, then token (no string built per lookup). */
  private readonly tokensByKey = new Map<string, Map<string, TokenChange>>();
  /** How many tokens the batch observed. */
  tokenCount = 0;
  /** Once written: the origin and seq it was written as. */
  origin = '';
  seq = 0;

  add(key: string, second: number, n: number): void {
    let keys = this.bySecond.get(second);
    if (keys === undefined) {
      keys = new Map();
      this.bySecond.set(second, keys);
    }
    keys.set(key, (keys.get(key) ?? 0) + n);
    this.hits += n;
  }

  /** Count `n` hits of `key` at `at` under an idempotency token (the caller checked it is new). */
  addWithToken(key: string, token: string, at: number, n: number): void {
    this.add(key, at - (at % 1000), n);
    let tokens = this.tokensByKey.get(key);
    if (tokens === undefined) {
      tokens = new Map();
      this.tokensByKey.set(key, tokens);
    }
    if (!tokens.has(token)) this.tokenCount++;
    tokens.set(token, { key, token, at, n });
  }

  /** The observation of `token` on `key` in this batch, if any. */
  token(key: string, token: string): TokenChange | undefined {
    return this.tokensByKey.get(key)?.get(token);
  }

  /** Every token observation of the batch. */
  *tokens(): IterableIterator<TokenChange> {
    for (const tokens of this.tokensByKey.values()) yield* tokens.values();
  }
}

/** One map key for a (key, token) pair: neither holds NUL. */
export function tokenId(key: string, token: string): string {
  return `${key}\u0000${token}`;
}

interface Batch {
  readonly pending: PendingHits;
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

export class GroupCommit {
  private open: Batch | undefined;
  private inFlight: Promise<void> | undefined;
  private writing: PendingHits | undefined;
  private writingDone: Promise<void> | undefined;

  constructor(private readonly write: (pending: PendingHits) => Promise<void>) {}

  /** Add hits to the next batch; resolves once that batch is durable. */
  add(fill: (pending: PendingHits) => void): Promise<void> {
    const batch = this.open ?? this.startBatch();
    fill(batch.pending);
    batch.pending.requests++;
    return batch.done;
  }

  /** The observation of a token added but not yet written, if any. */
  pendingToken(key: string, token: string): { change: TokenChange; done: Promise<void> } | undefined {
    const open = this.open?.pending.token(key, token);
    if (open !== undefined && this.open !== undefined) return { change: open, done: this.open.done };
    const writing = this.writing?.token(key, token);
    if (writing !== undefined && this.writingDone !== undefined) return { change: writing, done: this.writingDone };
    return undefined;
  }

  /** Hits of `key` added but not yet written: in the open batch and the one being written. */
  pendingFor(key: string): number {
    let n = 0;
    for (const pending of [this.open?.pending, this.writing]) {
      if (pending === undefined) continue;
      for (const keys of pending.bySecond.values()) n += keys.get(key) ?? 0;
    }
    return n;
  }

  /** Resolves when everything added so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.open !== undefined || this.inFlight !== undefined) {
      await Promise.allSettled([this.open?.done, this.inFlight]);
    }
  }

  private startBatch(): Batch {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const batch: Batch = { pending: new PendingHits(), done, resolve, reject };
    this.open = batch;
    // Let the rest of this event-loop turn join, then write unless a write is already running.
    setImmediate(() => this.kick());
    return batch;
  }

  private kick(): void {
    const batch = this.open;
    if (batch === undefined || this.inFlight !== undefined) return;
    this.open = undefined;
    this.writing = batch.pending;
    this.writingDone = batch.done;
    this.inFlight = this.write(batch.pending).then(
      () => batch.resolve(),
      (error: unknown) => batch.reject(error),
    );
    void this.inFlight.finally(() => {
      this.inFlight = undefined;
      this.writing = undefined;
      this.writingDone = undefined;
      this.kick();
    });
  }
}
