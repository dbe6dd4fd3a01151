import { LIMITS } from './limits.ts';
import type { Read } from './messages.ts';

interface OpenRead {
  readonly message: Read;
  /** Peers whose answer came: never asked again. */
  readonly answered: Set<string>;
}

/**
 * The fresh reads (`?read=`) still waiting for answers, kept so that a peer
 * whose connection opens while one waits is asked then: one that was
 * reconnecting when the read began, or whose link dropped the read or its
 * answer. Asked once, a read is lost with its connection, and waits out its
 * whole timeout. At most LIMITS.maxOpenReads; past it the oldest is
 * forgotten (its request still answers at its timeout, with what it got).
 */
export class OpenReads {
  private readonly reads = new Map<number, OpenRead>();

  open(message: Read): void {
    if (this.reads.size >= LIMITS.maxOpenReads) {
      const oldest = this.reads.keys().next();
      if (oldest.done !== true) this.reads.delete(oldest.value);
    }
    this.reads.set(message.id, { message, answered: new Set() });
  }

  /** The request answered (or gave up): no peer is asked for it again. */
  close(id: number): void {
    this.reads.delete(id);
  }

  /** A peer answered `id`; false when no such read waits (an answer to a closed one, or a second answer). */
  answered(id: number, peer: string): boolean {
    const read = this.reads.get(id);
    if (read === undefined || read.answered.has(peer)) return false;
    read.answered.add(peer);
    return true;
  }

  /** The reads `peer` has not answered: to send on its newly opened connection. */
  *unansweredBy(peer: string): IterableIterator<Read> {
    for (const read of this.reads.values()) if (!read.answered.has(peer)) yield read.message;
  }

  get size(): number {
    return this.reads.size;
  }
}
