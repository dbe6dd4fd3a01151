/**
 * HitmeshClient: every route of the HTTP API over several node URLs, with
 * per-attempt timeouts, retries with backoff and failover, one
 * Idempotency-Key per logical hit, and a circuit breaker per node.
 */
import { DEFAULT_BACKOFF, checkBackoff, type BackoffOptions } from './backoff.ts';
import { DEFAULT_BREAKER, checkBreaker, type BreakerOptions, type BreakerState } from './breaker.ts';
import { NodePool } from './node-pool.ts';
import { sendWithRetries, type ApiRequest, type RetryPolicy } from './retry.ts';
import { countPath, countsPath, forgetMemberPath, hitPath, hitsPath, topPath } from './routes.ts';
import type {
  ClusterAnswer,
  CountAnswer,
  CountOptions,
  CountsAnswer,
  ForgetAnswer,
  HealthAnswer,
  HitAnswer,
  HitItem,
  HitOptions,
  HitsAnswer,
  HitsOptions,
  ReadyAnswer,
  TopAnswer,
  TopOptions,
} from './types.ts';

export interface HitmeshClientOptions {
  /** Base URLs of the nodes (`http://127.0.0.1:7001`), tried in turn. */
  readonly urls: readonly string[];
  /** Per attempt, not per call (default 5 s); stretched by a call's own server-side wait. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt (default 3), 0..MAX_RETRIES. */
  readonly retries?: number;
  readonly backoff?: BackoffOptions;
  readonly breaker?: BreakerOptions;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Sent as `Authorization: Bearer <token>` (nodes run with --api-token). */
  readonly token?: string;
  /** Source of [0, 1) for the jitter; for tests. */
  readonly random?: () => number;
  /** Clock of the breakers (ms); for tests. */
  readonly now?: () => number;
}

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_RETRIES = 3;
/**
 * Most retries a client may be given: with the longest backoff (60 s) that
 * bounds a call at about 20 minutes. More is a RangeError at construction;
 * when a call's retries run out it throws HitmeshUnavailableError (or
 * HitmeshAckTimeoutError) with every attempt's cause.
 */
export const MAX_RETRIES = 20;
/** Longest per-attempt timeout accepted (before a call's server-side wait is added). */
export const MAX_TIMEOUT_MS = 120_000;
/** What the server waits for `ack=`/`read=` when no timeout is given (README: default 5 s). */
const SERVER_DEFAULT_WAIT_MS = 5_000;

export class HitmeshClient {
  private readonly pool: NodePool;
  private readonly policy: RetryPolicy;

  constructor(options: HitmeshClientOptions) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMEOUT_MS)) throw new RangeError(`timeoutMs must be in 1..${MAX_TIMEOUT_MS}, got ${timeoutMs}`);
    const retries = options.retries ?? DEFAULT_RETRIES;
    if (!(Number.isInteger(retries) && retries >= 0 && retries <= MAX_RETRIES)) throw new RangeError(`retries must be an integer in 0..${MAX_RETRIES}, got ${retries}`);
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.pool = new NodePool(options.urls, checkBreaker(options.breaker ?? DEFAULT_BREAKER), options.now ?? Date.now);
    this.policy = {
      timeoutMs,
      retries,
      backoff: checkBackoff(options.backoff ?? DEFAULT_BACKOFF),
      fetch: fetchImpl,
      token: options.token,
      random: options.random ?? Math.random,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    };
  }

  /** Each node's URL and breaker state, e.g. for a dashboard. */
  nodes(): { readonly url: string; readonly breaker: BreakerState }[] {
    return this.pool.nodes.map((node) => ({ url: node.url, breaker: node.breaker.state }));
  }

  /**
   * POST /hit/:key. One token for this logical hit (the given one or a new
   * UUID) goes with every attempt on every node, so it counts once.
   */
  async hit(key: string, options: HitOptions = {}): Promise<HitAnswer> {
    const token = options.idempotencyKey ?? crypto.randomUUID();
    return (await this.send({
      method: 'POST',
      path: hitPath(key, options),
      headers: { 'idempotency-key': token },
      answer: 'json',
      serverWaitMs: serverWait(options.ack, options.timeoutMs),
    })) as HitAnswer;
  }

  /** POST /hits: all or nothing; every item without an id gets one, the same on every retry. */
  async hits(items: readonly HitItem[], options: HitsOptions = {}): Promise<HitsAnswer> {
    const body = items.map((item) => ({ key: item.key, ...(item.n === undefined ? {} : { n: item.n }), id: item.id ?? crypto.randomUUID() }));
    return (await this.send({ method: 'POST', path: hitsPath(options), body, answer: 'json', serverWaitMs: serverWait(options.ack, options.timeoutMs) })) as HitsAnswer;
  }

  /** GET /count/:key over a window (default 60s) or [from, to). */
  async count(key: string, options: CountOptions = {}): Promise<CountAnswer> {
    return (await this.get(countPath(key, options), serverWait(options.read, options.timeoutMs))) as CountAnswer;
  }

  /** GET /counts with repeated key= (any key, commas too), up to 1,000 keys. */
  async counts(keys: readonly string[], options: CountOptions = {}): Promise<CountsAnswer> {
    return (await this.get(countsPath(keys, options), serverWait(options.read, options.timeoutMs))) as CountsAnswer;
  }

  /** GET /top: the k keys with the most hits. */
  async top(options: TopOptions = {}): Promise<TopAnswer> {
    return (await this.get(topPath(options), serverWait(options.read, options.timeoutMs))) as TopAnswer;
  }

  /** GET /cluster of whichever node answers. */
  async cluster(): Promise<ClusterAnswer> {
    return (await this.get('/cluster')) as ClusterAnswer;
  }

  /**
   * DELETE /cluster/members/:id on whichever node answers. A retry after an
   * answer lost on the way can meet a 404 for a member the first attempt forgot.
   */
  async forgetMember(id: string): Promise<ForgetAnswer> {
    return (await this.send({ method: 'DELETE', path: forgetMemberPath(id), answer: 'json' })) as ForgetAnswer;
  }

  /** GET /healthz. */
  async health(): Promise<HealthAnswer> {
    return (await this.get('/healthz')) as HealthAnswer;
  }

  /** GET /readyz: a node that is not ready (503) is retried like any, so this resolves from a ready node or throws. */
  async ready(): Promise<ReadyAnswer> {
    return (await this.get('/readyz')) as ReadyAnswer;
  }

  /** GET /metrics: Prometheus text. */
  async metrics(): Promise<string> {
    return (await this.send({ method: 'GET', path: '/metrics', answer: 'text' })) as string;
  }

  private get(path: string, serverWaitMs?: number): Promise<unknown> {
    return this.send({ method: 'GET', path, answer: 'json', ...(serverWaitMs === undefined ? {} : { serverWaitMs }) });
  }

  private send(request: ApiRequest): Promise<unknown> {
    return sendWithRetries(this.pool, this.policy, request);
  }
}

/** How long the server may wait on purpose before answering. */
function serverWait(level: string | undefined, timeoutMs: number | undefined): number {
  if (level === undefined || level === 'local') return 0;
  return timeoutMs ?? SERVER_DEFAULT_WAIT_MS;
}
