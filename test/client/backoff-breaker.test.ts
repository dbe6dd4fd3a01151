/** Backoff bounds and the breaker's states, on their own with a fake clock and random source. */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, backoffDelayMs } from '../../client/index.ts';

describe('backoffDelayMs', () => {
  const backoff = { baseMs: 100, maxMs: 1_000 };

  it('stays in [0, min(maxMs, baseMs·2^r)) with full jitter', () => {
    for (let retry = 0; retry < 12; retry++) {
      const ceiling = Math.min(1_000, 100 * 2 ** retry);
      expect(backoffDelayMs(retry, backoff, () => 0)).toBe(0);
      expect(backoffDelayMs(retry, backoff, () => 0.999999)).toBe(ceiling - 1);
      expect(backoffDelayMs(retry, backoff, () => 0.5)).toBe(ceiling / 2);
    }
  });

  it('spreads real random waits over the whole range and never past maxMs, even for huge retry numbers', () => {
    const waits = Array.from({ length: 2_000 }, () => backoffDelayMs(3, backoff));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...waits)).toBeLessThan(800);
    // Full jitter: both halves of [0, 800) are used.
    expect(waits.some((w) => w < 200)).toBe(true);
    expect(waits.some((w) => w >= 600)).toBe(true);
    expect(backoffDelayMs(5_000, backoff, () => 0.999999)).toBe(999);
  });
});

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures, goes half-open after openMs with one probe, closes on success', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 3, openMs: 5_000 }, () => now);
    breaker.onFailure();
    breaker.onFailure();
    breaker.onSuccess(); // the count is of consecutive failures
    breaker.onFailure();
    breaker.onFailure();
    expect(breaker.state).toBe('closed');
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    now = 4_999;
    expect(breaker.tryAcquire()).toBe(false);
    now = 5_000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false); // one probe at a time
    breaker.onSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('opens again for another openMs when the probe fails', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 1, openMs: 1_000 }, () => now);
    breaker.onFailure();
    now = 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.onFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.openedAt).toBe(1_000);
    now = 1_999;
    expect(breaker.tryAcquire()).toBe(false);
    now = 2_000;
    expect(breaker.tryAcquire()).toBe(true);
  });
});
