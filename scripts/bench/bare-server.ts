/**
 * The ceiling: the same routes on a bare fastify server that does nothing but
 * answer. What a hitmesh node reaches is reported as a ratio of this.
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? '0');
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
const ok = { type: 'object', properties: { key: { type: 'string' }, n: { type: 'integer' }, node: { type: 'string' }, at: { type: 'integer' } } } as const;

app.post<{ Params: { key: string } }>('/hit/:key', { schema: { response: { 200: ok } } }, async (request) => ({ key: request.params.key, n: 1, node: 'bare', at: Date.now() }));
app.post<{ Body: unknown[] }>('/hits', async (request) => ({ accepted: request.body.length }));
app.get<{ Params: { key: string } }>('/count/:key', async (request) => ({ key: request.params.key, count: 0, node: 'bare', asOf: Date.now() }));
app.get('/readyz', async () => ({ ready: true }));

await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
