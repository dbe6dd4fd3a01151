import { DEFAULT_RETENTION, type Retention } from '../crdt/retention.ts';

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
} as const;

/** Largest batch of POST /hits, in items. */
export const MAX_BATCH_ITEMS = 10_000;
/** Largest n of a single hit. */
export const MAX_HIT_N = 1_000_000;
export { MAX_KEY_BYTES } from '../crdt/key.ts';
/** Most keys one GET /counts may ask for. */
export const MAX_COUNT_KEYS = 1_000;
