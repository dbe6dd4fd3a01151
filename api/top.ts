import type { FastifyPluginAsync } from 'fastify';
import { keyProblem } from '../crdt/key.ts';
import { TopK, type TopEntry } from '../crdt/top-rank.ts';
import { LIMITS } from '../gossip/limits.ts';
import { ScansBusyError } from '../node/top-ranking.ts';
import { parseRead } from './ack.ts';
import { answerFields, answerProperties, freshTimedOut, freshTimeoutSchema, rangeProperties, type RangeQuery } from './counts.ts';
import type { ApiDeps } from './deps.ts';
import { HttpError, badRequest, errorBodySchema } from './http-error.ts';
import { parseCountRange } from './inputs.ts';
import { checkFreshReadBudget } from './read-budget.ts';

export const MAX_TOP_K = 1_000;
const DEFAULT_TOP_K = 10;

interface TopQuery extends RangeQuery {
  k?: string;
  prefix?: string;
}

function parseK(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TOP_K;
  const k = /^[1-9][0-9]{0,3}$/.test(text) ? Number(text) : NaN;
  if (!(k <= MAX_TOP_K)) throw badRequest(`k must be an integer in 1..${MAX_TOP_K}, got ${JSON.stringify(text)}`);
  return k;
}

function parsePrefix(text: string | undefined): string {
  if (text === undefined) return '';
  if (text === '') throw badRequest('prefix must not be empty: leave it out to rank every key');
  const problem = keyProblem(text);
  if (problem !== undefined) throw badRequest(`prefix: ${problem}`);
  return text;
}

/**
 * GET /top: the k keys with the most hits in the range, ties by key
 * (node/top-ranking.ts). With `?read=`, the counts of this node's best
 * candidates (up to 1,000 keys) are joined from the members and ranked
 * again: fresher counts, but a key this node has not heard of cannot be
 * ranked, so such an answer never claims to be exact.
 */
export const topRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const { replica } = deps;
  app.get<{ Querystring: TopQuery }>(
    '/top',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { k: { type: 'string' }, prefix: { type: 'string' }, ...rangeProperties } },
        response: {
          200: {
            type: 'object',
            properties: {
              top: { type: 'array', items: { type: 'object', properties: { key: { type: 'string' }, count: { type: 'integer' } } } },
              k: { type: 'integer' },
              prefix: { type: ['string', 'null'] },
              exact: { type: 'boolean' },
              maxError: { type: ['integer', 'null'] },
              ...answerProperties,
            },
          },
          '4xx': errorBodySchema,
          '5xx': errorBodySchema,
          504: freshTimeoutSchema,
        },
      },
    },
    async (request, reply) => {
      const k = parseK(request.query.k);
      const prefix = parsePrefix(request.query.prefix);
      const { range, window } = parseCountRange(request.query);
      const read = parseRead(request.query);
      const asOf = replica.now();
      const plan = replica.plan(range);
      const local = { k, prefix: prefix === '' ? null : prefix };
      const rank = (n: number) =>
        replica.ranking.rank(plan, n, prefix).catch((error: unknown) => {
          if (error instanceof ScansBusyError) throw new HttpError(503, error.message);
          throw error;
        });
      const ranking = await rank(k);
      const mine = { top: ranking.top, ...local, exact: ranking.exact, maxError: ranking.maxError };
      if (read.level === 'local' || deps.freshRead === undefined) return { ...mine, ...answerFields(deps, window, plan, asOf) };
      // The candidates: this node's best, with room for keys whose fresher counts overtake.
      const wide = await rank(Math.min(MAX_TOP_K, Math.max(2 * k, k + 20)));
      const keys = wide.top.map((entry) => entry.key);
      checkFreshReadBudget(Math.max(1, keys.length), plan);
      // No candidate here: the members are still asked (of a placeholder key), so too few of them is a 504 as on /count.
      const fresh = await deps.freshRead(keys.length === 0 ? ['-'] : keys, plan, read.level, read.timeoutMs);
      if (fresh === undefined) return { ...mine, ...answerFields(deps, window, plan, asOf, [replica.identity.id]) };
      if (fresh.tooBig) throw badRequest(`a peer's answer to this read=${read.level} would pass ${LIMITS.maxReadRows} rows: ask for a smaller k or a shorter range`);
      if (!fresh.ok) {
        freshTimedOut(reply, read.level, read.timeoutMs, fresh);
        return reply;
      }
      // This node is every member the level needs: its own ranking is the answer.
      if (fresh.answered.length === 1) return { ...mine, ...answerFields(deps, window, plan, asOf, fresh.answered) };
      const best = new TopK(k);
      for (const key of keys) best.offer({ key, count: fresh.counts[key] ?? 0 } satisfies TopEntry);
      return { top: best.entries, ...local, exact: false, maxError: null, ...answerFields(deps, window, plan, asOf, fresh.answered) };
    },
  );
};
