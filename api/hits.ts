import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { MAX_BATCH_ITEMS, MAX_HIT_N, MAX_KEY_BYTES } from '../node/config.ts';
import type { HitItem } from '../node/replica.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, errorBodySchema } from './http-error.ts';
import { keyProblem } from '../crdt/key.ts';
import { ackQueryProperties, ackTimeoutSchema, ackedProperties, awaitAck, parseAck } from './ack.ts';
import { checkKey, parseN, parseToken } from './inputs.ts';
import { tokenProblem, MAX_TOKEN_LENGTH } from '../crdt/key-tokens.ts';

const keyParams = {
  type: 'object',
  required: ['key'],
  properties: { key: { type: 'string' } },
} as const;

const errors = { '4xx': errorBodySchema, 504: ackTimeoutSchema, '5xx': errorBodySchema };

/** POST /hit/:key?n=N and POST /hits. */
export const hitRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  await app.register(singleHit, deps);
  await app.register(batchHits, deps);
};

// Its own context: a hit carries no body, so whatever body a client sends
// (curl -d '' sends a form type) is read within the size limit and ignored.
async function singleHit(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { replica } = deps;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));
  app.post<{ Params: { key: string }; Querystring: { n?: string; ack?: string; timeout?: string } }>(
    '/hit/:key',
    {
      schema: {
        params: keyParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { n: { type: 'string' }, ...ackQueryProperties },
        },
        response: {
          200: {
            type: 'object',
            properties: { key: { type: 'string' }, n: { type: 'integer' }, node: { type: 'string' }, at: { type: 'integer' }, duplicate: { type: 'boolean' }, ...ackedProperties },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const key = checkKey(request.params.key);
      const n = parseN(request.query.n);
      const token = parseToken(request.headers['idempotency-key'], request.raw.rawHeaders);
      const ack = parseAck(request.query);
      if (token !== undefined) {
        const once = await replica.hitOnce(key, n, token);
        const acked = await awaitAck(deps, once, ack, reply);
        if (acked === undefined) return reply;
        return { key, n, node: replica.identity.id, at: once.value.at, duplicate: once.value.duplicate, ...acked };
      }
      const committed = await replica.hitInBatch(key, n);
      // The common hit waits for nothing more than its batch: no second promise.
      if (ack.level === 'local') return { key, n, node: replica.identity.id, at: committed.value };
      const acked = await awaitAck(deps, committed, ack, reply);
      if (acked === undefined) return reply;
      return { key, n, node: replica.identity.id, at: committed.value, ...acked };
    },
  );
}

async function batchHits(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { replica } = deps;
  // JSON only: a batch in any other type is a 415, not a guess.
  app.removeContentTypeParser('text/plain');
  app.post<{ Body: HitItem[]; Querystring: { ack?: string; timeout?: string } }>(
    '/hits',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: ackQueryProperties },
        body: {
          type: 'array',
          maxItems: MAX_BATCH_ITEMS,
          items: {
            type: 'object',
            required: ['key'],
            additionalProperties: false,
            properties: {
              key: { type: 'string', minLength: 1, maxLength: MAX_KEY_BYTES },
              n: { type: 'integer', minimum: 1, maximum: MAX_HIT_N },
              id: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH },
            },
          },
        },
        response: { 200: { type: 'object', properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' }, ...ackedProperties } }, ...errors },
      },
    },
    async (request, reply) => {
      // All or nothing: every item is checked before any is counted.
      const items = request.body;
      let tokens = false;
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as HitItem;
        const problem = keyProblem(item.key) ?? (item.id === undefined ? undefined : tokenProblem(item.id));
        if (problem !== undefined) throw badRequest(`item ${i}: ${problem}`);
        if (item.id !== undefined) tokens = true;
      }
      const ack = parseAck(request.query);
      if (tokens) {
        const once = await replica.hitsOnce(items);
        const acked = await awaitAck(deps, once, ack, reply);
        if (acked === undefined) return reply;
        return { accepted: once.value.accepted, duplicates: once.value.duplicates, ...acked };
      }
      const committed = await replica.hitsInBatch(items);
      const acked = await awaitAck(deps, committed, ack, reply);
      if (acked === undefined) return reply;
      return { accepted: committed.value, ...acked };
    },
  );
}
