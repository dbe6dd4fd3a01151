// `?ack=majority|all` (SPEC section 3) over real WebSockets: a 200 means that
// many members hold the hit, so a plain read on them counts it at once, with
// no waiting; with a member down, majority still answers and all gives 504
// after ?timeout= (the hit counts anyway); bad levels and timeouts are 400s.
import { describe, expect, it } from 'vitest';
import type { RunningNode } from '../../node/start-node.ts';
import { countOf, starThroughProxies, start, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function postHit(node: RunningNode, path: string): Promise<Answer> {
  const res = await fetch(`${node.url}${path}`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function postBatch(node: RunningNode, query: string, items: readonly { key: string; n?: number }[]): Promise<Answer> {
  const res = await fetch(`${node.url}/hits${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(items) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}


describe('?ack=', () => {
  it('majority and all answer once that many members hold the hit: a plain read on them counts it at once', async () => {
    const [n1, n2, n3] = await starThroughProxies();
    for (let i = 1; i <= 20; i++) {
      const all = await postHit(n1, `/hit/all-k?ack=all`);
      expect(all.status).toBe(200);
      expect(all.body).toMatchObject({ acked: 3, needed: 3 });
      // No polling: the 200 said both peers hold it.
      for (const node of [n2, n3]) expect((await countOf(node, 'all-k')).count).toBe(i);
    }
    for (let i = 1; i <= 20; i++) {
      const majority = await postBatch(n1, '?ack=majority', [{ key: 'maj-k', n: 2 }]);
      expect(majority.status).toBe(200);
      expect(majority.body).toMatchObject({ accepted: 2, needed: 2 });
      expect(majority.body.acked).toBeGreaterThanOrEqual(2);
      const elsewhere = await Promise.all([n2, n3].map(async (node) => (await countOf(node, 'maj-k')).count));
      // At least one of the two peers holds every hit acknowledged so far.
      expect(Math.max(...elsewhere)).toBe(2 * i);
    }
  });

  it('with a member down, majority still answers and all is a 504 after the timeout; the hit counts all the same', async () => {
    const [n1, n2, n3] = await starThroughProxies();
    await n3.stop();
    // n3 is down, not forgotten: still a member, so all needs it.
    const cluster = (await (await fetch(`${n1.url}/cluster`)).json()) as { members: { ids: string[]; count: number; majority: number } };
    expect(cluster.members).toEqual({ ids: ['n1', 'n2', 'n3'], count: 3, majority: 2 });
    const majority = await postHit(n1, '/hit/k?ack=majority&timeout=2s');
    expect(majority.status).toBe(200);
    expect(majority.body).toMatchObject({ acked: 2, needed: 2 });
    const t0 = Date.now();
    const all = await postHit(n1, '/hit/k?ack=all&timeout=300ms');
    expect(all.status).toBe(504);
    expect(all.body).toMatchObject({ acked: 2, needed: 3 });
    expect(String(all.body.error)).toMatch(/counted here/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect((await countOf(n1, 'k')).count).toBe(2);
    expect((await countOf(n2, 'k')).count).toBe(2);
  });

  it('over links that delay every chunk by 300 ms, an acknowledged hit is on the peers when the answer comes', async () => {
    const [n1, n2, n3] = await starThroughProxies(300);
    const t0 = Date.now();
    const all = await postHit(n1, '/hit/slow?ack=all&timeout=10s');
    const took = Date.now() - t0;
    expect(all.status).toBe(200);
    // The push crossed a 300 ms link and the peer's `held` came back over one: an ack cannot come sooner.
    expect(took).toBeGreaterThanOrEqual(600);
    for (const node of [n2, n3]) expect((await countOf(node, 'slow')).count).toBe(1);
    const local = await postHit(n1, '/hit/slow');
    expect(local.status).toBe(200);
    expect(local.body.acked).toBeUndefined();
  });

  it('refuses bad levels and timeouts with a 400 and counts nothing', async () => {
    const node = await start('solo');
    for (const query of ['ack=quorum', 'ack=', 'ack=ALL', 'ack=all&timeout=0ms', 'ack=all&timeout=61s', 'ack=all&timeout=5', 'ack=all&timeout=-1s', 'ack=all&ack=all']) {
      const answer = await postHit(node, `/hit/k?${query}`);
      expect(answer.status, query).toBe(400);
      expect(typeof answer.body.error, query).toBe('string');
      expect((await postBatch(node, `?${query}`, [{ key: 'k' }])).status, query).toBe(400);
    }
    expect((await countOf(node, 'k')).count).toBe(0);
    // A lone node is every member: all is met at once.
    expect((await postHit(node, '/hit/k?ack=all')).body).toMatchObject({ acked: 1, needed: 1 });
  });
});
