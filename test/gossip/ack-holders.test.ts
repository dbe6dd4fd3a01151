// What `?ack=` counts, driven through GossipCore frame by frame: a peer's
// `held` and syncs say how much of this node's origin it holds, and nothing
// a stale or ahead peer said may acknowledge a batch it does not hold.
import { describe, expect, it } from 'vitest';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { DEFAULT_GOSSIP } from '../../gossip/config.ts';
import type { Message, SyncEntry } from '../../gossip/messages.ts';
import { GossipCore, type ConnId, type Output } from '../../gossip/protocol.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { ReplicatedState } from '../../gossip/replicated-state.ts';

const NOW = Date.UTC(2026, 10, 28, 12);

function node(id: string, incarnation: string, seed: number): { core: GossipCore; replicated: ReplicatedState; origin: string; behind: string[] } {
  const origin = `${id}#${incarnation}`;
  const random = mulberry32(seed);
  const replicated = new ReplicatedState(origin, new ReplicaState());
  const behind: string[] = [];
  const core = new GossipCore({ id, origin, address: `mem-${id}:1` }, replicated, DEFAULT_GOSSIP, {
    seeds: [],
    secret: undefined,
    randomBytes: (k) => Uint8Array.from({ length: k }, () => Math.floor(random() * 256)),
    random,
    onOwnOriginBehind: (peer) => behind.push(peer),
  });
  return { core, replicated, origin, behind };
}

/**
 * Open a connection between a (conn `ca`) and b (conn `cb`): handshake and
 * syncs only, no deltas (a repair would make b hold our origin for real, and
 * its `held` would then be the truth), until both are quiet.
 */
function connect(a: GossipCore, ca: ConnId, b: GossipCore, cb: ConnId): void {
  let toB = a.connected(ca, NOW, 'mem-b:1');
  let toA = b.connected(cb, NOW);
  for (let rounds = 0; rounds < 10 && (toA.length > 0 || toB.length > 0); rounds++) {
    const nextA = deliver(toB, ca, b, cb);
    const nextB = deliver(toA, cb, a, ca);
    toA = nextA;
    toB = nextB;
  }
}

/** Frames `outs` sent on `from` arrive at `to` on its conn `at`; returns what `to` sends back. */
function deliver(outs: readonly Output[], from: ConnId, to: GossipCore, at: ConnId): Output[] {
  const back: Output[] = [];
  for (const o of outs) if (o.kind === 'send' && o.conn === from && o.message.type !== 'delta') back.push(...to.received(at, o.message, NOW));
  return back;
}

const frame = (core: GossipCore, conn: ConnId, message: Message): Output[] => core.received(conn, message, NOW);

function syncOf(vv: Record<string, SyncEntry>): Message {
  return { type: 'sync', vv, members: {}, links: [], sent: NOW, echo: 0, held: 0 };
}

describe('who holds this node’s batches', () => {
  it('a peer that comes back as a new incarnation holds nothing of ours, whatever its old one said', () => {
    const a = node('a', 'x', 1);
    a.replicated.noteLocal(5, NOW);
    const b1 = node('b', 'old', 2);
    connect(a.core, 1, b1.core, 1);
    frame(a.core, 1, { type: 'held', origin: a.origin, seq: 5 });
    expect(a.core.holdersOf(5)).toEqual({ acked: 2, members: 2 });
    a.core.disconnected(1, NOW);
    const b2 = node('b', 'new', 3); // wiped disk, same --id
    connect(a.core, 2, b2.core, 1);
    expect(a.core.holdersOf(5).acked).toBe(1);
  });

  it('a peer ahead of our own origin (a store that lost writes) acknowledges none of our batches', () => {
    const a = node('a', 'x', 1);
    a.replicated.noteLocal(5, NOW);
    const b = node('b', 'y', 2);
    connect(a.core, 1, b.core, 1);
    frame(a.core, 1, { type: 'held', origin: a.origin, seq: 9 });
    expect(a.core.holdersOf(5).acked).toBe(1);
    frame(a.core, 1, syncOf({ [a.origin]: [7, NOW, 0, 7] }));
    expect(a.core.holdersOf(5).acked).toBe(1);
    expect(b.behind).toEqual([]);
    expect(a.behind).toEqual(['b']);
  });

  it('a sync replaces what a peer was believed to hold: lower is lower', () => {
    const a = node('a', 'x', 1);
    a.replicated.noteLocal(5, NOW);
    const b = node('b', 'y', 2);
    connect(a.core, 1, b.core, 1);
    frame(a.core, 1, { type: 'held', origin: a.origin, seq: 5 });
    expect(a.core.holdersOf(5).acked).toBe(2);
    frame(a.core, 1, syncOf({ [a.origin]: [3, NOW, 0, 3] }));
    expect(a.core.holdersOf(5).acked).toBe(1);
    expect(a.core.holdersOf(3).acked).toBe(2);
    frame(a.core, 1, syncOf({}));
    expect(a.core.holdersOf(1).acked).toBe(1);
  });
});
