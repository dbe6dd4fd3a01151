import { isOpenRoute } from './auth.ts';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { readFileSync } from 'node:fs';
import { errorBodySchema } from './http-error.ts';

/** What a route says beyond its schema: a summary, and every error status it answers with why (README, HTTP API). */
export interface RouteDoc {
  readonly summary: string;
  readonly errors: Readonly<Record<number, string>>;
}

const BAD = 'bad input: an unknown or malformed parameter, key, window or body, named in "error"; nothing changed';
const CLOSING = 'the node is shutting down';
const PATH_TOO_LONG = 'the path is too long: a key is at most 256 bytes';
const NOT_TAKING = 'not taking hits: shutting down, the store failed, the clock is off from most peers, or a token limit is reached (see /readyz)';
const WRITE_FAILED = 'the write failed after it began: the hit may or may not be counted; retry with an Idempotency-Key';
const ACK_TIMEOUT = 'ack= was not reached within timeout=; the hit still counts and is replicated ("acked", "needed")';
const READ_TIMEOUT = 'read= did not hear from enough members within timeout= ("answered", "needed")';

/** Keyed by method and OpenAPI path. Routes not listed here (the docs page's own files, the dashboard's assets) are not in the document. */
export const ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'POST /hit/{key}': {
    summary: 'Add n hits (default 1) to a key; Idempotency-Key counts it once however often it is sent',
    errors: { 400: BAD, 414: PATH_TOO_LONG, 422: 'the Idempotency-Key was used on this key with another n', 500: WRITE_FAILED, 503: NOT_TAKING, 504: ACK_TIMEOUT },
  },
  'POST /hits': {
    summary: 'Add a batch of up to 10,000 items, all or nothing; an item\'s "id" works as its token',
    errors: { 400: BAD, 413: 'the body is over the size limit', 415: 'the body is not JSON (content-type: application/json)', 422: 'an item\'s id was used on its key with another n', 500: WRITE_FAILED, 503: NOT_TAKING, 504: ACK_TIMEOUT },
  },
  'GET /count/{key}': { summary: 'Hits of a key in a window, or in [from, to)', errors: { 400: BAD, 414: PATH_TOO_LONG, 503: CLOSING, 504: READ_TIMEOUT } },
  'GET /counts': { summary: 'Hits of up to 1,000 keys at once', errors: { 400: BAD, 503: CLOSING, 504: READ_TIMEOUT } },
  'GET /top': { summary: 'The k keys with the most hits in a window, ties in key order', errors: { 400: BAD, 503: `${CLOSING}, or 8 rankings already wait to count every key`, 504: READ_TIMEOUT } },
  'GET /cluster': { summary: 'This node, the members ack= and read= count, and every peer with its state, lag and clock offset', errors: { 400: BAD, 503: CLOSING } },
  'DELETE /cluster/members/{id}': { summary: 'Forget a decommissioned member', errors: { 400: 'a malformed id, or this node itself', 404: 'no such member', 503: CLOSING } },
  'GET /healthz': { summary: 'Liveness, with the node\'s id and incarnation', errors: { 400: BAD, 503: CLOSING } },
  'GET /readyz': { summary: 'Ready to take hits', errors: { 400: BAD, 503: 'not ready: {"ready": false, "reason"}' } },
  'GET /metrics': { summary: 'Prometheus text format', errors: { 400: BAD, 503: CLOSING } },
  'GET /openapi.json': { summary: 'This document', errors: { 400: BAD, 503: CLOSING } },
  'GET /': { summary: 'The live dashboard (HTML; its script and charts under /dashboard/, nothing from elsewhere)', errors: { 400: BAD, 503: CLOSING } },
};

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Every route each app registered after its document (method, path), HEAD routes aside: what a test compares the document with. */
const registered = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

export const registeredRoutes = (app: FastifyInstance): readonly { method: string; url: string }[] => registered.get(app) ?? [];

/** `/hit/:key` as OpenAPI writes it. */
export const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/**
 * GET /openapi.json, generated from the route schemas (@fastify/swagger),
 * and GET /docs, its page (@fastify/swagger-ui, served from node_modules).
 * Registered before the routes, so it sees each one. Each route's summary and
 * error statuses come from ROUTE_DOCS, in the document only: the runtime
 * schemas that validate and serialize stay as the routes wrote them.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  const routes: { method: string; url: string }[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) if (method !== 'HEAD') routes.push({ method, url: route.url });
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'hitmesh', version: VERSION, description: 'A peer-to-peer hit counter: exact counts per key and time window, replicated by gossip (README, HTTP API).' },
      // Used only by nodes run with --api-token; /docs then has an Authorize button.
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'the node\'s --api-token' } } },
    },
    transform: ({ schema: routeSchema, url, route }) => {
      const schema: FastifySchema = routeSchema ?? {};
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const doc = ROUTE_DOCS[`${methods[0] ?? ''} ${openApiPath(url)}`];
      if (doc === undefined) return { schema: { ...schema, hide: true }, url };
      const given = (schema.response ?? {}) as Record<string, object>;
      const response: Record<string, object> = { ...given, 200: { description: 'success', ...(given[200] ?? {}) } };
      for (const [status, description] of Object.entries(doc.errors)) response[status] = { ...(given[status] ?? errorBodySchema), description };
      // The '4xx' and '5xx' catch-alls are what the routes serialize with; the document lists each status instead.
      delete response['4xx'];
      delete response['5xx'];
      if (isOpenRoute(url)) return { schema: { ...schema, summary: doc.summary, response }, url };
      response[401] = { ...errorBodySchema, description: 'missing or wrong API token (only on a node run with --api-token)' };
      return { schema: { ...schema, summary: doc.summary, response, security: [{ bearerAuth: [] }] }, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null, deepLinking: false } });
  app.get('/openapi.json', { schema: { hide: false } }, async () => app.swagger());
}
