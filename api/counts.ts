import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { WindowPlan } from '../crdt/window-plan.ts';
import { LIMITS } from '../gossip/limits.ts';
import { parseRead } from './ack.ts';
import { MAX_COUNT_KEYS } from '../node/config.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, errorBodySchema } from './http-error.ts';
import { checkKey, parseCountRange } from './inputs.ts';
import { MAX_READ_BUCKETS, checkFreshReadBudget, checkReadBudget, countKeys } from './read-budget.ts';

export interface RangeQuery {
  window?: string;
  from?: string;
  to?: string;
  read?: string;
  timeout?: string;
}

export const rangeProperties = {
  window: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  read: { type: 'string' },
  timeout: { type: 'string' },
} as const;

const freshnessSchema = {
  type: 'object',
  properties: { peers: { type: 'integer' }, synced: { type: 'integer' }, maxLagMs: { type: 'integer' }, answered: { type: 'array', items: { type: 'string' } } },
} as const;

export const freshTimeoutSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string' }, answered: { type: 'array', items: { type: 'string' } }, needed: { type: 'integer' } },
} as const;

export const answerProperties = {
  window: { type: ['string', 'null'] },
  from: { type: ['integer', 'null'] },
  to: { type: ['integer', 'null'] },
  node: { type: 'string' },
  asOf: { type: 'integer' },
  freshness: freshnessSchema,
} as const;

/** What every count answer says beside its counts: the range covered, the node, when, and how fresh. */
export const answerFields = (deps: ApiDeps, window: string | null, plan: { from: number; to: number }, asOf: number, answered?: readonly string[]) => ({
  window,
  // The range actually covered, rounded out to whole buckets; null for the lifetime total.
  from: window === 'all' ? null : plan.from,
  to: window === 'all' ? null : plan.to,
  node: deps.replica.identity.id,
  asOf,
  freshness: answered === undefined ? deps.freshness() : { ...deps.freshness(), answered },
});

/** The 504 of a fresh read that too few members answered in time. */
export function freshTimedOut(reply: FastifyReply, level: string, timeoutMs: number, fresh: { answered: readonly string[]; needed: number }): void {
  void reply.code(504).send({
    error: `${fresh.answered.length} of the ${fresh.needed} members read=${level} needs answered within ${timeoutMs} ms`,
    answered: fresh.answered,
    needed: fresh.needed,
  });
}

/** GET /count/:key and GET /counts: window sums over the planned buckets. */
export const countRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const { replica, metrics } = deps;
  metrics.readBudget.set(MAX_READ_BUCKETS);
  const answer = (window: string | null, plan: { from: number; to: number }, asOf: number, answered?: readonly string[]) => answerFields(deps, window, plan, asOf, answered);

  /** The counts of `keys` over `plan`: this node's own, or with `?read=` joined from the members (undefined: a 504 was sent). */
  const countsOf = async (keys: readonly string[], plan: WindowPlan, query: RangeQuery, reply: FastifyReply): Promise<{ counts: Record<string, number>; answered?: readonly string[] } | undefined> => {
    const read = parseRead(query);
    if (read.level === 'local') {
      checkReadBudget(keys.length, plan, metrics);
      return { counts: await countKeys(replica, keys, plan) };
    }
    checkFreshReadBudget(keys.length, plan);
    const fresh = await deps.freshRead?.(keys, plan, read.level, read.timeoutMs);
    if (fresh === undefined) return { counts: await countKeys(replica, keys, plan), answered: [replica.identity.id] };
    if (fresh.tooBig) throw badRequest(`a peer's answer to this read=${read.level} would pass ${LIMITS.maxReadRows} rows: ask for fewer keys or a shorter range`);
    if (fresh.ok) return { counts: fresh.counts, answered: fresh.answered };
    freshTimedOut(reply, read.level, read.timeoutMs, fresh);
    return undefined;
  };

  app.get<{ Params: { key: string }; Querystring: RangeQuery }>(
    '/count/:key',
    {
      schema: {
        params: { type: 'object', required: ['key'], properties: { key: { type: 'string' } } },
        querystring: { type: 'object', additionalProperties: false, properties: rangeProperties },
        response: {
          200: { type: 'object', properties: { key: { type: 'string' }, count: { type: 'integer' }, ...answerProperties } },
          '4xx': errorBodySchema,
          504: freshTimeoutSchema,
        },
      },
    },
    (request, reply) => {
      const key = checkKey(request.params.key);
      const { range, window } = parseCountRange(request.query);
      const asOf = replica.now();
      const plan = replica.plan(range);
      if (parseRead(request.query).level === 'local') {
        // The common read answers at once: no promise, no slices (one key's buckets are within one slice).
        checkReadBudget(1, plan, metrics);
        return reply.send({ key, count: replica.count(key, plan), ...answer(window, plan, asOf) });
      }
      return countsOf([key], plan, request.query, reply).then((result) =>
        result === undefined ? reply : { key, count: result.counts[key] ?? 0, ...answer(window, plan, asOf, result.answered) },
      );
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
          504: freshTimeoutSchema,
        },
      },
    },
    async (request, reply) => {
      const { keys: list, key: repeated = [] } = request.query;
      const keys = [...(list === undefined ? [] : list.split(',')), ...repeated];
      if (keys.length === 0) throw badRequest('name the keys as keys=a,b or as repeated key= parameters (a key holding a comma needs key=)');
      if (keys.length > MAX_COUNT_KEYS) throw badRequest(`keys may name at most ${MAX_COUNT_KEYS} keys`);
      keys.forEach(checkKey);
      const { range, window } = parseCountRange(request.query);
      const asOf = replica.now();
      const plan = replica.plan(range);
      // A long answer is computed in slices; a hit that lands meanwhile may be in the later keys' counts.
      const result = await countsOf(keys, plan, request.query, reply);
      if (result === undefined) return reply;
      return { counts: result.counts, ...answer(window, plan, asOf, result.answered) };
    },
  );
};
