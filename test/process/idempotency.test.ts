/**
 * Idempotency-Key between real node processes, every link through a TCP
 * fault proxy: the same token sent 7 times over 2 nodes one after another,
 * then 7 times at once, counts once; sent to both sides of a cut it counts
 * on each side while the cut lasts and once everywhere after the heal, in
 * the bucket of the earlier side; and it stays counted once after kill -9
 * and a restart. Bad tokens are 400s, another n is a 422, and nothing of
 * either is counted.
 */
import { describe, expect, it } from 'vitest';
import { call, useProxiedCluster, type Answer } from './proxied-cluster-test.ts';

const clusters = useProxiedCluster('hitmesh-idem-');

const hit = (url: string, key: string, token: string | undefined, n = 1): Promise<Answer> =>
  call('POST', `${url}/hit/${key}?n=${n}`, token === undefined ? {} : { 'idempotency-key': token });

async function count(url: string, key: string, query = 'window=all'): Promise<number> {
  const res = await fetch(`${url}/count/${key}?${query}`, { signal: AbortSignal.timeout(15_000) });
  return ((await res.json()) as { count: number }).count;
}

/** Wait until every url counts `expected` for `key`. */
async function countsSettle(urls: readonly string[], key: string, expected: number, query = 'window=all'): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const counts = await Promise.all(urls.map((url) => count(url, key, query)));
    if (counts.every((c) => c === expected)) return;
    if (Date.now() > deadline) throw new Error(`${key}: counts ${JSON.stringify(counts)}, expected ${expected} everywhere`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('idempotency keys between node processes', () => {
  it('the same token 7 times over 2 nodes counts once, sent one after another and all at once; bad tokens and another n change nothing', { timeout: 90_000 }, async () => {
    const cluster = await clusters.start(['n1', 'n2']);
    const urls = cluster.nodes.map((n) => n.url);
    const [a, b] = urls as [string, string];

    // Retries as a client makes them, after a wait (here 200 ms, ten push intervals): the other node has heard.
    const answers: Answer[] = [];
    for (let i = 0; i < 7; i++) {
      answers.push(await hit(urls[i % 2] as string, 'seq', 'order-1', 3));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
    expect(answers[0]?.body).toMatchObject({ duplicate: false, n: 3 });
    expect(answers.filter((x) => x.body.duplicate === false)).toHaveLength(1);
    await countsSettle(urls, 'seq', 3);
    // Back to back: the second node may take it before it hears of the first (once at most per node); it counts once all the same.
    const quick: Answer[] = [];
    for (let i = 0; i < 7; i++) quick.push(await hit(urls[i % 2] as string, 'quick', 'order-3', 4));
    expect(quick.filter((x) => x.body.duplicate === false).length).toBeLessThanOrEqual(2);
    await countsSettle(urls, 'quick', 4);
    await countsSettle(urls, 'quick', 4, 'window=1h');

    const burst = await Promise.all(Array.from({ length: 7 }, (_, i) => hit(urls[i % 2] as string, 'burst', 'order-2', 2)));
    expect(burst.map((x) => x.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
    // At once on two nodes, each may take it before hearing of the other: never more than once per node.
    const fresh = burst.filter((x) => x.body.duplicate === false).length;
    expect(fresh).toBeGreaterThanOrEqual(1);
    expect(fresh).toBeLessThanOrEqual(2);
    await countsSettle(urls, 'burst', 2);
    await countsSettle(urls, 'burst', 2, 'window=1h');
    // Once both know it, a retry anywhere is a repeat.
    for (const url of urls) expect((await hit(url, 'burst', 'order-2', 2)).body.duplicate).toBe(true);

    const conflict = await hit(b, 'seq', 'order-1', 4);
    expect(conflict.status).toBe(422);
    expect(String(conflict.body.error)).toMatch(/n=3/);
    for (const bad of ['', 'x'.repeat(256), 'tab\there']) {
      const res = await fetch(`${a}/hit/seq`, { method: 'POST', headers: { 'idempotency-key': bad }, signal: AbortSignal.timeout(15_000) }).catch(() => undefined);
      // fetch itself refuses a tab in a header value; what reaches the node must be a 400.
      if (res !== undefined) expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    const batch = await fetch(`${a}/hits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ key: 'seq', id: 'order-1', n: 3 }, { key: 'batch', id: 'item-1' }, { key: 'batch', id: 'item-1' }, { key: 'batch' }]),
    });
    expect(batch.status).toBe(200);
    expect(await batch.json()).toMatchObject({ accepted: 2, duplicates: 2 });
    const badBatch = await fetch(`${a}/hits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ key: 'batch' }, { key: 'seq', id: 'order-1', n: 9 }]) });
    expect(badBatch.status).toBe(422);
    await countsSettle(urls, 'seq', 3);
    await countsSettle(urls, 'batch', 2);
  });

  it('a token sent to both sides of a cut counts on each side meanwhile, once everywhere after the heal, and once after kill -9 and a restart', { timeout: 120_000 }, async () => {
    const cluster = await clusters.start(['n1', 'n2', 'n3']);
    const [n1, n2, n3] = cluster.nodes;
    if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('three nodes');
    const urls = cluster.nodes.map((n) => n.url);
    cluster.cut(['n1'], ['n2', 'n3'], 'cut');
    const first = await hit(n1.url, 'split', 'pay-7', 5);
    expect(first.body.duplicate).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the other side's hit lands in a later second
    const attempts = [first];
    for (let i = 0; i < 6; i++) {
      attempts.push(await hit([n2, n3, n1][i % 3]?.url as string, 'split', 'pay-7', 5));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(attempts.filter((x) => x.body.duplicate === false)).toHaveLength(2); // one a side
    expect(await count(n1.url, 'split')).toBe(5);
    await countsSettle([n2.url, n3.url], 'split', 5);
    cluster.healAll();
    await countsSettle(urls, 'split', 5);
    // In the earlier side's second, and not in the later one's.
    const at = first.body.at as number;
    const second = at - (at % 1000);
    await countsSettle(urls, 'split', 5, `from=${second}&to=${second + 1000}`);
    const later = (attempts.find((x, i) => i > 0 && x.body.duplicate === false)?.body.at as number) - 0;
    const laterSecond = later - (later % 1000);
    expect(laterSecond).toBeGreaterThan(second);
    await countsSettle(urls, 'split', 0, `from=${laterSecond}&to=${laterSecond + 1000}`);

    await n2.kill();
    await n2.start();
    expect((await hit(n2.url, 'split', 'pay-7', 5)).body.duplicate).toBe(true);
    await countsSettle(urls, 'split', 5);
    await countsSettle(urls, 'split', 5, 'window=1h');
  });
});
