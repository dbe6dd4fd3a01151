/**
 * What error answers say (issue 9): a body holding "__proto__" is JSON like
 * any other (the key "__proto__" counts; an item with a "__proto__" property
 * is an unknown parameter), and a 5xx says "the hit was not counted" only
 * where a hit was asked for. The 408 of a request that does not arrive in
 * time is in test/process/connection-limits.test.ts (it needs real sockets).
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { SINGLE_NODE_FRESHNESS, type Freshness } from '../../api/deps.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { Replica } from '../../node/replica.ts';

let replica: Replica;
let app: FastifyInstance;
/** What the app's freshness dependency does; a test makes it throw to get a 500 on a read. */
let freshness: () => Freshness;

beforeEach(async () => {
  const logger = pino({ level: 'silent' });
  const metrics = new NodeMetrics({ node: 'n1' });
  freshness = () => SINGLE_NODE_FRESHNESS;
  replica = await Replica.open({ store: new MemoryStore(), id: 'n1', retention: DEFAULT_RETENTION, clock: new ManualClock(Date.UTC(2026, 10, 28, 12)), logger, metrics });
  app = await buildApp({ replica, metrics, logger, bodyLimitBytes: 1024 * 1024, advertise: () => '127.0.0.1:7001', freshness: () => freshness(), peers: () => [] });
});

afterEach(async () => {
  await app.close();
  await replica.close();
});

const postHits = (payload: string) => app.inject({ method: 'POST', url: '/hits', headers: { 'content-type': 'application/json' }, payload });
const errorOf = (body: string): string => (JSON.parse(body) as { error: string }).error;
const lifetime = async (key: string): Promise<number> =>
  (JSON.parse((await app.inject({ method: 'GET', url: `/count/${encodeURIComponent(key)}?window=all` })).body) as { count: number }).count;

describe('JSON bodies holding __proto__', () => {
  it('the key "__proto__" is counted like any key', async () => {
    const res = await postHits('[{"key":"__proto__","n":2},{"key":"constructor"}]');
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ accepted: 3 });
    expect(await lifetime('__proto__')).toBe(2);
    expect(await lifetime('constructor')).toBe(1);
  });

  it.each([
    ['a "__proto__" property in an item', '[{"key":"victim","__proto__":{"n":5}}]', /body\/0: unknown parameter "__proto__"/],
    ['an escaped \\u005f\\u005fproto\\u005f\\u005f property', '[{"key":"victim","\\u005f\\u005fproto\\u005f\\u005f":{"n":5}}]', /body\/0: unknown parameter "__proto__"/],
    ['a "constructor" property holding "prototype"', '[{"key":"victim","constructor":{"prototype":{"n":5}}}]', /body\/0: unknown parameter "constructor"/],
    ['an item that is only "__proto__"', '[{"__proto__":{"key":"victim"}}]', /body\/0: (missing "key"|unknown parameter "__proto__")/],
    ['an object with "__proto__" instead of an array', '{"__proto__":[{"key":"victim"}]}', /body must be array/],
  ])('%s is a 400 that names it, not "invalid JSON"', async (_name, payload, message) => {
    const res = await postHits(payload);
    expect(res.statusCode, res.body).toBe(400);
    expect(errorOf(res.body)).toMatch(message);
    expect(errorOf(res.body)).not.toMatch(/not valid JSON/);
    expect(await lifetime('victim')).toBe(0);
  });

  it('JSON that is not valid is still refused as such', async () => {
    const res = await postHits('[{"key":"victim"');
    expect(res.statusCode).toBe(400);
    expect(errorOf(res.body)).toMatch(/not valid JSON/);
  });
});

describe('5xx answers', () => {
  const boom = (): never => {
    throw new Error('boom');
  };

  it('a read that fails says it failed, not that a hit was not counted', async () => {
    freshness = boom;
    for (const url of ['/count/k?window=all', '/counts?keys=a,b']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(500);
      expect(errorOf(res.body), url).toMatch(/internal error/);
      expect(errorOf(res.body), url).not.toMatch(/hit/);
    }
  });

  it('a hit that fails says the hit was not counted', async () => {
    replica.hitInBatch = boom;
    replica.hitsInBatch = boom;
    const one = await app.inject({ method: 'POST', url: '/hit/k' });
    expect(one.statusCode).toBe(500);
    expect(errorOf(one.body)).toMatch(/the hit was not counted/);
    const batch = await postHits('[{"key":"k"}]');
    expect(batch.statusCode).toBe(500);
    expect(errorOf(batch.body)).toMatch(/not counted/);
  });
});
