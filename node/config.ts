import { DEFAULT_RETENTION, type Retention } from '../crdt/retention.ts';
import { Tier } from '../crdt/tiers.ts';
import { DEFAULT_COLD_CACHE_ENTRIES } from './cold-slots.ts';

/** Everything one node is started with. Units are in the names. */
export interface NodeConfig {
  /** Human name of the node, shown in answers, logs and metrics. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Seed peers as host:port (used by gossip). */
  readonly peers: readonly string[];
  /** LevelDB directory. */
  readonly dataDir: string;
  /** Cluster secret peers prove on the gossip handshake. */
  readonly secret: string | undefined;
  /** host:port other nodes should dial for this node. */
  readonly advertise: string;
  /** Dial only the seed peers; learn no other addresses. */
  readonly static: boolean;
  /** Largest clock offset from peers before the node stops taking hits. */
  readonly maxClockSkewMs: number;
  /** A member without a connection this long is forgotten (not dialed, not counted). */
  readonly forgetAfterMs: number;
  /** Acknowledge a hit only once its batch is fsynced (survives power loss). */
  readonly fsync: boolean;
  /** Allow a non-loopback host without a secret. */
  readonly insecure: boolean;
  readonly retention: Retention;
  /** Largest accepted request body. */
  readonly bodyLimitBytes: number;
  /** How often expired buckets are deleted. */
  readonly gcIntervalMs: number;
  /** How often the write-ahead log is turned into slots (longer: fewer writes, longer replay after a crash). */
  readonly checkpointIntervalMs: number;
  readonly logLevel: string;
  /** Local commits are pushed to peers this often, batched. */
  readonly pushIntervalMs: number;
  /** Version vectors, membership and clock samples are exchanged this often (also the heartbeat). */
  readonly syncIntervalMs: number;
  /** Most connections open on the HTTP port at once (gossip from peers included); more are closed as they come. */
  readonly maxConnections: number;
  /** Most idempotency tokens held (own and peers'); past it hits with a new token are refused (503). */
  readonly maxTokens: number;
  /** Minute, hour and day buckets are held in memory until this long after they end, then read from the store (Infinity: held for good). */
  readonly hotHorizonMs: number;
  /** Most cold bucket counts cached in memory. */
  readonly coldCacheEntries: number;
  /** Keep the ranking index (GET /top); without it a ranking counts every key. */
  readonly topIndex: boolean;
  /** A ranking the index cannot prove counts every key while the node holds at most this many; past it the answer is inexact, with its error bound. */
  readonly topExactKeys: number;
  /** Clients must send `Authorization: Bearer <token>`; undefined: the API is open. */
  readonly apiToken: string | undefined;
  /** Serve HTTPS and wss gossip; undefined: plain HTTP and ws. */
  readonly tls: TlsFiles | undefined;
  /** host:port whose A/AAAA records are seed peers (a Kubernetes headless Service). */
  readonly peersDns: string | undefined;
  /** How often --peers-dns is resolved again. */
  readonly peersDnsIntervalMs: number;
  /** The DNS server --peers-dns asks (host:port); undefined: the system resolver. */
  readonly dnsServer: string | undefined;
}

/** PEM files of --tls-cert, --tls-key and --tls-ca. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Peers' certificates must chain to this CA; undefined: the system's CAs and the usual host-name check. */
  readonly caFile: string | undefined;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 7001,
  maxClockSkewMs: 500,
  forgetAfterMs: 24 * 3_600_000,
  retention: DEFAULT_RETENTION,
  bodyLimitBytes: 1024 * 1024,
  gcIntervalMs: 60_000,
  checkpointIntervalMs: 5_000,
  pushIntervalMs: 20,
  syncIntervalMs: 1_000,
  logLevel: 'info',
  maxConnections: 10_000,
  maxTokens: 1_000_000,
  hotHorizonMs: DEFAULT_RETENTION[Tier.second],
  coldCacheEntries: DEFAULT_COLD_CACHE_ENTRIES,
  topExactKeys: 1_000_000,
  peersDnsIntervalMs: 5_000,
} as const;

/** How long the HTTP server waits on a client (README, Limits). */
export interface HttpTimeouts {
  /** A request's headers must be in this long after it began (after the connection opened, for the first). */
  readonly headersMs: number;
  /** A whole request, headers and body, must be in within this. */
  readonly requestMs: number;
  /** A keep-alive connection with no request is closed after this. */
  readonly keepAliveMs: number;
  /** A socket on which nothing moves (a response nobody reads) is closed after this; above any wait a request may ask for. */
  readonly socketIdleMs: number;
  /** How often the headers and request timeouts are checked: one is enforced up to this late. */
  readonly checkIntervalMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, socketIdleMs: 120_000, checkIntervalMs: 1_000 };

/**
 * Descriptors that connections may not take (README, Limits): the process at
 * rest holds about 30 (stdio, libuv's epoll, eventfds and pipes, LevelDB's
 * LOCK, LOG, MANIFEST and log, the listener); LevelDB opens a few more to
 * switch logs and compact, and each table file briefly before it maps it;
 * then DNS lookups and one socket per gossip peer this node dials (64 here).
 */
export const FD_RESERVE = 128;
/** An open-files limit that leaves fewer connections than this is refused at start-up. */
export const MIN_CONNECTIONS = 16;

export interface ConnectionLimit {
  /** --max-connections as asked. */
  readonly asked: number;
  /** What the node holds: asked, or less when the open-files limit minus the reserve is smaller. */
  readonly effective: number;
  /** The open-files limit (RLIMIT_NOFILE), undefined when unknown or unlimited. */
  readonly openFiles: number | undefined;
  readonly reserve: number;
}

/** --max-connections under an open-files limit; throws when the limit leaves too little room to run. */
export function connectionLimit(asked: number, openFiles: number | undefined): ConnectionLimit {
  const room = openFiles === undefined ? Infinity : openFiles - FD_RESERVE;
  if (room < Math.min(asked, MIN_CONNECTIONS)) {
    throw new Error(
      `the open files limit (${openFiles}) leaves room for ${Math.max(room, 0)} connections after the ${FD_RESERVE} descriptors kept for the store and gossip; at least ${MIN_CONNECTIONS} are needed: raise it (ulimit -n)`,
    );
  }
  return { asked, effective: Math.min(asked, room), openFiles, reserve: FD_RESERVE };
}

/** Largest batch of POST /hits, in items. */
export const MAX_BATCH_ITEMS = 10_000;
/** Largest n of a single hit. */
export const MAX_HIT_N = 1_000_000;
export { MAX_KEY_BYTES } from '../crdt/key.ts';
/** Most keys one GET /counts may ask for. */
export const MAX_COUNT_KEYS = 1_000;
