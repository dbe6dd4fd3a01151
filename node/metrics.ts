import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastHistogram } from './fast-histogram.ts';

/**
 * The node's Prometheus metrics, on a registry of its own so several nodes can
 * live in one process (tests). Names follow Prometheus conventions: the
 * hitmesh_ prefix on hitmesh's own, units in names, _total on counters; the
 * process and Node.js metrics keep their standard names (process_*, nodejs_*)
 * so stock dashboards and alerts find them.
 */
export class NodeMetrics {
  readonly registry = new Registry();

  readonly hitsAccepted = new Counter({
    name: 'hitmesh_hits_accepted_total',
    help: 'Hits acknowledged (durable in this node\'s store), summing n.',
    registers: [this.registry],
  });

  /** Observed on every request: see FastHistogram for why it is not prom-client's. */
  readonly httpRequestSeconds = new FastHistogram(
    'hitmesh_http_request_duration_seconds',
    'HTTP request latency by route, method and status code.',
    ['route', 'method', 'status_code'],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    this.registry,
  );

  readonly httpErrors = new Counter({
    name: 'hitmesh_http_errors_total',
    help: 'HTTP answers with a 4xx or 5xx status, by status code.',
    labelNames: ['status_code'] as const,
    registers: [this.registry],
  });

  readonly storeWriteSeconds = new Histogram({
    name: 'hitmesh_store_write_duration_seconds',
    help: 'Time to write one group-commit batch (its log record) to the store.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly storeBatchHits = new Histogram({
    name: 'hitmesh_store_batch_hits',
    help: 'Hits (summing n) per group-commit batch.',
    buckets: [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000],
    registers: [this.registry],
  });

  readonly checkpointSlots = new Histogram({
    name: 'hitmesh_checkpoint_slots',
    help: 'Slots written per checkpoint (log records turned into slots).',
    buckets: [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000],
    registers: [this.registry],
  });

  readonly checkpointSeconds = new Histogram({
    name: 'hitmesh_checkpoint_duration_seconds',
    help: 'Time to write one checkpoint.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly storeWriteErrors = new Counter({
    name: 'hitmesh_store_write_errors_total',
    help: 'Group-commit batches the store failed to write (their hits were refused).',
    registers: [this.registry],
  });

  readonly expiredBuckets = new Counter({
    name: 'hitmesh_expired_buckets_total',
    help: 'Buckets deleted because their tier\'s retention passed.',
    registers: [this.registry],
  });

  readonly evictedBuckets = new Counter({
    name: 'hitmesh_evicted_buckets_total',
    help: 'Buckets past the hot horizon dropped from memory (their counts are read from the store from then on).',
    registers: [this.registry],
  });

  readonly keys = new Gauge({
    name: 'hitmesh_keys',
    help: 'Distinct keys held in memory.',
    registers: [this.registry],
  });

  readonly tokens = new Gauge({
    name: 'hitmesh_idempotency_tokens',
    help: 'Idempotency tokens held (own and peers\'), kept for the 1 s tier\'s retention; new ones are refused at the limit.',
    registers: [this.registry],
  });

  readonly tokenRepeats = new Counter({
    name: 'hitmesh_idempotency_repeats_total',
    help: 'Hits answered as a repeat of an idempotency token already counted (nothing counted again).',
    registers: [this.registry],
  });

  readonly gossipFrames = new Counter({
    name: 'hitmesh_gossip_frames_total',
    help: 'Gossip frames by peer, direction (in/out) and message type.',
    labelNames: ['peer', 'direction', 'type'] as const,
    registers: [this.registry],
  });

  readonly gossipBytes = new Counter({
    name: 'hitmesh_gossip_bytes_total',
    help: 'Gossip bytes (msgpack frames) by peer and direction.',
    labelNames: ['peer', 'direction'] as const,
    registers: [this.registry],
  });

  readonly gossipRejected = new Counter({
    name: 'hitmesh_gossip_rejected_total',
    help: 'Gossip connections closed for a failed handshake (wrong secret, bad version) or a bad frame.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly gossipDeltasApplied = new Counter({
    name: 'hitmesh_gossip_deltas_applied_total',
    help: 'Delta frames applied from peers.',
    registers: [this.registry],
  });

  readonly gossipRowsApplied = new Counter({
    name: 'hitmesh_gossip_rows_applied_total',
    help: 'Delta rows that raised this node\'s state.',
    registers: [this.registry],
  });

  readonly gossipLag = new Gauge({
    name: 'hitmesh_gossip_replication_lag_seconds',
    help: 'Per peer: how long its newest change this node lacks has been waiting (0 when in sync).',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly gossipPeerState = new Gauge({
    name: 'hitmesh_gossip_peer_up',
    help: 'Per peer: 1 up, 0.5 suspect, 0 down.',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly gossipClockOffset = new Gauge({
    name: 'hitmesh_gossip_clock_offset_seconds',
    help: 'Per peer: its clock minus ours, from the last sync sample.',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly storeCorruptRecords = new Counter({
    name: 'hitmesh_store_corrupt_records_total',
    help: 'Stored records skipped at start-up because they did not decode (slot, log or meta).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly storeFailed = new Gauge({
    name: 'hitmesh_store_failed',
    help: '1 from a failed store write until the store is reopened (hits are refused meanwhile), else 0.',
    registers: [this.registry],
  });

  readonly storeReopens = new Counter({
    name: 'hitmesh_store_reopens_total',
    help: 'Times the store was closed and reopened on a fresh log after a failed write.',
    registers: [this.registry],
  });

  readonly storeRecoveryProblems = new Counter({
    name: 'hitmesh_store_recovery_problems_total',
    help: 'Problems LevelDB\'s own recovery reported at an open (dropped or corrupt log records), also logged.',
    registers: [this.registry],
  });

  readonly readsOverBudget = new Counter({
    name: 'hitmesh_reads_over_budget_total',
    help: 'Count requests refused (400) because keys x buckets would exceed the read budget (hitmesh_read_budget_bucket_reads).',
    registers: [this.registry],
  });

  readonly readBudget = new Gauge({
    name: 'hitmesh_read_budget_bucket_reads',
    help: 'The most bucket reads (keys x buckets of the plan) one count request may cost.',
    registers: [this.registry],
  });

  readonly incarnations = new Counter({
    name: 'hitmesh_incarnations_started_total',
    help: 'Times this node went on as a new incarnation while running (its clock went back, or peers held more of it than its store).',
    registers: [this.registry],
  });

  readonly clockSkewed = new Gauge({
    name: 'hitmesh_clock_skewed',
    help: '1 while most reachable peers find this node\'s clock off by more than --max-clock-skew (hits are refused), else 0.',
    registers: [this.registry],
  });

  readonly topRankings = new Counter({
    name: 'hitmesh_top_rankings_total',
    help: 'GET /top rankings by how they were answered: cover, sorted or union (from the index), scan (of every key), inexact (past --top-exact-keys).',
    labelNames: ['method'] as const,
    registers: [this.registry],
  });

  readonly gossipLimited = new Counter({
    name: 'hitmesh_gossip_limited_total',
    help: 'Times a gossip limit stopped something, by limit (members, origins, held, relays, handshakes).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly gossipLimit = new Gauge({
    name: 'hitmesh_gossip_limit',
    help: 'The gossip limits this node runs with (see README, Limits).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly dnsSeedResolutions = new Counter({
    name: 'hitmesh_dns_seed_resolutions_total',
    help: 'Resolutions of the --peers-dns name by outcome: ok, empty (no records; the last set is kept), error (the last set is kept).',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly dnsSeeds = new Gauge({
    name: 'hitmesh_dns_seeds',
    help: 'Seed addresses the --peers-dns name resolved to last (the set in force).',
    registers: [this.registry],
  });

  readonly gossipMembers = new Gauge({
    name: 'hitmesh_gossip_members',
    help: 'Members this node knows, itself included.',
    registers: [this.registry],
  });

  readonly gossipOrigins = new Gauge({
    name: 'hitmesh_gossip_origins',
    help: 'Origins (replica incarnations) this node holds counts of.',
    registers: [this.registry],
  });

  readonly gossipRepairs = new Counter({
    name: 'hitmesh_gossip_repairs_total',
    help: 'Repairs (anti-entropy transfers, sent in chunks) started towards peers.',
    registers: [this.registry],
  });

  readonly gossipFaults = new Counter({
    name: 'hitmesh_gossip_internal_errors_total',
    help: 'Errors thrown inside the gossip transport (caught: the connection involved was closed, the node went on).',
    registers: [this.registry],
  });

  readonly logLinesDropped = new Counter({
    name: 'hitmesh_log_lines_dropped_total',
    help: 'Log lines lost because the log destination failed (a file that cannot grow, a full disk, a closed pipe) or too many were waiting.',
    registers: [this.registry],
  });

  readonly httpLimit = new Gauge({
    name: 'hitmesh_http_limit',
    help: 'HTTP connection limits in force: max_connections (effective), max_connections_asked (--max-connections), open_files (RLIMIT_NOFILE), fd_reserve (README, Limits).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly httpTimeoutSeconds = new Gauge({
    name: 'hitmesh_http_timeout_seconds',
    help: 'HTTP timeouts in force: headers, request, keep_alive, socket_idle, check_interval (README, Limits).',
    labelNames: ['timeout'] as const,
    registers: [this.registry],
  });

  readonly httpConnectionsRefused = new Counter({
    name: 'hitmesh_http_connections_refused_total',
    help: 'Connections closed as they came because the most allowed at once were open.',
    registers: [this.registry],
  });

  readonly httpConnections = new Gauge({
    name: 'hitmesh_http_connections',
    help: 'Connections open on the HTTP port (gossip connections dialed by peers included).',
    registers: [this.registry],
  });

  private readonly requestSeries = new Map<string, { observe(seconds: number): void }>();

  /** Record one HTTP answer. Label children are cached: prom-client hashes labels on every lookup otherwise. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const id = `${route} ${method} ${status}`;
    let series = this.requestSeries.get(id);
    if (series === undefined) {
      series = this.httpRequestSeconds.child(route, method, String(status));
      this.requestSeries.set(id, series);
    }
    series.observe(seconds);
    if (status >= 400) this.httpErrors.labels(String(status)).inc();
  }

  private readonly scrapeHooks: (() => void)[] = [];

  /** Run `hook` before each scrape (gauges computed from live state). */
  beforeScrape(hook: () => void): void {
    this.scrapeHooks.push(hook);
  }

  /** The text exposition, after the scrape hooks ran. */
  async scrape(): Promise<string> {
    for (const hook of this.scrapeHooks) hook();
    return this.registry.metrics();
  }

  constructor(labels: { node: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    // prom-client names three gauges *_total, which promtool rejects (only counters end in _total);
    // nodejs_active_handles / _requests / _resources by type carry the same numbers.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }
}
