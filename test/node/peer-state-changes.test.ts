import { describe, expect, it } from 'vitest';
import type { PeerState, PeerView } from '../../gossip/protocol.ts';
import { PeerStateChanges } from '../../node/peer-state-changes.ts';

const peer = (id: string, state: PeerState): PeerView => ({
  id,
  origin: `${id}#1`,
  address: `127.0.0.1:${id.length}`,
  state,
  lastContact: undefined,
  vv: {},
  clockOffsetMs: undefined,
  rttMs: undefined,
  synced: true,
  lagMs: 0,
});

describe('PeerStateChanges', () => {
  it('reports each change of state once, and a first sighting unless it is down', () => {
    const changes = new PeerStateChanges();
    expect(changes.next([peer('a', 'up'), peer('b', 'down')])).toEqual([{ id: 'a', address: '127.0.0.1:1', from: undefined, to: 'up' }]);
    expect(changes.next([peer('a', 'up'), peer('b', 'down')])).toEqual([]);
    expect(changes.next([peer('a', 'suspect'), peer('b', 'up')]).map((c) => [c.id, c.from, c.to])).toEqual([
      ['a', 'up', 'suspect'],
      ['b', 'down', 'up'],
    ]);
    expect(changes.next([peer('a', 'down'), peer('b', 'up')]).map((c) => [c.id, c.from, c.to])).toEqual([['a', 'suspect', 'down']]);
    expect(changes.next([peer('a', 'up')]).map((c) => [c.id, c.from, c.to])).toEqual([['a', 'down', 'up']]);
  });
});
