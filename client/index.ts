/** hitmesh/client: a typed client of the hitmesh HTTP API (SPEC section 8). */
export { HitmeshClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, MAX_RETRIES, MAX_TIMEOUT_MS, type HitmeshClientOptions } from './client.ts';
export { DEFAULT_BACKOFF, MAX_BACKOFF_MS, backoffDelayMs, type BackoffOptions } from './backoff.ts';
export { CircuitBreaker, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from './breaker.ts';
export {
  HitmeshAckTimeoutError,
  HitmeshHttpError,
  HitmeshInputError,
  HitmeshNetworkError,
  HitmeshTimeoutError,
  HitmeshUnavailableError,
  type HitmeshError,
  type NodeFailure,
} from './errors.ts';
export type * from './types.ts';
