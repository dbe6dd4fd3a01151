// GET /openapi.json and /docs (SPEC section 3): the document is a valid
// OpenAPI 3 document, names every route the app has (none slips in
// undocumented), and lists every error status the routes really answer.
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { SINGLE_NODE_FRESHNESS } from '../../api/deps.ts';
import { ROUTE_DOCS, openApiPath, registeredRoutes } from '../../api/openapi.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { Replica } from '../../node/replica.ts';

interface Operation {
  readonly summary?: string;
  readonly responses: Record<string, { description?: string }>;
}
interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, Operation>>;
}

/** Routes that are not part of the API: the docs page's and the dashboard's own files. */
const NOT_API = (url: string): boolean => url === '/docs' || url.startsWith('/docs/') || url.startsWith('/dashboard/');

let replica: Replica;
let app: FastifyInstance;
let doc: OpenApiDocument;

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  const metrics = new NodeMetrics({ node: 'n1' });
  replica = await Replica.open({ store: new MemoryStore(), id: 'n1', retention: DEFAULT_RETENTION, clock: new ManualClock(Date.UTC(2026, 11, 2, 12)), logger, metrics });
  app = await buildApp({ replica, metrics, logger, bodyLimitBytes: 64 * 1024, advertise: () => '127.0.0.1:7001', freshness: () => SINGLE_NODE_FRESHNESS, peers: () => [], forgetMember: () => false });
  const res = await app.inject({ url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = JSON.parse(res.body) as OpenApiDocument;
});

afterAll(async () => {
  await app.close();
  await replica.close();
});

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3 document', async () => {
    expect(doc.openapi.startsWith('3.')).toBe(true);
    const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('names every route the app serves, with a summary, and no route it does not serve', () => {
    const served = registeredRoutes(app).filter((r) => !NOT_API(r.url));
    expect(served.length).toBeGreaterThanOrEqual(11);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(served.map((r) => `${r.method} ${openApiPath(r.url)}`).sort());
    for (const [path, ops] of Object.entries(doc.paths)) for (const op of Object.values(ops)) expect(op.summary, path).toBeTruthy();
    // And SPEC's routes are all there.
    for (const route of ['POST /hit/{key}', 'POST /hits', 'GET /count/{key}', 'GET /counts', 'GET /top', 'GET /cluster', 'DELETE /cluster/members/{id}', 'GET /openapi.json', 'GET /', 'GET /healthz', 'GET /readyz', 'GET /metrics']) expect(documented).toContain(route);
  });

  it('lists every error status the routes answer, each with why', async () => {
    const longKey = 'k'.repeat(1100);
    const cases: { route: string; request: InjectOptions }[] = [
      { route: 'POST /hit/{key}', request: { method: 'POST', url: '/hit/a%00b' } },
      { route: 'POST /hit/{key}', request: { method: 'POST', url: '/hit/k?n=0' } },
      { route: 'POST /hit/{key}', request: { method: 'POST', url: `/hit/${longKey}` } },
      { route: 'POST /hit/{key}', request: { method: 'POST', url: '/hit/k?n=2', headers: { 'idempotency-key': 'once' } } },
      { route: 'POST /hits', request: { method: 'POST', url: '/hits', headers: { 'content-type': 'text/plain' }, payload: 'x' } },
      { route: 'POST /hits', request: { method: 'POST', url: '/hits', headers: { 'content-type': 'application/json' }, payload: JSON.stringify([{ key: 'k'.repeat(200) }].concat(Array.from({ length: 400 }, () => ({ key: 'k'.repeat(200) })))) } },
      { route: 'POST /hits', request: { method: 'POST', url: '/hits', headers: { 'content-type': 'application/json' }, payload: '[{"key":' } },
      { route: 'POST /hits', request: { method: 'POST', url: '/hits', headers: { 'content-type': 'application/json' }, payload: JSON.stringify([{ key: 'k', n: 3, id: 'once' }]) } },
      { route: 'GET /count/{key}', request: { url: '/count/k?window=soon' } },
      { route: 'GET /count/{key}', request: { url: `/count/${longKey}` } },
      { route: 'GET /counts', request: { url: '/counts' } },
      { route: 'GET /top', request: { url: '/top?k=0' } },
      { route: 'GET /top', request: { url: '/top?read=some' } },
      { route: 'DELETE /cluster/members/{id}', request: { method: 'DELETE', url: '/cluster/members/n1' } },
      { route: 'DELETE /cluster/members/{id}', request: { method: 'DELETE', url: '/cluster/members/gone' } },
    ];
    // The token "once" first taken with n = 1: the cases above reuse it with another n.
    expect((await app.inject({ method: 'POST', url: '/hit/k', headers: { 'idempotency-key': 'once' } })).statusCode).toBe(200);
    const seen = new Set<string>();
    for (const { route, request } of cases) {
      const res = await app.inject(request);
      expect(res.statusCode, `${route} ${JSON.stringify(request).slice(0, 120)}`).toBeGreaterThanOrEqual(400);
      const [method, path] = route.split(' ') as [string, string];
      const response = doc.paths[path]?.[method.toLowerCase()]?.responses[String(res.statusCode)];
      expect(response?.description, `${route} answers ${res.statusCode}, which the document does not list`).toBeTruthy();
      seen.add(`${route} ${res.statusCode}`);
    }
    // The cases reach every client error the table documents, so the table is not wider than what happens.
    expect([...seen].sort()).toEqual(
      ['POST /hit/{key} 400', 'POST /hit/{key} 414', 'POST /hit/{key} 422', 'POST /hits 413', 'POST /hits 415', 'POST /hits 400', 'POST /hits 422', 'GET /count/{key} 400', 'GET /count/{key} 414', 'GET /counts 400', 'GET /top 400', 'DELETE /cluster/members/{id} 400', 'DELETE /cluster/members/{id} 404'].sort(),
    );
    // What cannot be provoked on a lone node is documented all the same: timeouts of ack= and read=, refusals.
    for (const route of ['POST /hit/{key}', 'POST /hits', 'GET /count/{key}', 'GET /counts', 'GET /top']) expect(Object.keys(ROUTE_DOCS[route]?.errors ?? {})).toEqual(expect.arrayContaining(['503', '504']));
    for (const [route, { errors }] of Object.entries(ROUTE_DOCS)) {
      const [method, path] = route.split(' ') as [string, string];
      for (const status of Object.keys(errors)) expect(doc.paths[path]?.[method.toLowerCase()]?.responses[status], `${route} ${status}`).toBeDefined();
    }
  });
});

describe('the docs page', () => {
  it('is served from this node, with no resource from anywhere else', async () => {
    const page = await app.inject({ url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) expect((await app.inject({ url: asset })).statusCode, asset).toBe(200);
    // The page loads the document it documents from here too, and asks no outside validator.
    const init = await app.inject({ url: '/docs/static/swagger-initializer.js' });
    expect(init.body).toMatch(/resolveUrl\('\.\/json'\)/);
    expect(init.body).not.toMatch(/validator\.swagger\.io/);
    const json = await app.inject({ url: '/docs/json' });
    expect(JSON.parse(json.body)).toEqual(doc);
  });
});
