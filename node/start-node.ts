import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { buildApp } from '../api/app.ts';
import { splitAddress } from '../crdt/names.ts';
import { systemClock, type Clock } from './clock.ts';
import { connectionLimit, HTTP_TIMEOUTS, type HttpTimeouts, type NodeConfig } from './config.ts';
import { LevelStore } from './level-store.ts';
import { createLogger, LogDestination, type Logger } from './logger.ts';
import { NodeMetrics } from './metrics.ts';
import { Replica } from './replica.ts';
import { loadTls } from './tls-files.ts';
import { startReplication, type Replication } from './replication.ts';
import type { Store } from './store.ts';

/** A node that is up: its replica, its HTTP app and how to stop it. */
export interface RunningNode {
  readonly url: string;
  readonly address: string;
  readonly replica: Replica;
  readonly app: FastifyInstance;
  readonly logger: Logger;
  readonly replication: Replication;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly store?: Store;
  /** How long a stop waits for requests in flight before closing their connections. */
  readonly shutdownGraceMs?: number;
  /** HTTP timeouts other than the defaults (tests that must outwait them). */
  readonly httpTimeouts?: Partial<HttpTimeouts>;
}

/** Open the store, rebuild the replica and listen. Used by main and by in-process tests. */
export async function startNode(config: NodeConfig, options: StartOptions = {}): Promise<RunningNode> {
  const destination = options.logger === undefined ? new LogDestination() : undefined;
  const logger = options.logger ?? createLogger(config.id, config.logLevel, destination);
  const metrics = new NodeMetrics({ node: config.id });
  let droppedSeen = 0;
  metrics.beforeScrape(() => {
    const dropped = destination?.dropped ?? 0;
    if (dropped > droppedSeen) metrics.logLinesDropped.inc(dropped - droppedSeen);
    droppedSeen = dropped;
  });
  // Before the store opens: a limit too low to run on stops the start here.
  const connections = connectionLimit(config.maxConnections, openFilesLimit());
  if (connections.effective < connections.asked) {
    logger.warn(
      { maxConnections: connections.asked, effective: connections.effective, openFiles: connections.openFiles, reserve: connections.reserve },
      `lowering --max-connections from ${connections.asked} to ${connections.effective}: the open files limit is ${connections.openFiles} and ${connections.reserve} descriptors are kept for the store and gossip (raise ulimit -n for more)`,
    );
  }
  for (const [limit, value] of [['max_connections', connections.effective], ['max_connections_asked', connections.asked], ['open_files', connections.openFiles], ['fd_reserve', connections.reserve]] as const) {
    if (value !== undefined) metrics.httpLimit.labels(limit).set(value);
  }
  // Before the store opens too: a missing or mismatched file is the flag's fault, said as such.
  const tls = config.tls === undefined ? undefined : loadTls(config.tls);
  const replica = await Replica.open({
    store: options.store ?? new LevelStore(config.dataDir, { fsync: config.fsync }),
    id: config.id,
    retention: config.retention,
    clock: options.clock ?? systemClock,
    logger,
    metrics,
    gcIntervalMs: config.gcIntervalMs,
    checkpointIntervalMs: config.checkpointIntervalMs,
    maxTokens: config.maxTokens,
    topIndex: config.topIndex,
    topExactKeys: config.topExactKeys,
    hotHorizonMs: config.hotHorizonMs,
    coldCacheEntries: config.coldCacheEntries,
    // Small steps back are absorbed (stamps wait for the clock); a bigger one starts a new incarnation.
    maxBackwardJumpMs: Math.max(1_000, config.maxClockSkewMs),
  });
  let advertise = config.advertise;
  // Gossip starts once the port (and so the advertised address) is known; the app asks it through this.
  const gossip: { current?: Replication } = {};
  const app = await buildApp({
    replica,
    metrics,
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    advertise: () => advertise,
    freshness: () => gossip.current?.freshness() ?? { peers: 0, synced: 0, maxLagMs: 0 },
    peers: () => gossip.current?.peers() ?? [],
    forgetMember: (id) => gossip.current?.forget(id) ?? false,
    // Before gossip starts (the moment between listen and replication) these are undefined: the API answers as a lone node.
    freshRead: (keys, plan, level, timeoutMs) => gossip.current?.freshRead(keys, plan, level, timeoutMs),
    awaitAck: (origin, seq, level, timeoutMs) => gossip.current?.awaitAck(origin, seq, level, timeoutMs),
  }, { timeouts: { ...HTTP_TIMEOUTS, ...options.httpTimeouts }, maxConnections: connections.effective }, { tls, apiToken: config.apiToken });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await replica.close();
    throw error;
  }
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : config.port;
  const host = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
  if (config.port === 0) advertise = `${host}:${port}`;
  const url = `${tls === undefined ? 'http' : 'https'}://${host}:${port}`;
  const running = startReplication({
    replica,
    server: app.server,
    address: advertise,
    seeds: config.peers,
    secret: config.secret,
    static: config.static,
    clock: options.clock ?? systemClock,
    logger,
    metrics,
    maxClockSkewMs: config.maxClockSkewMs,
    tls,
    dnsSeeds: config.peersDns === undefined ? undefined : { ...splitAddress(config.peersDns), intervalMs: config.peersDnsIntervalMs, server: config.dnsServer },
    gossip: {
      forgetAfterMs: config.forgetAfterMs,
      pushIntervalMs: config.pushIntervalMs,
      syncIntervalMs: config.syncIntervalMs,
      // Failure detection scales with the heartbeat.
      suspectAfterMs: 3 * config.syncIntervalMs,
      downAfterMs: 6 * config.syncIntervalMs,
    },
  });
  gossip.current = running;
  logger.info({ url, data: config.dataDir, origin: replica.identity.origin }, 'node listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    // Stop taking requests (in-flight ones finish), write the pending batch, close the store.
    stopping ??= (async () => {
      // A client that never finishes its request must not hold the stop forever.
      const force = setTimeout(() => {
        logger.warn('requests still open after the grace period; closing their connections');
        app.server.closeAllConnections();
      }, options.shutdownGraceMs ?? 10_000);
      await running.stop();
      await app.close();
      clearTimeout(force);
      await replica.close();
      logger.info('node stopped');
    })();
    return stopping;
  };
  return { url, address: `${host}:${port}`, replica, app, logger, replication: running, stop };
}


/**
 * The soft RLIMIT_NOFILE, which Node raised to the hard limit at start-up:
 * from /proc/self/limits on Linux; undefined elsewhere or when unlimited.
 */
function openFilesLimit(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft === undefined || !/^[0-9]+$/.test(soft) ? undefined : Number(soft);
}
