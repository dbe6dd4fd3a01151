import type { FastifyPluginAsync } from 'fastify';
import { MAX_COUNT_KEYS } from '../node/config.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, errorBodySchema } from './http-error.ts';
import { checkKey, parseCountRange } from './inputs.ts';
import { MAX_READ_BUCKETS, checkReadBudget, countKeys } from './read-budget.ts';

interface RangeQuery {
  window?: string;
  from?: string;
  to?: string;
}

const rangeProperties = {
  window: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
} as const;

const freshnessSchema = {
  type: 'object',
  properties: { peers: { type: 'integer' }, synced: { type: 'integer' }, maxLagMs: { type: 'integer' } },
} as const;

const answerProperties = {
  window: { type: ['string', 'null'] },
  from: { type: ['integer', 'null'] },
  to: { type: ['integer', 'null'] },
  node: { type: 'string' },
  asOf: { type: 'integer' },
  freshness: freshnessSchema,
} as const;

/** GET /count/:key and GET /counts: window sums over the planned buckets. */
export const countRoutes: FastifyPluginAsync<ApiDeps> = async (app, { replica, freshness, metrics }) => {
  metrics.readBudget.set(MAX_READ_BUCKETS);
  const answer = (window: string | null, plan: { from: number; to: number }, asOf: number) => ({
    window,
    // The range actually covered, rounded out to whole buckets; null for the lifetime total.
    from: window === 'all' ? null : plan.from,
    to: window === 'all' ? null : plan.to,
    node: replica.identity.id,
    asOf,
    freshness: freshness(),
  });

  app.get<{ Params: { key: string }; Querystring: RangeQuery }>(
    '/count/:key',
    {
      schema: {
        params: { type: 'object', required: ['key'], properties: { key: { type: 'string' } } },
        querystring: { type: 'object', additionalProperties: false, properties: rangeProperties },
        response: {
          200: { type: 'object', properties: { key: { type: 'string' }, count: { type: 'integer' }, ...answerProperties } },
          '4xx': errorBodySchema,
        },
      },
    },
    async (request) => {
      const key = checkKey(request.params.key);
      const { range, window } = parseCountRange(request.query);
      const asOf = replica.now();
      const plan = replica.plan(range);
      checkReadBudget(1, plan, metrics);
      return { key, count: replica.count(key, plan), ...answer(window, plan, asOf) };
    },
  );

  app.get<{ Querystring: RangeQuery & { keys?: string; key?: string[] } }>(
    '/counts',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          // key= may repeat (the query parser makes it a list): the one way to name a key holding a comma.
          properties: { keys: { type: 'string' }, key: { type: 'array', items: { type: 'string' } }, ...rangeProperties },
        },
        response: {
          200: {
            type: 'object',
            properties: { counts: { type: 'object', additionalProperties: { type: 'integer' } }, ...answerProperties },
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (request) => {
      const { keys: list, key: repeated = [] } = request.query;
      const keys = [...(list === undefined ? [] : list.split(',')), ...repeated];
      if (keys.length === 0) throw badRequest('name the keys as keys=a,b or as repeated key= parameters (a key holding a comma needs key=)');
      if (keys.length > MAX_COUNT_KEYS) throw badRequest(`keys may name at most ${MAX_COUNT_KEYS} keys`);
      keys.forEach(checkKey);
      const { range, window } = parseCountRange(request.query);
      const asOf = replica.now();
      const plan = replica.plan(range);
      checkReadBudget(keys.length, plan, metrics);
      // A long answer is computed in slices; a hit that lands meanwhile may be in the later keys' counts.
      const counts = await countKeys(replica, keys, plan);
      return { counts, ...answer(window, plan, asOf) };
    },
  );
};
