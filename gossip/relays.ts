import { LIMITS } from './limits.ts';
import type { VersionEntry } from './messages.ts';
import type { Changes } from './replica-view.ts';

export interface Relay {
  readonly origin: string;
  readonly from: number | null;
  readonly to: VersionEntry;
  readonly changes: Changes;
  /** The peer it came from: never relayed back there. */
  readonly source: string;
  readonly readyAt: number;
}

/**
 * Received deltas waiting to be relayed, at most LIMITS.maxRelayRows rows in
 * all: past it the oldest go (anti-entropy carries what they would have),
 * counted in `dropped`.
 */
export class RelayQueue {
  private relays: Relay[] = [];
  private rows = 0;
  dropped = 0;

  add(relay: Relay): void {
    this.relays.push(relay);
    this.rows += size(relay);
    while (this.rows > LIMITS.maxRelayRows && this.relays.length > 0) {
      const oldest = this.relays.shift() as Relay;
      this.rows -= size(oldest);
      this.dropped++;
    }
  }

  /** The relays due at `now`, removed from the queue. */
  due(now: number): Relay[] {
    const ready: Relay[] = [];
    const waiting: Relay[] = [];
    for (const relay of this.relays) (relay.readyAt <= now ? ready : waiting).push(relay);
    this.relays = waiting;
    for (const relay of ready) this.rows -= size(relay);
    return ready;
  }

  clear(): void {
    this.relays = [];
    this.rows = 0;
  }
}

const size = (relay: Relay): number => relay.changes.hits.length + relay.changes.slots.length + (relay.changes.tokens?.length ?? 0);
