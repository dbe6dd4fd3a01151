/**
 * The clock guard (SPEC section 4, finding 6 of "Counts you can trust"), in
 * one process: three nodes, one of them with a clock the test moves. While
 * it is off from both others by more than --max-clock-skew it reports not
 * ready and answers hits with 503; the others go on; once its clock is back
 * it takes hits again, and every acknowledged hit is counted on every node.
 * Before, --max-clock-skew was parsed and nothing else.
 */
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../node/clock.ts';
import { converge, eventually, getJson, hit, peersUp, start, startWithClock, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

/** The system clock, off by `offsetMs` (the test sets it). */
class OffsetClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  monotonic(): number {
    return performance.now();
  }
}

const ready = async (url: string): Promise<{ status: number; body: { ready: boolean; reason?: string } }> => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
};

describe('the clock guard', () => {
  it('a node whose clock is off from most of its peers stops taking hits until it is back; the others go on', async () => {
    const clock = new OffsetClock();
    const fast = ['--sync-interval', '200ms'];
    const n1 = await start('n1', ...fast);
    const n2 = await start('n2', ...fast, '--peers', n1.address);
    const n3 = await startWithClock('n3', clock, ...fast, '--peers', `${n1.address},${n2.address}`);
    await peersUp(n3, [n1, n2]);
    await hit(n3, 'k');

    clock.offsetMs = 5_000;
    const refused = await eventually('n3 to report not ready', () => ready(n3.url), (r) => r.status === 503);
    expect(refused.body.reason).toMatch(/clock/);
    const answer = await fetch(`${n3.url}/hit/k`, { method: 'POST' });
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toMatch(/clock is off by more than 500 ms from 2 of 2/);
    // The others see n3's offset and stay ready: each has one peer off and one not, which is not most.
    for (const node of [n1, n2]) {
      expect((await ready(node.url)).status).toBe(200);
      const cluster = await getJson<{ peers: { id: string; clockOffsetMs: number | null }[] }>(`${node.url}/cluster`);
      expect(cluster.peers.find((p) => p.id === 'n3')?.clockOffsetMs).toBeGreaterThan(4_000);
      await hit(node, 'k');
    }
    const metrics = await (await fetch(`${n3.url}/metrics`)).text();
    expect(metrics).toMatch(/^hitmesh_clock_skewed\{[^}]*\} 1$/m);

    clock.offsetMs = 0;
    await eventually('n3 to be ready again', () => ready(n3.url), (r) => r.status === 200);
    await hit(n3, 'k');
    await converge([n1, n2, n3], { k: 4 });
  });
});
