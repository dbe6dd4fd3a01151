/** How many members a request waits for: `local` (this node), more than half of them, or every one. */
export type AckLevel = 'local' | 'majority' | 'all';

export interface AckOutcome {
  readonly ok: boolean;
  /** Members known to hold the batch, this node included. */
  readonly acked: number;
  readonly needed: number;
}

export interface HolderCount {
  /** This node's current origin. */
  origin(): string;
  /** Of the members (this node included), how many hold this node's origin up to `seq`. */
  holdersOf(seq: number): { acked: number; members: number };
}

interface Waiter {
  readonly seq: number;
  readonly needed: number;
  readonly resolve: (outcome: AckOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

/** Members a level needs out of `members` (this node included). */
export function neededFor(level: AckLevel, members: number): number {
  return level === 'all' ? members : level === 'majority' ? Math.floor(members / 2) + 1 : 1;
}

/**
 * Requests waiting for peers to hold their batch (`?ack=majority|all`). Each
 * is checked again whenever a peer is learned to hold more of this node's
 * origin, and answered on time-out with what it got. At most MAX_WAITERS
 * wait at once; more are answered at once as they stand (504 unless met).
 */
export class AckWaiters {
  static readonly MAX_WAITERS = 10_000;
  private readonly waiters = new Set<Waiter>();

  /** `onWait` runs when a request starts waiting: the pending push goes out now, not at the next push interval. */
  constructor(
    private readonly holders: HolderCount,
    private readonly onWait: () => void = () => undefined,
  ) {}

  /** Resolves once `needed` members hold `origin` up to `seq`, or after `timeoutMs` with how many did. */
  wait(origin: string, seq: number, level: AckLevel, timeoutMs: number): Promise<AckOutcome> {
    const { acked, members } = this.holders.holdersOf(seq);
    const needed = neededFor(level, members);
    // A batch of an earlier incarnation: its seqs are not this origin's any more; only this node is known to hold it.
    if (origin !== this.holders.origin()) return Promise.resolve({ ok: needed <= 1, acked: 1, needed });
    if (acked >= needed || this.waiters.size >= AckWaiters.MAX_WAITERS) return Promise.resolve({ ok: acked >= needed, acked, needed });
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        needed,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve({ ok: false, acked: this.holders.holdersOf(seq).acked, needed });
        }, timeoutMs),
      };
      this.waiters.add(waiter);
      this.onWait();
    });
  }

  /** A peer holds more: answer every request now met. */
  check(): void {
    for (const waiter of this.waiters) {
      const { acked } = this.holders.holdersOf(waiter.seq);
      if (acked < waiter.needed) continue;
      this.finish(waiter, { ok: true, acked, needed: waiter.needed });
    }
  }

  /** The node is a new incarnation (or stopping): the seqs waited for are not this origin's any more. */
  abandon(): void {
    for (const waiter of this.waiters) this.finish(waiter, { ok: false, acked: 1, needed: waiter.needed });
  }

  private finish(waiter: Waiter, outcome: AckOutcome): void {
    clearTimeout(waiter.timer);
    this.waiters.delete(waiter);
    waiter.resolve(outcome);
  }
}
