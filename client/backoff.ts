/**
 * Exponential backoff with full jitter: before retry r (0-based) the client
 * waits a uniform random time in [0, min(maxMs, baseMs · 2^r)), so clients
 * that failed together do not retry together.
 */

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 50, maxMs: 2_000 };

/** Largest `maxMs` accepted: a longer wait between two attempts is a RangeError at construction, not a hang. */
export const MAX_BACKOFF_MS = 60_000;

export function checkBackoff(backoff: BackoffOptions): BackoffOptions {
  const { baseMs, maxMs } = backoff;
  if (!(Number.isFinite(baseMs) && baseMs > 0)) throw new RangeError(`backoff.baseMs must be a number > 0, got ${baseMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= baseMs && maxMs <= MAX_BACKOFF_MS)) {
    throw new RangeError(`backoff.maxMs must be in [baseMs, ${MAX_BACKOFF_MS}], got ${maxMs}`);
  }
  return { baseMs, maxMs };
}

/** The wait before retry `retry` (0 for the first retry); `random` returns [0, 1). */
export function backoffDelayMs(retry: number, backoff: BackoffOptions, random: () => number = Math.random): number {
  // 2^r overflows to Infinity past r ≈ 1024; min() keeps the ceiling finite at maxMs.
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry));
  return Math.floor(random() * ceiling);
}
