import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.ts';

/** GET /cluster: this node and its peers (none until gossip joins them). */
export const clusterRoutes: FastifyPluginAsync<ApiDeps> = async (app, { replica, advertise }) => {
  app.get('/cluster', async () => ({
    node: {
      id: replica.identity.id,
      incarnation: replica.identity.incarnation,
      origin: replica.identity.origin,
      address: advertise(),
      seq: replica.seq,
      keys: replica.state.keyCount,
    },
    peers: [],
  }));
};
