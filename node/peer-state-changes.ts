import type { PeerState, PeerView } from '../gossip/protocol.ts';

export interface PeerStateChange {
  readonly id: string;
  readonly address: string;
  /** undefined: first seen. */
  readonly from: PeerState | undefined;
  readonly to: PeerState;
}

/**
 * Turns successive looks at the peers into their changes of state (up,
 * suspect, down), so a node can log "peer n2 down" once rather than its
 * state every second. A peer first seen down is not a change worth a line.
 */
export class PeerStateChanges {
  private readonly last = new Map<string, PeerState>();

  next(peers: readonly PeerView[]): PeerStateChange[] {
    const changes: PeerStateChange[] = [];
    for (const peer of peers) {
      const from = this.last.get(peer.id);
      if (from === peer.state) continue;
      this.last.set(peer.id, peer.state);
      if (from === undefined && peer.state === 'down') continue;
      changes.push({ id: peer.id, address: peer.address, from, to: peer.state });
    }
    return changes;
  }
}
