/**
 * What each peer is known to hold of this node's own origin, complete: the
 * highest seq it said (in a `held` frame, sent back at once for a push, or
 * in its sync). `?ack=majority|all` counts members by it. Reset when the node
 * starts a new incarnation: the new origin's seqs start over.
 */
export class OwnOriginHolders {
  private readonly held = new Map<string, number>();

  /** `peer` holds the origin up to `seq`; true if that is more than it was known to. */
  note(peer: string, seq: number): boolean {
    if (seq <= (this.held.get(peer) ?? 0)) return false;
    this.held.set(peer, seq);
    return true;
  }

  /** `peer` holds the origin up to `seq`, no more (its own report, replacing what was believed); true if that is more than before. */
  set(peer: string, seq: number): boolean {
    const before = this.held.get(peer) ?? 0;
    if (seq === 0) this.held.delete(peer);
    else this.held.set(peer, seq);
    return seq > before;
  }

  /** How many of `peers` hold the origin up to `seq` at least. */
  count(seq: number, peers: Iterable<string>): number {
    let n = 0;
    for (const peer of peers) if ((this.held.get(peer) ?? 0) >= seq) n++;
    return n;
  }

  /** A member forgotten no longer counts (bounded by the members: one entry each). */
  drop(peer: string): void {
    this.held.delete(peer);
  }

  reset(): void {
    this.held.clear();
  }
}
