import type { FastifyPluginAsync } from 'fastify';
import { isNodeId } from '../crdt/names.ts';
import { neededFor } from '../node/ack-waiters.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, errorBodySchema } from './http-error.ts';

/** GET /cluster: this node, and every member it knows with its state, address, last contact, version vector, lag and clock offset. */
export const clusterRoutes: FastifyPluginAsync<ApiDeps> = async (app, { replica, advertise, peers, forgetMember }) => {
  app.get('/cluster', async () => {
    const now = replica.now();
    const all = peers();
    // What ?ack= and ?read= count (SPEC section 3): the latest incarnation of every id known and not forgotten, this node included.
    const count = all.length + 1;
    return {
      members: { ids: [replica.identity.id, ...all.map((p) => p.id)].sort(), count, majority: neededFor('majority', count) },
      node: {
        id: replica.identity.id,
        incarnation: replica.identity.incarnation,
        origin: replica.identity.origin,
        address: advertise(),
        seq: replica.seq,
        keys: replica.state.keyCount,
        // Lifetime hits of this node's origin: successive polls give its hits per second (the dashboard).
        hits: replica.state.originHits(replica.identity.origin),
        vv: replica.replicated.versionVector(),
      },
      peers: all.map((p) => ({
        id: p.id,
        origin: p.origin ?? null,
        // The peer's current origin as held here; lags the peer by the replication lag.
        hits: p.origin === undefined ? null : replica.state.originHits(p.origin),
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

  app.delete<{ Params: { id: string } }>(
    '/cluster/members/:id',
    { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } }, response: { '4xx': errorBodySchema } } },
    async (request, reply) => {
      const { id } = request.params;
      if (!isNodeId(id)) throw badRequest(`${JSON.stringify(String(id).slice(0, 80))} is not a node id`);
      if (id === replica.identity.id) throw badRequest('a node cannot forget itself');
      if (forgetMember?.(id) !== true) return reply.code(404).send({ error: `no member ${id}` });
      return { forgotten: id };
    },
  );
};
