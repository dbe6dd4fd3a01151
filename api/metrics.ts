import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.ts';

/** GET /metrics in the Prometheus text format. */
export const metricsRoutes: FastifyPluginAsync<ApiDeps> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.scrape();
  });
};
