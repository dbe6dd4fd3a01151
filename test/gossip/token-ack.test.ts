/**
 * `?ack=` on a repeat of a token another node counted: the retry, on another
 * node, is vouched for by that node and the one that counted it, so
 * `majority` of three answers 200 (a review found it a 504 at once), and
 * `all` is a 504 saying 2 of 3; a repeated Idempotency-Key header is a 400.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { RunningNode } from '../../node/start-node.ts';
import { converge, peersUp, start, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

async function hitWithToken(node: RunningNode, path: string, token: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`${node.url}${path}`, { method: 'POST', headers: { 'idempotency-key': token } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: Date.now() - t0 };
}

describe('acknowledging a repeat', () => {
  it('a retry on another node answers 200 under majority (it and the counting node hold it), 504 under all, and 200 on the counting node', async () => {
    const n1 = await start('n1');
    const n2 = await start('n2', '--peers', n1.address);
    const n3 = await start('n3', '--peers', n1.address);
    for (const [node, others] of [[n1, [n2, n3]], [n2, [n1, n3]], [n3, [n1, n2]]] as const) await peersUp(node, others);
    const first = await hitWithToken(n1, '/hit/k?ack=all', 'req-42');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ duplicate: false, acked: 3, needed: 3 });
    await converge([n1, n2, n3], { k: 1 });
    // The client never saw the answer and retries, same request, on n2: all three hold the hit.
    const retry = await hitWithToken(n2, '/hit/k?ack=majority&timeout=2s', 'req-42');
    expect(retry.body).toMatchObject({ duplicate: true, acked: 2, needed: 2 });
    expect(retry.status).toBe(200);
    const all = await hitWithToken(n3, '/hit/k?ack=all&timeout=2s', 'req-42');
    expect(all.status).toBe(504);
    expect(all.body).toMatchObject({ acked: 2, needed: 3 });
    // On the node that counted it, a repeat waits for its own batch as a first hit does.
    expect((await hitWithToken(n1, '/hit/k?ack=all', 'req-42')).body).toMatchObject({ duplicate: true, acked: 3, needed: 3 });
    // Two header lines (fetch would join them into one value itself; node:http sends an array as two lines).
    const twice = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${n1.url}/hit/k`, { method: 'POST', headers: { 'idempotency-key': ['req-42', 'req-42'] } }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(twice.status).toBe(400);
    expect(twice.body).toMatch(/once/);
    await converge([n1, n2, n3], { k: 1 });
  });
});
