import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from './deps.ts';

/** GET /cluster: this node, and every member it knows with its state, address, last contact, version vector, lag and clock offset. */
export const clusterRoutes: FastifyPluginAsync<ApiDeps> = async (app, { replica, advertise, peers }) => {
  app.get('/cluster', async () => {
    const now = replica.now();
    return {
      node: {
        id: replica.identity.id,
        incarnation: replica.identity.incarnation,
        origin: replica.identity.origin,
        address: advertise(),
        seq: replica.seq,
        keys: replica.state.keyCount,
        vv: replica.replicated.versionVector(),
      },
      peers: peers().map((p) => ({
        id: p.id,
        origin: p.origin ?? null,
        address: p.address,
        state: p.state,
        lastContact: p.lastContact ?? null,
        lastContactAgoMs: p.lastContact === undefined ? null : now - p.lastContact,
        vv: p.vv,
        synced: p.synced,
        replicationLagMs: p.lagMs,
        clockOffsetMs: p.clockOffsetMs ?? null,
        rttMs: p.rttMs ?? null,
      })),
    };
  });
};
