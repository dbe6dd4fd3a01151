/**
 * GET /top between real nodes (SPEC section 3): random skewed hits with
 * ties, taken on three nodes at once, gossiped; once converged every node
 * ranks every window, prefix and k exactly as brute force over the hits
 * sent, and again after a restart; read=all ranks with a peer's hit the moment it is taken; and every bad parameter is a 400 that changes nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunningNode } from '../../node/start-node.ts';
import { converge, getJson, hits, peersUp, restart, start, starThroughProxies, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

interface TopAnswer {
  top: { key: string; count: number }[];
  exact: boolean;
  maxError: number | null;
  freshness: { answered?: string[] };
}

const topOf = (node: RunningNode, query: string): Promise<TopAnswer> => getJson<TopAnswer>(`${node.url}/top?${query}`);

function ranked(totals: Record<string, number>, k: number, prefix: string): { key: string; count: number }[] {
  return Object.entries(totals)
    .filter(([key]) => key.startsWith(prefix))
    .map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1))
    .slice(0, k);
}

describe('GET /top between nodes', () => {
  it('after gossip, every node ranks every window, prefix and k as brute force does', async () => {
    const n1 = await start('n1');
    const n2 = await start('n2', '--peers', n1.address);
    const n3 = await start('n3', '--peers', n1.address);
    const nodes = [n1, n2, n3];
    await peersUp(n1, [n2, n3]);
    const totals: Record<string, number> = {};
    // 3,000 hits over 300 keys, skewed (a square of a uniform pick), n 1..3 so counts tie often.
    const items = fc.sample(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 })), { numRuns: 3_000, seed: 11 });
    const batches: { key: string; n: number }[][] = [[], [], []];
    for (const [u, n, at] of items) {
      const i = Math.floor(u * u * 300);
      const key = `${['page/', 'api/', ''][i % 3]}k${i}`;
      totals[key] = (totals[key] ?? 0) + n;
      batches[at]?.push({ key, n });
    }
    await Promise.all(nodes.map((node, i) => hits(node, batches[i] ?? [])));
    await converge(nodes, totals);
    for (const node of nodes) {
      for (const [window, k, prefix] of [['all', 10, ''], ['60s', 10, ''], ['1h', 1000, ''], ['60s', 25, 'page/'], ['all', 5, 'api/k1'], ['1h', 3, 'none/']] as const) {
        const query = `window=${window}&k=${k}${prefix === '' ? '' : `&prefix=${encodeURIComponent(prefix)}`}`;
        const answer = await topOf(node, query);
        expect(answer.top, query).toEqual(ranked(totals, k, prefix));
        expect(answer.exact).toBe(true);
        expect(answer.maxError).toBe(0);
      }
    }
    // The index is rebuilt from the store on a restart: the same ranking after one.
    const again = await restart(n2);
    expect((await topOf(again, 'window=all&k=50')).top).toEqual(ranked(totals, 50, ''));
    expect((await topOf(again, 'window=1h&k=20&prefix=page%2F')).top).toEqual(ranked(totals, 20, 'page/'));
  });

  it('read=all ranks at once with what a peer has just counted', async () => {
    const [n1, n2] = await starThroughProxies(0);
    await hits(n1, [{ key: 'old', n: 5 }, { key: 'new', n: 1 }]);
    for (let i = 1; i <= 5; i++) {
      // The hit is pushed within a push interval; the fresh read must not wait for it.
      await hits(n2, [{ key: 'new', n: 2 }]);
      const fresh = await topOf(n1, 'window=all&read=all&timeout=20s');
      expect(fresh.top).toEqual(ranked({ new: 1 + 2 * i, old: 5 }, 10, ''));
      expect(fresh.exact).toBe(false);
      expect(fresh.freshness.answered).toHaveLength(3);
    }
  });

  it('answers every bad parameter with a 400 naming it', async () => {
    const n1 = await start('n1');
    for (const query of ['k=0', 'k=1001', 'k=ten', 'k=1.5', 'k=', 'prefix=', 'prefix=%00', `prefix=${'x'.repeat(300)}`, 'window=0s', 'window=soon', 'from=10&to=5', 'read=some', 'read=all&timeout=0s', 'what=1', 'k=1&k=2']) {
      const res = await fetch(`${n1.url}/top?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { error: string }).error, query).toBeTruthy();
    }
    const empty = await topOf(n1, 'k=1000&window=all');
    expect(empty).toMatchObject({ top: [], exact: true, maxError: 0 });
  });
});
