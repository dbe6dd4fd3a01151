/**
 * The `retry` experiment's clients against fake nodes that keep tokens the
 * way the contract says (one token store per side of a pretend cut, joined at
 * the heal): the clients retry across the sides, on the same node, during the
 * cut and after the heal, and the ledger finds no broken answer. Fake nodes
 * that never say "duplicate" are caught.
 */
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { postIdempotent, RetryLoad } from '../../scripts/partition/retry-load.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { serve, useLocalServers } from './local-servers.ts';

useLocalServers();

/** Per side, token → n; after the heal both sides share one. */
type Stores = { side: Map<string, Map<string, number>> };

async function fakeNode(stores: Stores, side: string, honest = true): Promise<string> {
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const key = decodeURIComponent(url.pathname.replace(/^\/hit\//, ''));
    const n = Number(url.searchParams.get('n') ?? '1');
    const token = req.headers['idempotency-key'];
    res.setHeader('content-type', 'application/json');
    if (req.method !== 'POST' || typeof token !== 'string') {
      res.statusCode = 400;
      return res.end(JSON.stringify({ error: 'no token' }));
    }
    const store = stores.side.get(side) ?? new Map<string, number>();
    const seen = store.get(`${key}\n${token}`);
    if (seen !== undefined && seen !== n) {
      res.statusCode = 422;
      return res.end(JSON.stringify({ error: 'another n' }));
    }
    store.set(`${key}\n${token}`, n);
    res.end(JSON.stringify({ key, n, node: side, at: Date.now(), duplicate: honest ? seen !== undefined : false }));
  });
}

async function run(honest: boolean): Promise<RetryLoad> {
  const a = new Map<string, number>();
  const stores: Stores = { side: new Map([['A', a], ['B', new Map<string, number>()]]) };
  const targets = [
    { id: 'a1', url: await fakeNode(stores, 'A', honest) },
    { id: 'a2', url: await fakeNode(stores, 'A', honest) },
    { id: 'b1', url: await fakeNode(stores, 'B', honest) },
  ];
  const load = new RetryLoad({ targets, sides: [['a1', 'a2'], ['b1']], keys: ['r0', 'r1'], rate: 150, random: mulberry32(3), runId: 'test' });
  load.start();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  // The heal: B's tokens join A's, and both sides answer from one store.
  for (const [k, v] of stores.side.get('B') ?? []) a.set(k, v);
  stores.side.set('B', a);
  load.heal();
  await load.drain();
  return load;
}

/** The URL of a port nothing listens on any more. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('retry clients', () => {
  it('retry across the cut, on the same node, during it and after the heal; correct answers break no rule', async () => {
    const load = await run(true);
    const t = load.ledger.tally();
    expect(t.logical).toBeGreaterThan(100);
    expect(t.retries).toBeGreaterThan(t.logical / 2);
    expect(t.acrossCut).toBeGreaterThan(0);
    expect(t.acrossAfterHeal).toBeGreaterThan(0);
    expect(t.bothSides).toBeGreaterThan(0);
    expect(t.sameNodeRepeats).toBeGreaterThan(0);
    expect(t.duplicates).toBeGreaterThanOrEqual(t.sameNodeRepeats);
    expect(t.conflictsSent).toBeGreaterThan(0);
    expect(t.conflictsRefused).toBe(t.conflictsSent);
    expect(t.acked).toBe(t.logical);
    expect(load.ledger.flagViolations()).toEqual([]);
    // Every retry of a token carried its n and its token; tokens are unique.
    expect(new Set(load.ledger.hits.map((h) => h.token)).size).toBe(t.logical);
    for (const hit of load.ledger.hits) for (const a of hit.attempts) expect(a.n).toBe(a.conflict ? hit.n + 1 : hit.n);
  });

  it('nodes that never say "duplicate" are caught on every same-node repeat', async () => {
    const load = await run(false);
    const violations = load.ledger.flagViolations();
    expect(violations.length).toBeGreaterThanOrEqual(load.ledger.tally().sameNodeRepeats);
    expect(new Set(violations.map((v) => v.kind))).toEqual(new Set(['not-flagged']));
  });

  it('classifies answers: a refused connection failed, a 5xx or unreadable 200 unknown, a 4xx or 503 failed', async () => {
    const answering = (status: number, body: string): Promise<string> =>
      serve((_req, res) => {
        res.statusCode = status;
        res.end(body);
      });
    expect(await postIdempotent(await answering(200, '{"duplicate":true,"at":5}'), 'k', 1, 't', 1_000)).toEqual({ kind: 'acked', duplicate: true, at: 5 });
    expect(await postIdempotent(await answering(200, '{"at":5}'), 'k', 1, 't', 1_000)).toEqual({ kind: 'acked', duplicate: undefined, at: 5 });
    expect(await postIdempotent(await answering(200, 'nope'), 'k', 1, 't', 1_000)).toEqual({ kind: 'unknown' });
    expect(await postIdempotent(await answering(422, '{}'), 'k', 1, 't', 1_000)).toEqual({ kind: 'failed', status: 422 });
    expect(await postIdempotent(await answering(503, '{}'), 'k', 1, 't', 1_000)).toEqual({ kind: 'failed', status: 503 });
    expect(await postIdempotent(await answering(500, '{}'), 'k', 1, 't', 1_000)).toEqual({ kind: 'unknown' });
    expect(await postIdempotent(await closedPort(), 'k', 1, 't', 1_000)).toEqual({ kind: 'failed', status: 0 });
    const silent = await serve(() => undefined);
    expect(await postIdempotent(silent, 'k', 1, 't', 200)).toEqual({ kind: 'unknown' });
  });
});
