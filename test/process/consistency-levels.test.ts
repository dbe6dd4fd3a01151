/**
 * `?ack=` and `?read=` between real node processes (SPEC section 3), every
 * link through a TCP fault proxy: with all members up, an `ack=all` hit is
 * counted by a plain read on every node the moment the 200 comes; a hit one
 * node alone took is in `read=all` on another at once; with every link
 * delaying each chunk by 300 ms the same holds (and cannot come sooner than
 * a round trip); with one member killed, majority still answers and all is
 * a 504 naming what it got, while the hit counts all the same.
 */
import { describe, expect, it } from 'vitest';
import type { ProxiedCluster } from '../../scripts/partition/proxied-cluster.ts';
import { call, useProxiedCluster, type Answer } from './proxied-cluster-test.ts';

const clusters = useProxiedCluster('hitmesh-levels-');

const countAt = async (url: string, key: string, query = ''): Promise<Answer> => call('GET', `${url}/count/${key}?window=all${query}`);

async function meshUp(c: ProxiedCluster): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const views = await Promise.all(c.nodes.map(async (n) => (await call('GET', `${n.url}/cluster`)).body as { peers: { state: string }[] }));
    if (views.every((v) => v.peers.length === c.nodes.length - 1 && v.peers.every((p) => p.state === 'up'))) return;
    if (Date.now() > deadline) throw new Error(`no full mesh: ${JSON.stringify(views.map((v) => v.peers))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('consistency levels between node processes', () => {
  it('ack=all is read anywhere at once; a lone write is in read=all at once; both over links delayed 300 ms too', { timeout: 90_000 }, async () => {
    const cluster = await clusters.start(['n1', 'n2', 'n3']);
    await meshUp(cluster);
    const [n1, n2, n3] = cluster.nodes.map((n) => n.url) as [string, string, string];
    for (let i = 1; i <= 10; i++) {
      const acked = await call('POST', `${n1}/hit/all-k?ack=all`);
      expect(acked.status).toBe(200);
      expect(acked.body).toMatchObject({ acked: 3, needed: 3 });
      for (const url of [n2, n3]) expect((await countAt(url, 'all-k')).body.count).toBe(i);
      expect((await call('POST', `${n2}/hit/lone-k`)).status).toBe(200);
      // A long timeout: on a loaded CI machine a peer's answer once took more than the default 5 s (a 504, not a wrong count).
      const fresh = await countAt(n3, 'lone-k', '&read=all&timeout=20s');
      expect(fresh.status).toBe(200);
      expect(fresh.body.count).toBe(i);
    }
    cluster.slow(['n1'], ['n2', 'n3'], { delayMs: 300, bytesPerSecond: 10_000_000 });
    cluster.slow(['n2'], ['n3'], { delayMs: 300, bytesPerSecond: 10_000_000 });
    const t0 = Date.now();
    const slowAck = await call('POST', `${n1}/hit/slow-k?ack=all&timeout=20s`);
    expect(slowAck.status).toBe(200);
    expect(Date.now() - t0, 'a push and its held frame each cross a delayed link').toBeGreaterThanOrEqual(600);
    for (const url of [n2, n3]) expect((await countAt(url, 'slow-k')).body.count).toBe(1);
    expect((await call('POST', `${n2}/hit/slow-lone`)).status).toBe(200);
    const slowFresh = await countAt(n1, 'slow-lone', '&read=all&timeout=20s');
    expect(slowFresh.status).toBe(200);
    expect(slowFresh.body.count).toBe(1);
  });

  it('with one member killed, majority answers, all is a 504, and the hit counts all the same', { timeout: 60_000 }, async () => {
    const cluster = await clusters.start(['n1', 'n2', 'n3']);
    await meshUp(cluster);
    const [a, b, c] = cluster.nodes;
    if (a === undefined || b === undefined || c === undefined) throw new Error('three nodes');
    await c.kill();
    const majority = await call('POST', `${a.url}/hit/k?ack=majority&timeout=5s`);
    expect(majority.status).toBe(200);
    expect(majority.body).toMatchObject({ acked: 2, needed: 2 });
    const all = await call('POST', `${a.url}/hit/k?ack=all&timeout=500ms`);
    expect(all.status).toBe(504);
    expect(all.body).toMatchObject({ acked: 2, needed: 3 });
    const readAll = await countAt(a.url, 'k', '&read=all&timeout=500ms');
    expect(readAll.status).toBe(504);
    expect(readAll.body).toMatchObject({ answered: ['n1', 'n2'], needed: 3 });
    const readMajority = await countAt(b.url, 'k', '&read=majority&timeout=5s');
    expect(readMajority.status).toBe(200);
    expect(readMajority.body.count).toBe(2);
  });
});
