/**
 * Every limit of the gossip layer, in one table, with what happens at it. The
 * same numbers bound what a node accepts and what it sends, so a node never
 * sends what its peers refuse: it never holds more members or origins than a
 * peer accepts in a sync, and it cuts deltas into frames far below the frame
 * limit. README "Limits" lists them; /metrics counts every time one is hit
 * (`hitmesh_gossip_limited_total{limit}`).
 */
export const LIMITS = {
  /** Members a node knows (itself included). Past it, new names in syncs are ignored (counted). */
  maxMembers: 1_000,
  /** Origins (replica incarnations) a node holds. Past it, deltas of a new origin are dropped (counted, logged). */
  maxOrigins: 1_024,
  /** Largest frame accepted from an authenticated peer; a larger one closes the connection. */
  maxFrameBytes: 4 * 1024 * 1024,
  /** Largest frame accepted before the handshake is done (hello, auth): a stranger cannot make a node buffer more. */
  maxHandshakeFrameBytes: 4 * 1024,
  /** Connections still in their handshake at once; more are refused at the upgrade. */
  maxPendingHandshakes: 64,
  /** Dials of ours not yet connected, at once: a DNS name with hundreds of records is dialed a few dozen at a time (the rest at the next ticks). */
  maxPendingDials: 64,
  /** A handshake not done after this closes the connection. */
  handshakeTimeoutMs: 5_000,
  /** Rows in one delta frame (accepted and sent). */
  maxDeltaRows: 100_000,
  /** A fresh read (`?read=`): keys asked at once, runs of buckets in its plan, keys × buckets, and rows in one answer (a bigger answer is refused as too big). */
  maxReadKeys: 1_000,
  maxReadRuns: 64,
  maxReadBuckets: 200_000,
  maxReadRows: 200_000,
  /** Fresh reads waiting for answers at once (a peer's answer may be ~2 MB). Past it a read is answered at once as it stands; the gossip core, which asks again a peer whose link comes up, forgets the oldest. */
  maxOpenReads: 64,
  /** What a node aims a delta frame at (estimated before packing, generously: frames come out at about half): repairs and big pushes go in chunks of about this. */
  chunkBytes: 128 * 1024,
  /** Chunks one tick may encode over all peers: a big repair never holds the event loop for long (a chunk is about 15 ms of work here). */
  chunksPerTick: 2,
  /** Bytes queued in a socket above which pushes to that peer are held and coalesced (merged per key and second). */
  pushHighWaterBytes: 64 * 1024,
  /** Bytes queued in a socket above which repair chunks to that peer wait. */
  repairHighWaterBytes: 256 * 1024,
  /**
   * Flow control: delta bytes sent but not yet reported received by the peer
   * (its `flow` frames) may be at most about one second of what it has been
   * receiving, and never less than this. Past it pushes are held and repair
   * chunks wait: a queue hidden in kernels and proxies on a slow link stays
   * about a second long instead of growing without bound.
   */
  minFlowWindowBytes: 8 * 1024,
  /** A receiver reports what it received once this much arrived since its last report (at most every 10 ms), or 50 ms passed: half the least window, so a sender never waits on a report. */
  flowReportBytes: 4 * 1024,
  /** Rows a held (coalesced) push may grow to; past it the push is dropped and the peer repaired from its next sync. */
  maxHeldRows: 200_000,
  /** Rows waiting to be relayed, over all deltas; past it the oldest relays are dropped (anti-entropy carries them). */
  maxRelayRows: 200_000,
  /** How far ahead of the receiver's clock a time in a frame may lie (hit stamps, buckets, vector times). */
  maxAheadMs: 24 * 3_600_000,
  /** Clock samples kept per peer; the one with the shortest round trip is believed. */
  clockSamples: 8,
} as const;
