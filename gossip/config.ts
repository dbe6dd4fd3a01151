/** Gossip timings, units in the names. The defaults suit a LAN or one machine. */
export interface GossipConfig {
  /** Local commits and relays are pushed to peers this often, batched. */
  readonly pushIntervalMs: number;
  /** Version vectors (anti-entropy), membership and clock samples are exchanged this often; also the heartbeat. */
  readonly syncIntervalMs: number;
  /** A peer silent this long is suspect. */
  readonly suspectAfterMs: number;
  /** A peer silent this long is down: its connection is closed and redialed. */
  readonly downAfterMs: number;
  /** Reconnect backoff: first delay and cap (exponential, with jitter). */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** A repair just finished is not resent for this long while the peer may still be applying it; nor is a peer that gets an origin first-hand repaired before it has stood still this long. */
  readonly repairGraceMs: number;
  /** A received delta is relayed after this long, to peers that have not acknowledged it by then. */
  readonly relayDelayMs: number;
  /** Dial only the seed peers; learn no other addresses. */
  readonly static: boolean;
  /** A member without a connection this long is forgotten: no longer dialed, not counted. */
  readonly forgetAfterMs: number;
  /** Most connections this node dials or keeps dialing (inbound ones are always taken). Large clusters gossip over a partial mesh; relays and anti-entropy carry the rest. */
  readonly maxPeers: number;
}

export const DEFAULT_GOSSIP: GossipConfig = {
  pushIntervalMs: 20,
  syncIntervalMs: 1_000,
  suspectAfterMs: 3_000,
  downAfterMs: 6_000,
  reconnectMinMs: 50,
  reconnectMaxMs: 500,
  repairGraceMs: 2_000,
  relayDelayMs: 60,
  static: false,
  forgetAfterMs: 24 * 3_600_000,
  maxPeers: Number.POSITIVE_INFINITY,
};
