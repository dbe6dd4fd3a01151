import type { ClusterAnswer } from '../../client/index.ts';
import type { CommandSpec } from './command-spec.ts';
import { clientFor } from './node-client.ts';
import { columns, formatOffset, formatSpan, printJson, printLines } from './text-output.ts';

/** The answering node first (state `self`), then every member it knows. */
export function clusterTable(cluster: ClusterAnswer): string[] {
  const header = ['id', 'state', 'address', 'last contact', 'replication lag', 'clock offset'];
  const self = [cluster.node.id, 'self', cluster.node.address, '-', '-', '-'];
  const peers = cluster.peers.map((p) => [
    p.id,
    p.state,
    p.address,
    p.lastContactAgoMs === null ? 'never' : `${formatSpan(p.lastContactAgoMs)} ago`,
    formatSpan(p.replicationLagMs),
    p.clockOffsetMs === null ? '?' : formatOffset(p.clockOffsetMs),
  ]);
  return columns([header, self, ...peers], [3, 4, 5]);
}

/** `hitmesh cluster`: the members as one node sees them. */
export const clusterCommand: CommandSpec = {
  name: 'cluster',
  summary: 'the members one node knows: state, address, last contact, replication lag, clock offset',
  usage: 'cluster',
  positionals: [],
  flags: [],
  notes: ['output: a table of members as the first node that answers sees them; with --json its GET /cluster answer'],
  async run({ global }) {
    const answer = await clientFor(global).cluster();
    if (global.json) {
      printJson(answer);
      return 0;
    }
    const up = answer.peers.filter((p) => p.state === 'up').length;
    printLines([...clusterTable(answer), `${answer.members.count} members, majority ${answer.members.majority}; ${up} of ${answer.peers.length} peers up, seen from ${answer.node.id}`]);
    return 0;
  },
};
