import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.ts';

/** GET /healthz (the process answers) and GET /readyz (it can take hits). */
export const healthRoutes: FastifyPluginAsync<ApiDeps> = async (app, { replica }) => {
  app.get('/healthz', async () => ({ status: 'ok', node: replica.identity.id, incarnation: replica.identity.incarnation }));

  app.get('/readyz', async (_request, reply) => {
    const reason = !replica.isAccepting
      ? 'store closed or shutting down'
      : !app.server.listening
        ? 'not listening yet'
        : replica.notTakingHits;
    if (reason !== undefined) return reply.code(503).send({ ready: false, reason });
    return { ready: true };
  });
};
