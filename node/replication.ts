import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { DEFAULT_GOSSIP, type GossipConfig } from '../gossip/config.ts';
import { GossipCore, type PeerView } from '../gossip/protocol.ts';
import { WsTransport } from '../gossip/ws-transport.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { PeerStateChanges } from './peer-state-changes.ts';
import { PeriodicTask } from './periodic-task.ts';
import type { Replica } from './replica.ts';

/** Gossip for one node, running: its view of the cluster and how to stop it. */
export interface Replication {
  readonly core: GossipCore;
  peers(): PeerView[];
  freshness(): { peers: number; synced: number; maxLagMs: number };
  stop(): Promise<void>;
}

export interface ReplicationOptions {
  readonly replica: Replica;
  readonly server: Server;
  readonly address: string;
  readonly seeds: readonly string[];
  readonly secret: string | undefined;
  readonly static: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  readonly gossip?: Partial<GossipConfig>;
  /** Largest gossip frame; a repair of a large state is split below it. */
  readonly maxFrameBytes?: number;
}

/** Wire the gossip core to the replica, the WebSocket transport, metrics and logs. */
export function startReplication(options: ReplicationOptions): Replication {
  const { replica, clock, logger, metrics } = options;
  const config: GossipConfig = { ...DEFAULT_GOSSIP, ...options.gossip, static: options.static };
  const core = new GossipCore({ id: replica.identity.id, origin: replica.identity.origin, address: options.address }, replica.view, config, {
    seeds: options.seeds,
    secret: options.secret,
    randomBytes: (n) => randomBytes(n),
    random: Math.random,
  });
  replica.onLocalCommit((commit) => core.localCommit(commit));
  let applied = { deltas: 0, rows: 0 };
  const transport = new WsTransport(core, options.server, {
    maxPayloadBytes: options.maxFrameBytes ?? 64 * 1024 * 1024,
    tickMs: Math.max(5, Math.floor(config.pushIntervalMs / 2)),
    now: () => clock.now(),
    events: {
      frameIn: (peer, type, bytes) => {
        metrics.gossipFrames.labels(peer, 'in', type).inc();
        metrics.gossipBytes.labels(peer, 'in').inc(bytes);
        metrics.gossipDeltasApplied.inc(core.stats.deltasApplied - applied.deltas);
        metrics.gossipRowsApplied.inc(core.stats.rowsApplied - applied.rows);
        applied = { deltas: core.stats.deltasApplied, rows: core.stats.rowsApplied };
      },
      frameOut: (peer, type, bytes) => {
        metrics.gossipFrames.labels(peer, 'out', type).inc();
        metrics.gossipBytes.labels(peer, 'out').inc(bytes);
      },
      rejected: (kind, reason, peer) => {
        metrics.gossipRejected.labels(kind).inc();
        logger.warn({ peer, kind, reason }, kind === 'handshake' ? 'gossip handshake refused' : 'bad gossip frame; connection closed');
      },
      connected: (peer, outbound) => logger.debug({ peer, outbound }, 'gossip connection'),
      disconnected: (peer, reason) => logger.debug({ peer, reason }, 'gossip connection closed'),
    },
  });
  transport.start();

  const peers = (): PeerView[] => core.peers(clock.now());
  // Per-peer gauges are computed when scraped.
  const collect = (): void => {
    metrics.gossipLag.reset();
    metrics.gossipPeerState.reset();
    metrics.gossipClockOffset.reset();
    for (const p of peers()) {
      metrics.gossipLag.labels(p.id).set(p.lagMs / 1000);
      metrics.gossipPeerState.labels(p.id).set(p.state === 'up' ? 1 : p.state === 'suspect' ? 0.5 : 0);
      if (p.clockOffsetMs !== undefined) metrics.gossipClockOffset.labels(p.id).set(p.clockOffsetMs / 1000);
    }
  };
  metrics.beforeScrape(collect);

  // One log line per change of a peer's state, so a cluster's logs show partitions, crashes and heals.
  const stateChanges = new PeerStateChanges();
  const watchPeers = new PeriodicTask(async () => {
    for (const change of stateChanges.next(peers())) {
      const fields = { peer: change.id, address: change.address, was: change.from ?? 'unknown' };
      if (change.to === 'up') logger.info(fields, `peer ${change.id} up`);
      else logger.warn(fields, `peer ${change.id} ${change.to}`);
    }
  }, Math.max(50, Math.floor(config.syncIntervalMs / 2)));
  watchPeers.start();

  return {
    core,
    peers,
    freshness: () => core.freshness(clock.now()),
    stop: async () => {
      await watchPeers.stop();
      await transport.stop();
    },
  };
}
