import { HitChunks, type ChunkSource } from './chunks.ts';
import { LIMITS } from './limits.ts';
import type { Delta, SyncEntry, VersionEntry } from './messages.ts';
import type { ConnId } from './membership.ts';
import type { HitRow, TokenChange } from './replica-view.ts';

/** Own commits not yet sent to one peer, merged per (key, second): the newest counts win, they are absolute. */
interface HeldPush {
  readonly from: number;
  to: VersionEntry;
  readonly rows: Map<string, HitRow>;
  /** Tokens are not merged: each is an observation of its own (they count toward the held limit). */
  readonly tokens: TokenChange[];
}

/**
 * What one open connection is sending, and what the peer is known to hold
 * of this node's own origin. Frames go out in order, so:
 *
 * - `chain`: the peer held `base` of our origin when we started sending it a
 *   contiguous run (a repair, then pushes); once everything sent arrives it
 *   holds `seq`. A peer whose reports lie within the chain is in step and
 *   needs no repair, however far behind its reports are (the pushes are in
 *   flight); one whose report falls below `base` has lost something.
 * - Pushes go straight out only while the peer is in step, nothing is queued
 *   and the socket is draining; otherwise they are held, merged per (key,
 *   second), and sent as one delta when the way is clear. A slow link thus
 *   carries each hot key once per drain, not once per push interval.
 * - `queue`: chunked frames (repairs, held pushes) waiting for the socket.
 */
export class PeerLink {
  chain: { base: number; seq: number } | undefined;
  private held: HeldPush | undefined;
  readonly queue: ChunkSource[] = [];
  /** Per origin: the last repair finished here, and when (a repair may still be landing). */
  readonly finished = new Map<string, { seq: number; at: number }>();
  /** Per origin the peer gets first-hand: what we expected it to reach by now, and since when. */
  readonly expect = new Map<string, { seq: number; at: number }>();
  /** Per origin: the peer's (seq, digest) and ours at the last sync where only the digests differed, and how many syncs in a row. */
  readonly mismatch = new Map<string, { seq: number; theirs: number; mine: number; times: number }>();
  /** Bytes the transport has not yet handed to the network. */
  backlogBytes = 0;
  /** Delta bytes sent here, and how many of them the peer has reported received (flow control). */
  deltaBytesOut = 0;
  private peerReceived = 0;
  private lastFlowAt: number | undefined;
  /** When the peer last reported more received, or we last had nothing outstanding. */
  private progressAt: number;
  /** What the peer has been receiving, bytes a second: the highest recent sample, decaying slowly. */
  private rate = 0;

  constructor(
    readonly conn: ConnId,
    readonly peerId: string,
    now = 0,
  ) {
    this.progressAt = now;
  }

  /** The peer reports `received` delta bytes so far. */
  noteFlow(received: number, now: number): void {
    if (received < this.peerReceived || received > this.deltaBytesOut) return; // never more than was sent
    if (this.lastFlowAt !== undefined && now > this.lastFlowAt) {
      const sample = ((received - this.peerReceived) / (now - this.lastFlowAt)) * 1000;
      this.rate = Math.max(this.rate * 0.9, sample);
    }
    if (received > this.peerReceived) this.progressAt = now;
    this.peerReceived = received;
    this.lastFlowAt = now;
  }

  /** Sent but not yet known to have arrived: what sits in our socket, the kernels and any proxy between. */
  get outstandingBytes(): number {
    return this.deltaBytesOut - this.peerReceived;
  }

  /** About a second of what the peer has been receiving, at least LIMITS.minFlowWindowBytes. */
  get windowBytes(): number {
    return Math.max(LIMITS.minFlowWindowBytes, this.rate);
  }

  /** The frame size to aim at for this peer: about its window, so one frame crosses a slow link in a second or two. */
  get chunkBudgetBytes(): number {
    return Math.min(LIMITS.chunkBytes, Math.max(LIMITS.minFlowWindowBytes, this.windowBytes));
  }

  /**
   * Sent bytes the peer should have reported by now: past this long without
   * progress, what was sent was lost on the way (a stream with a gap in it, as
   * after a black hole that kept the connection), and the link cannot be
   * trusted. It allows for the outstanding bytes to cross at the rate seen.
   */
  flowStalled(now: number, graceMs: number): boolean {
    if (this.outstandingBytes === 0) {
      this.progressAt = now;
      return false;
    }
    const crossingMs = (this.outstandingBytes / Math.max(this.rate, LIMITS.minFlowWindowBytes)) * 2_000;
    return now - this.progressAt > graceMs + crossingMs;
  }

  /** Is the way to the peer too full for another push (it is then held and merged)? */
  get pushBlocked(): boolean {
    return this.backlogBytes > LIMITS.pushHighWaterBytes || this.outstandingBytes > this.windowBytes;
  }

  /** Must the next repair chunk wait? */
  get chunkBlocked(): boolean {
    return this.backlogBytes >= LIMITS.repairHighWaterBytes || this.outstandingBytes > this.windowBytes;
  }

  repairing(origin: string): boolean {
    return this.queue.some((source) => source.origin === origin && source instanceof HitChunks === false);
  }

  /** Can a push go out now as the shared frame? */
  inStep(selfOrigin: string): boolean {
    return this.chain !== undefined && this.held === undefined && this.queue.length === 0 && !this.pushBlocked && !this.repairing(selfOrigin);
  }

  /** Hold own commits (from, to] for later; false when the held push grew past its limit and was dropped. */
  hold(rows: readonly HitRow[], from: number, to: VersionEntry, tokens: readonly TokenChange[] = []): boolean {
    this.held ??= { from, to, rows: new Map(), tokens: [] };
    this.held.to = to;
    for (const row of rows) this.held.rows.set(`${row.second}\u0000${row.key}`, row);
    if (this.held.rows.size + this.held.tokens.length + tokens.length <= LIMITS.maxHeldRows) {
      for (const token of tokens) this.held.tokens.push(token);
      return true;
    }
    // Too much to hold: drop it; the peer's next sync shows what it lacks and a repair sends it.
    this.held = undefined;
    this.chain = undefined;
    return false;
  }

  /** Start holding afresh from `from` (a repair covers everything before it). */
  restartHold(from: number, to: VersionEntry): void {
    this.held = { from, to, rows: new Map(), tokens: [] };
  }

  /** The held push, as chunks, if it can follow what was sent: the peer will hold its `from`. */
  releaseHeld(origin: string): ChunkSource | undefined {
    const held = this.held;
    if (held === undefined || this.chain === undefined || held.from > this.chain.seq) return undefined;
    this.held = undefined;
    this.chain.seq = Math.max(this.chain.seq, held.to[0]);
    if (held.rows.size === 0 && held.tokens.length === 0) return undefined;
    return new HitChunks(origin, held.from, held.to, [...held.rows.values()], held.tokens);
  }

  /** The next queued frame, if the socket has room (`budget` frames at most per call). */
  *drain(budget: number): IterableIterator<{ frame: Delta; source: ChunkSource }> {
    while (budget-- > 0 && !this.chunkBlocked) {
      const source = this.queue[0];
      if (source === undefined || source.ready === false) return;
      const frame = source.next(this.chunkBudgetBytes);
      if (source.done) this.queue.shift();
      yield { frame, source };
    }
  }
}

/** The seq part of what a peer said it holds of `origin`. */
export function seqOf(entry: SyncEntry | undefined): number {
  return entry?.[0] ?? 0;
}
