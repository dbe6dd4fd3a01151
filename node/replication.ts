import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { clockVerdict } from '../gossip/clock-filter.ts';
import { DEFAULT_GOSSIP, type GossipConfig } from '../gossip/config.ts';
import { LIMITS } from '../gossip/limits.ts';
import { GossipCore, type PeerView } from '../gossip/protocol.ts';
import { WsTransport, type GossipTls } from '../gossip/ws-transport.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { DnsSeeds, type DnsSeedOptions } from './dns-seeds.ts';
import { PeerStateChanges } from './peer-state-changes.ts';
import { PeriodicTask } from './periodic-task.ts';
import type { WindowPlan } from '../crdt/window-plan.ts';
import { AckWaiters, type AckLevel, type AckOutcome } from './ack-waiters.ts';
import { FreshReads, type FreshAnswer } from './fresh-reads.ts';
import type { Replica } from './replica.ts';

/** Gossip for one node, running: its view of the cluster and how to stop it. */
export interface Replication {
  readonly core: GossipCore;
  peers(): PeerView[];
  freshness(): { peers: number; synced: number; maxLagMs: number };
  /** Forget a member now (DELETE /cluster/members/:id); false if it is not known. */
  forget(id: string): boolean;
  /** Resolves once `level` of the members hold this node's batch `seq` of `origin` (SPEC `?ack=`), or on time-out. */
  awaitAck(origin: string, seq: number, level: AckLevel, timeoutMs: number): Promise<AckOutcome>;
  /** `?read=`: the counts of `keys` over `plan` joined from `level` of the members, or what it had on time-out. */
  freshRead(keys: readonly string[], plan: WindowPlan, level: AckLevel, timeoutMs: number): Promise<FreshAnswer>;
  /** Resolves once start-up has heard from every seed peer (or given up waiting): hits are held until then. */
  readonly settled: Promise<void>;
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
  /** Largest clock offset from most peers before hits are refused (--max-clock-skew). */
  readonly maxClockSkewMs: number;
  /** Largest gossip frame accepted. */
  readonly maxFrameBytes?: number;
  /** Longest start-up waits to hear from its seeds before taking hits anyway. */
  readonly settleTimeoutMs?: number;
  /** wss gossip: dial with TLS and check peers' certificates (undefined: plain ws). */
  readonly tls?: GossipTls;
  /** Seed peers from DNS (--peers-dns), besides `seeds`. */
  readonly dnsSeeds?: DnsSeedOptions;
}

/** Clock samples older than this are not judged by. */
const CLOCK_SAMPLE_MAX_AGE_MS = 30_000;

/** Wire the gossip core to the replica, the WebSocket transport, metrics and logs. */
export function startReplication(options: ReplicationOptions): Replication {
  const { replica, clock, logger, metrics } = options;
  const config: GossipConfig = { ...DEFAULT_GOSSIP, ...options.gossip, static: options.static };
  // The waiters count peers through the core and push through the transport; the core tells them when a peer holds more.
  const acks: { waiters?: AckWaiters; push?: () => void; reads?: FreshReads } = {};
  const core = new GossipCore({ id: replica.identity.id, origin: replica.identity.origin, address: options.address }, replica.view, config, {
    seeds: options.seeds,
    secret: options.secret,
    randomBytes: (n) => randomBytes(n),
    random: Math.random,
    onOwnOriginBehind: (peer, theirs) => {
      // Peers only ever get what this node wrote: one that holds more of its origin than its store means lost writes
      // (power loss without --fsync, a restored backup). Going on would reuse seqs they hold; a new origin cannot.
      void replica.startNewIncarnation(`peer ${peer} holds this node's origin up to seq ${Math.max(theirs[0], theirs[3])}, beyond its store's ${replica.seq}`);
    },
    onHeld: () => acks.waiters?.check(),
    onReadReply: (peer, reply) => acks.reads?.onReply(peer, reply),
  });
  const ackWaiters = new AckWaiters({ origin: () => core.identity.origin, holdersOf: (seq) => core.holdersOf(seq) }, () => acks.push?.());
  acks.waiters = ackWaiters;
  replica.onLocalCommit((commit) => core.localCommit(commit));
  let applied = { deltas: 0, rows: 0 };
  /** The last reason each address could not be dialed, so a changed reason is logged again (at most maxMembers kept). */
  const dialFailures = new Map<string, string>();
  const transport = new WsTransport(core, options.server, {
    maxPayloadBytes: options.maxFrameBytes ?? LIMITS.maxFrameBytes,
    tickMs: Math.max(5, Math.floor(config.pushIntervalMs / 2)),
    tls: options.tls,
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
      fault: (where, error) => {
        metrics.gossipFaults.inc();
        logger.error({ err: error, where }, 'gossip error caught; the connection involved was closed');
      },
      dialFailed: (address, reason) => {
        // Once per address and reason (a refused port, an expired or foreign certificate), not every retry.
        if (dialFailures.get(address) === reason) return;
        if (dialFailures.size >= LIMITS.maxMembers) dialFailures.clear();
        dialFailures.set(address, reason);
        // A peer that is down or not up yet is the peer state's news (logged as such); a refused certificate or a bad answer is not.
        const unreachable = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|closed before it opened)$/.test(reason) || reason.startsWith('Opening handshake has timed out');
        logger[unreachable ? 'debug' : 'warn']({ address, reason }, `cannot dial ${address}: ${reason}`);
      },
      connected: (peer, outbound) => {
        if (outbound) dialFailures.delete(peer);
        logger.debug({ peer, outbound }, 'gossip connection');
      },
      disconnected: (peer, reason) => logger.debug({ peer, reason }, 'gossip connection closed'),
    },
  });
  acks.push = () => transport.apply(core.pushNow(clock.now()));
  const freshReads = new FreshReads({
    self: () => core.identity.id,
    state: replica.state,
    members: () => core.memberCount,
    ask: (id, keys, runs) => transport.apply(core.askRead(id, keys, runs)),
    done: (id) => core.readDone(id),
  });
  acks.reads = freshReads;
  replica.onRotate((identity) => {
    transport.apply(core.rotate({ id: identity.id, origin: identity.origin, address: options.address }));
    ackWaiters.abandon();
  });
  transport.start();
  const dnsSeeds = options.dnsSeeds === undefined ? undefined : watchSeedName(options.dnsSeeds, core, logger, metrics);

  // Start-up: hold hits until every seed has answered (and so said what it holds of this origin) or cannot be reached.
  // Seeds from a name count once the name was resolved once.
  const settled = new Promise<void>((resolve) => {
    const deadline = clock.now() + (options.settleTimeoutMs ?? 3 * config.syncIntervalMs + 2_000);
    const check = (): void => {
      if (((dnsSeeds?.settled ?? true) && core.seedsSettled()) || clock.now() >= deadline) {
        resolve();
        return;
      }
      setTimeout(check, 20).unref();
    };
    check();
  });
  replica.holdHitsUntil(settled);

  // The clock guard (SPEC section 4): hits are refused while most reachable peers find this clock off.
  let skew: string | undefined;
  replica.refuseHitsWhile(() => skew);
  const judgeClock = (): void => {
    const verdict = clockVerdict(core.clockSamples(clock.now(), CLOCK_SAMPLE_MAX_AGE_MS), options.maxClockSkewMs);
    const was = skew;
    skew = verdict.skewed ? `this node's clock is off by more than ${options.maxClockSkewMs} ms from ${verdict.off} of ${verdict.judged} reachable peers` : undefined;
    if (skew !== undefined) replica.retentionClock.distrust();
    else if (verdict.judged > 0) replica.retentionClock.trust();
    metrics.clockSkewed.set(skew === undefined ? 0 : 1);
    if (skew !== was) {
      if (skew !== undefined) logger.error({ off: verdict.off, judged: verdict.judged }, `${skew}: refusing hits`);
      else logger.info('clock back within bounds of the peers; taking hits again');
    }
  };

  const peers = (): PeerView[] => core.peers(clock.now());
  for (const [name, value] of Object.entries(LIMITS)) metrics.gossipLimit.labels(name).set(value);
  // Per-peer gauges are computed when scraped.
  let limited = { ...core.stats.limited };
  let repairs = 0;
  const collect = (): void => {
    metrics.gossipLag.reset();
    metrics.gossipPeerState.reset();
    metrics.gossipClockOffset.reset();
    for (const p of peers()) {
      metrics.gossipLag.labels(p.id).set(p.lagMs / 1000);
      metrics.gossipPeerState.labels(p.id).set(p.state === 'up' ? 1 : p.state === 'suspect' ? 0.5 : 0);
      if (p.clockOffsetMs !== undefined) metrics.gossipClockOffset.labels(p.id).set(p.clockOffsetMs / 1000);
    }
    for (const [limit, count] of Object.entries(core.stats.limited)) {
      metrics.gossipLimited.labels(limit).inc(count - limited[limit as keyof typeof limited]);
    }
    limited = { ...core.stats.limited };
    metrics.gossipRepairs.inc(core.stats.repairs - repairs);
    repairs = core.stats.repairs;
    metrics.gossipMembers.set(core.memberCount);
    // Keys also arrive by gossip: count them when scraped, not only on local hits.
    metrics.keys.set(replica.state.keyCount);
    metrics.tokens.set(replica.state.tokens.size);
    metrics.gossipOrigins.set(replica.state.originCount);
  };
  metrics.beforeScrape(collect);

  // One log line per change of a peer's state, so a cluster's logs show partitions, crashes and heals.
  const stateChanges = new PeerStateChanges();
  const watchPeers = new PeriodicTask(async () => {
    try {
      judgeClock();
      for (const change of stateChanges.next(peers())) {
        const fields = { peer: change.id, address: change.address, was: change.from ?? 'unknown' };
        if (change.to === 'up') logger.info(fields, `peer ${change.id} up`);
        else logger.warn(fields, `peer ${change.id} ${change.to}`);
      }
    } catch (error) {
      logger.error({ err: error }, 'peer watch failed');
    }
  }, Math.max(50, Math.floor(config.syncIntervalMs / 2)));
  watchPeers.start();

  return {
    core,
    peers,
    freshness: () => core.freshness(clock.now()),
    forget: (id) => {
      const { found, outputs } = core.forget(id, clock.now());
      transport.apply(outputs);
      if (found) logger.warn({ peer: id }, `member ${id} forgotten`);
      return found;
    },
    settled,
    awaitAck: (origin, seq, level, timeoutMs) => ackWaiters.wait(origin, seq, level, timeoutMs),
    freshRead: (keys, plan, level, timeoutMs) => freshReads.read(keys, plan, level, timeoutMs),
    stop: async () => {
      dnsSeeds?.stop();
      ackWaiters.abandon();
      freshReads.abandon();
      await watchPeers.stop();
      await transport.stop();
    },
  };
}

/** --peers-dns: resolve the name now and every interval; its addresses become the core's named seeds. */
function watchSeedName(options: DnsSeedOptions, core: GossipCore, logger: Logger, metrics: NodeMetrics): DnsSeeds {
  let failing = false;
  const seeds = new DnsSeeds({ ...options, maxAddresses: LIMITS.maxMembers }, (addresses) => core.setNamedSeeds(addresses), {
    resolved: (result, addresses, detail) => {
      metrics.dnsSeedResolutions.labels(result).inc();
      metrics.dnsSeeds.set(addresses.length);
      const fields = { name: `${options.host}:${options.port}`, seeds: addresses.length };
      // One line per change, not per tick: a DNS outage is logged when it starts and when it ends.
      if (result !== 'ok' && !failing) logger.warn({ ...fields, result, err: detail.error }, 'peer DNS name gave no addresses; keeping the last ones');
      if (result === 'ok' && failing) logger.info(fields, 'peer DNS name resolves again');
      if (detail.changed) logger.info({ ...fields, addresses: addresses.slice(0, 20) }, 'peer DNS name: seed addresses changed');
      if (detail.cut && detail.changed) logger.warn(fields, `peer DNS name has more addresses than the member limit ${LIMITS.maxMembers}; dialing the first`);
      failing = result !== 'ok';
    },
  });
  seeds.start();
  return seeds;
}
