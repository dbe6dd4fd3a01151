/**
 * Exactly once against a real 3-node cluster: the client reaches each node
 * through a TCP fault proxy of its own. Mid-load one node is killed with
 * SIGKILL and another node's proxy, slowed first past the client's timeout
 * (hits count there but their answers come too late), is cut; later the cut heals and the
 * killed node restarts on its data dir. Every logical hit must succeed
 * (retries with failover, one token each), and every node must then count
 * every key exactly as often as it was hit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HitmeshClient } from '../../client/index.ts';
import { FaultProxy } from '../../scripts/lib/fault-proxy.ts';
import { sleep } from '../process/node-process.ts';
import { useProxiedCluster } from '../process/proxied-cluster-test.ts';

const KEYS = ['home', 'a+b', 'x,y', 'café ✓'];
const WORKERS = 6;
/** Between two logical hits of one worker, so the faults land mid-load. */
const PAUSE_MS = 20;

describe('HitmeshClient against a real cluster', () => {
  const clusters = useProxiedCluster('hitmesh-client-');
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
  });

  it('counts every logical hit exactly once through a kill -9, a cut and their repair', async () => {
    const cluster = await clusters.start(['n1', 'n2', 'n3']);
    const [n1, n2, n3] = cluster.nodes;
    if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('three nodes expected');
    for (const node of cluster.nodes) proxies.push(await FaultProxy.start({ target: { host: '127.0.0.1', port: node.options.port } }));
    const [, , n3Proxy] = proxies;
    if (n3Proxy === undefined) throw new Error('three proxies expected');

    // Counts failed attempts, so the test knows the faults were met and retried.
    let failedAttempts = 0;
    const countingFetch: typeof fetch = async (input, init) => {
      try {
        const response = await fetch(input, init);
        if (response.status >= 500) failedAttempts++;
        return response;
      } catch (error) {
        failedAttempts++;
        throw error;
      }
    };
    const client = new HitmeshClient({
      urls: proxies.map((proxy) => `http://${proxy.address}`),
      timeoutMs: 500,
      retries: 20,
      backoff: { baseMs: 20, maxMs: 300 },
      breaker: { failures: 3, openMs: 500 },
      fetch: countingFetch,
    });

    const expected = new Map(KEYS.map((key) => [key, 0]));
    let sent = 0;
    /** `total` logical hits from WORKERS workers; every third is a batch of two items. */
    const load = async (total: number, onProgress: (done: number) => void): Promise<void> => {
      let done = 0;
      const worker = async (): Promise<void> => {
        while (sent < total) {
          const i = sent++;
          const key = KEYS[i % KEYS.length] ?? 'home';
          if (i % 3 === 0) {
            const other = KEYS[(i + 1) % KEYS.length] ?? 'home';
            const answer = await client.hits([{ key, n: 2 }, { key: other }]);
            expect(answer.accepted + (answer.duplicates ?? 0)).toBeGreaterThan(0);
            expected.set(key, (expected.get(key) ?? 0) + 2);
            expected.set(other, (expected.get(other) ?? 0) + 1);
          } else {
            const answer = await client.hit(key);
            expect(answer.key).toBe(key);
            expected.set(key, (expected.get(key) ?? 0) + 1);
          }
          onProgress(++done);
          await sleep(PAUSE_MS);
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, () => worker()));
    };

    let restart: Promise<void> | undefined;
    await load(360, (done) => {
      // A slow link: n3 counts each hit, but its answer comes after the client's timeout, so the client
      // retries a hit that counted, on another node: only the shared token keeps it from counting twice.
      if (done === 60) n3Proxy.delay(300);
      if (done === 140) {
        n2.kill().catch(() => undefined);
        n3Proxy.cut();
      }
      if (done === 240) {
        n3Proxy.heal();
        restart = n2.start();
      }
    });
    if (restart === undefined) throw new Error('the load ended before the repair');
    await restart;
    const failuresDuringFaults = failedAttempts;
    // After the repair, more hits: n2's breaker closes again and it takes its share.
    await load(360 + 90, () => undefined);
    expect(failuresDuringFaults).toBeGreaterThan(0);
    expect(client.nodes().map((n) => n.breaker)).toEqual(['closed', 'closed', 'closed']);

    // Each node read on its own (direct, no retries hiding a node), until gossip converges.
    const readers = cluster.nodes.map((node) => new HitmeshClient({ urls: [node.url], retries: 0 }));
    const want = Object.fromEntries(expected);
    const countsOnEveryNode = () => Promise.all(readers.map(async (reader) => (await reader.counts(KEYS, { window: 'all' })).counts));
    const deadline = Date.now() + 20_000;
    let seen = await countsOnEveryNode();
    while (!seen.every((counts) => KEYS.every((key) => counts[key] === want[key])) && Date.now() < deadline) {
      await sleep(200);
      seen = await countsOnEveryNode();
    }
    expect(seen).toEqual([want, want, want]);
    // Grow-only counts: a late duplicate would show now as an excess.
    await sleep(1_000);
    expect(await countsOnEveryNode()).toEqual([want, want, want]);
    expect(Object.values(want).reduce((a, b) => a + b, 0)).toBe(300 + 150 * 3);
  }, 90_000);
});
