/**
 * One logical request: attempts with a timeout each, retried with backoff on
 * the next node the breakers admit. A request carries everything that makes
 * a retry safe (the hit's Idempotency-Key, the batch items' ids) already, so
 * every attempt sends the same bytes.
 */
import { backoffDelayMs, type BackoffOptions } from './backoff.ts';
import { HitmeshAckTimeoutError, HitmeshHttpError, HitmeshNetworkError, HitmeshTimeoutError, HitmeshUnavailableError, type NodeFailure } from './errors.ts';
import type { NodePool, PoolNode } from './node-pool.ts';

export interface ApiRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Path and query, already encoded. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly answer: 'json' | 'text';
  /** How long the server may wait on purpose (`?timeout=` of ack/read); added to the attempt's timeout. */
  readonly serverWaitMs?: number;
}

export interface RetryPolicy {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoff: BackoffOptions;
  readonly fetch: typeof fetch;
  readonly token: string | undefined;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** Retried: the node may answer otherwise next time, or another node may. Every other status is the caller's to fix. */
const RETRIED_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

type AttemptOutcome =
  | { readonly kind: 'answer'; readonly value: unknown }
  | { readonly kind: 'refused'; readonly error: HitmeshHttpError }
  | { readonly kind: 'retry'; readonly error: NodeFailure['error']; readonly nodeFault: boolean };

export async function sendWithRetries(pool: NodePool, policy: RetryPolicy, request: ApiRequest): Promise<unknown> {
  const causes: NodeFailure[] = [];
  let from = pool.startIndex();
  for (let attempt = 0; attempt <= policy.retries; attempt++) {
    if (attempt > 0) await policy.sleep(backoffDelayMs(attempt - 1, policy.backoff, policy.random));
    const { node, index } = pool.pick(from);
    const outcome = await attemptOnce(node, policy, request);
    if (outcome.kind !== 'retry') {
      // The node answered: it is healthy even when the request was wrong.
      node.breaker.onSuccess();
      if (outcome.kind === 'refused') throw outcome.error;
      return outcome.value;
    }
    if (outcome.nodeFault) node.breaker.onFailure();
    else node.breaker.onNeutral();
    causes.push({ url: node.url, error: outcome.error });
    from = index + 1;
  }
  const ackTimeout = lastAckTimeout(causes);
  if (request.method === 'POST' && ackTimeout !== undefined) throw new HitmeshAckTimeoutError(ackTimeout.acked, ackTimeout.needed, causes);
  throw new HitmeshUnavailableError(causes);
}

async function attemptOnce(node: PoolNode, policy: RetryPolicy, request: ApiRequest): Promise<AttemptOutcome> {
  const url = `${node.url}${request.path}`;
  const timeoutMs = policy.timeoutMs + (request.serverWaitMs ?? 0);
  const signal = AbortSignal.timeout(timeoutMs);
  const headers: Record<string, string> = { ...request.headers };
  if (policy.token !== undefined) headers.authorization = `Bearer ${policy.token}`;
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  let status: number;
  let text: string;
  try {
    const init: RequestInit = { method: request.method, headers, signal };
    if (request.body !== undefined) init.body = JSON.stringify(request.body);
    const response = await policy.fetch(url, init);
    status = response.status;
    // Under the same signal: a body that stalls is a timeout too.
    text = await response.text();
  } catch (error) {
    if (signal.aborted) return { kind: 'retry', error: new HitmeshTimeoutError(url, timeoutMs), nodeFault: true };
    return { kind: 'retry', error: new HitmeshNetworkError(url, { cause: error }), nodeFault: true };
  }
  if (status >= 200 && status < 300) {
    if (request.answer === 'text') return { kind: 'answer', value: text };
    try {
      return { kind: 'answer', value: JSON.parse(text) as unknown };
    } catch (error) {
      // A 200 that is not JSON came from something in between (a proxy); on a hit route the token makes a retry safe.
      return { kind: 'retry', error: new HitmeshNetworkError(url, { cause: error }), nodeFault: true };
    }
  }
  const body = parseErrorBody(text);
  const message = typeof body?.error === 'string' ? body.error : '';
  const error = new HitmeshHttpError(status, message, url, body);
  if (!RETRIED_STATUSES.has(status)) return { kind: 'refused', error };
  // A quorum 504 (`needed` in the body) says the cluster is short of members, not that this node is sick.
  return { kind: 'retry', error, nodeFault: !(status === 504 && typeof body?.needed === 'number') };
}

function parseErrorBody(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The latest `ack=` 504 among the failures: proof that the hit counted somewhere. */
function lastAckTimeout(causes: readonly NodeFailure[]): { acked: number; needed: number } | undefined {
  for (let i = causes.length - 1; i >= 0; i--) {
    const error = causes[i]?.error;
    if (!(error instanceof HitmeshHttpError) || error.status !== 504) continue;
    const body = error.body as { acked?: unknown; needed?: unknown } | undefined;
    if (typeof body?.acked === 'number' && typeof body.needed === 'number') return { acked: body.acked, needed: body.needed };
  }
  return undefined;
}
