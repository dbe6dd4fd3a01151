import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { SINGLE_NODE_FRESHNESS } from '../../api/deps.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { Replica } from '../../node/replica.ts';

const T0 = Date.UTC(2026, 10, 28, 12, 0, 0, 400);
let clock: ManualClock;
let replica: Replica;
let app: FastifyInstance;

beforeEach(async () => {
  clock = new ManualClock(T0);
  const logger = pino({ level: 'silent' });
  const metrics = new NodeMetrics({ node: 'n1' });
  replica = await Replica.open({ store: new MemoryStore(), id: 'n1', retention: DEFAULT_RETENTION, clock, logger, metrics });
  app = await buildApp({ replica, metrics, logger, bodyLimitBytes: 1024 * 1024, advertise: () => '127.0.0.1:7001', freshness: () => SINGLE_NODE_FRESHNESS, peers: () => [] });
});

afterEach(async () => {
  await app.close();
  await replica.close();
});

const json = (body: string): unknown => JSON.parse(body);

/** The value of the sample `name` whose labels include all of `labels`, whatever their order. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (match[2] ?? '').includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return undefined;
}

describe('HTTP API', () => {
  it('POST /hit/:key counts one hit, or n, and says where and when', async () => {
    const one = await app.inject({ method: 'POST', url: '/hit/home' });
    expect(one.statusCode).toBe(200);
    expect(json(one.body)).toEqual({ key: 'home', n: 1, node: 'n1', at: T0 });
    const five = await app.inject({ method: 'POST', url: '/hit/home?n=5' });
    expect(json(five.body)).toMatchObject({ n: 5 });
    const count = await app.inject({ method: 'GET', url: '/count/home' });
    expect(json(count.body)).toEqual({
      key: 'home',
      count: 6,
      window: '60s',
      from: T0 - 400 - 60_000,
      to: T0 - 400 + 1_000,
      node: 'n1',
      asOf: T0,
      freshness: { peers: 0, synced: 0, maxLagMs: 0 },
    });
  });

  it('keys are taken percent-decoded, unicode and all', async () => {
    await app.inject({ method: 'POST', url: `/hit/${encodeURIComponent('päge/ä?b&c')}` });
    const count = await app.inject({ method: 'GET', url: `/count/${encodeURIComponent('päge/ä?b&c')}?window=all` });
    expect(json(count.body)).toMatchObject({ key: 'päge/ä?b&c', count: 1, window: 'all', from: null, to: null });
  });

  it('POST /hits counts a batch in one go and GET /counts reads several keys', async () => {
    const res = await app.inject({ method: 'POST', url: '/hits', payload: [{ key: 'a', n: 3 }, { key: 'b' }, { key: 'a' }] });
    expect(res.statusCode).toBe(200);
    expect(json(res.body)).toEqual({ accepted: 5 });
    const counts = await app.inject({ method: 'GET', url: '/counts?keys=a,b,__proto__,none&window=1h' });
    expect(json(counts.body)).toMatchObject({ counts: { a: 4, b: 1, __proto__: 0, none: 0 }, window: '1h', node: 'n1' });
  });

  it('windows slide with the clock; from/to reads a fixed range', async () => {
    await app.inject({ method: 'POST', url: '/hit/k?n=2' });
    clock.advance(45_000);
    await app.inject({ method: 'POST', url: '/hit/k?n=3' });
    clock.advance(30_000);
    const last60 = await app.inject({ method: 'GET', url: '/count/k?window=60s' });
    expect(json(last60.body)).toMatchObject({ count: 3 });
    const last2m = await app.inject({ method: 'GET', url: '/count/k?window=2m' });
    expect(json(last2m.body)).toMatchObject({ count: 5 });
    const fixed = await app.inject({ method: 'GET', url: `/count/k?from=${T0 - 400}&to=${T0 + 600}` });
    expect(json(fixed.body)).toMatchObject({ count: 2, window: null, from: T0 - 400, to: T0 + 600 });
    const empty = await app.inject({ method: 'GET', url: `/count/k?from=${T0}&to=${T0}` });
    expect(json(empty.body)).toMatchObject({ count: 0 });
    // A far-off end is pulled back to a day or two past now instead of tiling years of empty buckets.
    const farOff = await app.inject({ method: 'GET', url: '/count/k?from=0&to=999999999999999' });
    expect(json(farOff.body)).toMatchObject({ count: 5 });
    expect((json(farOff.body) as { to: number }).to).toBeLessThanOrEqual(T0 + 2 * 86_400_000);
  });

  it('answers JSON errors for bad input and unknown routes, and counts them in /metrics', async () => {
    const bad = await app.inject({ method: 'POST', url: '/hit/home?n=0' });
    expect(bad.statusCode).toBe(400);
    expect(json(bad.body)).toEqual({ error: 'n must be an integer in 1..1000000, got "0"' });
    const missing = await app.inject({ method: 'GET', url: '/nope' });
    expect(missing.statusCode).toBe(404);
    expect(json(missing.body)).toEqual({ error: 'no route GET /nope' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(sample(metrics.body, 'hitmesh_http_errors_total', { status_code: '400' })).toBe(1);
    expect(sample(metrics.body, 'hitmesh_http_errors_total', { status_code: '404' })).toBe(1);
  });

  it('/metrics exposes hits, latency by route and store batches', async () => {
    await app.inject({ method: 'POST', url: '/hit/a?n=4' });
    await app.inject({ method: 'POST', url: '/hits', payload: [{ key: 'b', n: 6 }] });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(sample(res.body, 'hitmesh_hits_accepted_total', { node: 'n1' })).toBe(10);
    expect(sample(res.body, 'hitmesh_http_request_duration_seconds_count', { route: '/hit/:key', method: 'POST', status_code: '200' })).toBe(1);
    expect(sample(res.body, 'hitmesh_store_write_duration_seconds_count', {})).toBe(2);
    expect(sample(res.body, 'hitmesh_store_batch_hits_sum', {})).toBe(10);
    await replica.checkpoint();
    const after = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(sample(after, 'hitmesh_checkpoint_slots_sum', {})).toBe(10); // 2 keys x 5 tiers
    expect(res.body).toMatch(/process_resident_memory_bytes/);
  });

  it('/healthz is up; /readyz is 503 until listening and after the store closes', async () => {
    expect(json((await app.inject({ method: 'GET', url: '/healthz' })).body)).toMatchObject({ status: 'ok', node: 'n1', incarnation: replica.identity.incarnation });
    const notListening = await app.inject({ method: 'GET', url: '/readyz' });
    expect(notListening.statusCode).toBe(503);
    await app.listen({ host: '127.0.0.1', port: 0 });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await replica.close();
    const closed = await app.inject({ method: 'GET', url: '/readyz' });
    expect(closed.statusCode).toBe(503);
    expect(json(closed.body)).toMatchObject({ ready: false });
    const hit = await app.inject({ method: 'POST', url: '/hit/a' });
    expect(hit.statusCode).toBe(503);
    expect(json(hit.body)).toHaveProperty('error');
  });

  it('/cluster shows this node, its identity and no peers yet', async () => {
    await app.inject({ method: 'POST', url: '/hit/a' });
    const res = json((await app.inject({ method: 'GET', url: '/cluster' })).body);
    expect(res).toEqual({
      members: { ids: ['n1'], count: 1, majority: 1 },
      node: {
        id: 'n1',
        incarnation: replica.identity.incarnation,
        origin: replica.identity.origin,
        address: '127.0.0.1:7001',
        seq: 1,
        keys: 1,
        hits: 1,
        vv: { [replica.identity.origin]: [1, T0] },
      },
      peers: [],
    });
  });
});
