/**
 * Origins that are gone and members that were made up or went away:
 * - data held beyond a complete entry reaches every node even when its
 *   origin is gone for good (finding 5: before, it was offered only by a node
 *   whose entry was ahead, so it stayed on one node forever);
 * - a member list stuffed with invented names never makes a node send what
 *   its peers refuse, and never keeps a real peer out (finding 7);
 * - a member without a connection for --forget-after is forgotten.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { Tier } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { DEFAULT_GOSSIP } from '../../gossip/config.ts';
import { LIMITS } from '../../gossip/limits.ts';
import { PROTOCOL_VERSION, parseMessage, type Message } from '../../gossip/messages.ts';
import { GossipCore, type Output } from '../../gossip/protocol.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { ReplicatedState } from '../../gossip/replicated-state.ts';
import { SimNetwork, fingerprint } from '../../gossip/sim-network.ts';
import { ClockFilter, clockVerdict } from '../../gossip/clock-filter.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const NO_FAULTS = { latencyMs: 2, jitterMs: 0, dropRate: 0, duplicateRate: 0 };
const GONE = 'gone#1';

describe('data of an origin that is gone', () => {
  it('held beyond the complete entry on one node only, it reaches the other (partial exchange by digest)', () => {
    const net = new SimNetwork(2, NO_FAULTS, DEFAULT_GOSSIP, 5);
    net.run(1_000);
    const t = net.now - (net.now % 1000);
    const [b, c] = [net.node(0), net.node(1)];
    // Both hold the gone origin completely up to seq 3...
    for (const node of [b, c]) {
      node.replicated.apply(GONE, { hits: [{ key: 'k', second: t - 5_000, counts: [2, 2, 2, 2, 2] }], slots: [] }, { from: 0, to: [3, t - 5_000] }, [3, t - 5_000]);
    }
    // ...and b also got part of seq 5 (4 never arrived anywhere): it cannot complete the entry, nor can anyone.
    b.replicated.apply(GONE, { hits: [{ key: 'k', second: t - 1_000, counts: [1, 3, 3, 3, 3] }, { key: 'x', second: t - 1_000, counts: [7, 7, 7, 7, 7] }], slots: [] }, undefined, [5, t - 1_000]);
    expect(b.replicated.entry(GONE)?.[0]).toBe(3);
    expect(net.converged()).toBe(false);

    const took = net.runUntilConverged(10_000);
    expect(took, 'converged within 10 s of virtual time').not.toBeUndefined();
    for (const node of [b, c]) {
      expect(node.state.sum('x', LIFETIME_PLAN), node.id).toBe(7);
      expect(node.state.sum('k', LIFETIME_PLAN), node.id).toBe(3);
      expect(node.replicated.entry(GONE)?.[0], 'nobody claims what nobody has').toBe(3);
    }
    // Once equal, nothing more is exchanged: the digests match.
    const before = net.deltaBytes;
    net.run(5_000);
    expect(net.deltaBytes - before).toBe(0);
  });

  it('each of two nodes holding other parts beyond the same entry ends up with both', () => {
    const net = new SimNetwork(3, NO_FAULTS, DEFAULT_GOSSIP, 9);
    net.run(1_000);
    const t = net.now - (net.now % 1000);
    net.node(0).replicated.apply(GONE, { hits: [], slots: [{ key: 'p', tier: Tier.lifetime, start: 0, count: 4 }] }, undefined, [9, t]);
    net.node(2).replicated.apply(GONE, { hits: [], slots: [{ key: 'q', tier: Tier.lifetime, start: 0, count: 6 }] }, undefined, [9, t]);
    expect(net.runUntilConverged(10_000)).not.toBeUndefined();
    for (const node of net.nodes) expect([node.state.sum('p', LIFETIME_PLAN), node.state.sum('q', LIFETIME_PLAN)], node.id).toEqual([4, 6]);
    expect(fingerprint(net.node(1).state)).toBe(fingerprint(net.node(0).state));
  });
});

/** A core and a scripted peer that talks to it frame by frame, as on the wire. */
function harness(now: number) {
  const random = mulberry32(1);
  const replicated = new ReplicatedState('a#1', new ReplicaState());
  const core = new GossipCore({ id: 'a', origin: 'a#1', address: 'a.test:7001' }, replicated, DEFAULT_GOSSIP, {
    seeds: [],
    secret: undefined,
    randomBytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256)),
    random,
  });
  const wire = (m: Message): Message => parseMessage(packr.unpack(packr.pack(m)), now);
  /** Connect peer `id` on connection `conn` and finish the handshake; returns what the core sent. */
  const join = (conn: number, id: string): Output[] => {
    const out = [...core.connected(conn, now)];
    out.push(...core.received(conn, wire({ type: 'hello', protocol: PROTOCOL_VERSION, id, origin: `${id}#1`, address: `${id}.test:7001`, nonce: new Uint8Array(16) }), now));
    out.push(...core.received(conn, wire({ type: 'auth', proof: new Uint8Array(0) }), now));
    return out;
  };
  return { core, wire, join };
}

const syncsIn = (out: readonly Output[]): Extract<Message, { type: 'sync' }>[] => out.flatMap((o) => (o.kind === 'send' && o.message.type === 'sync' ? [o.message] : []));

describe('members', () => {
  const NOW = Date.UTC(2026, 11, 1);

  it('a sync naming more members than fit fills the list to its limit, no further; every sync sent still parses; a real peer still gets in', () => {
    const { core, wire, join } = harness(NOW);
    join(1, 'liar');
    const invented = Object.fromEntries(Array.from({ length: LIMITS.maxMembers }, (_, i) => [`made-up-${i}`, `10.9.${i >> 8}.${i & 255}:7001`]));
    core.received(1, wire({ type: 'sync', vv: {}, members: invented, links: [], sent: NOW, echo: 0, held: 0 }), NOW);
    expect(core.memberCount).toBe(LIMITS.maxMembers);
    expect(core.stats.limited.members).toBe(0);
    // What it sends the next peer, member list included, is a sync that peer accepts.
    const out = join(2, 'honest');
    const [sync] = syncsIn(out);
    expect(sync).toBeDefined();
    expect(Object.keys(sync?.members ?? {}).length).toBeLessThanOrEqual(LIMITS.maxMembers);
    expect(() => wire(sync as Message)).not.toThrow();
    // The honest peer took the place of a name never heard from.
    expect(core.peers(NOW).find((p) => p.id === 'honest')?.state).toBe('up');
    expect(core.memberCount).toBe(LIMITS.maxMembers);
  });

  it('forgets a member without a connection for --forget-after, and stops dialing it; forget() does it at once', () => {
    const net = new SimNetwork(3, NO_FAULTS, { ...DEFAULT_GOSSIP, forgetAfterMs: 5_000 }, 3, { seeds: (i) => (i === 0 ? [] : [0]) });
    net.run(2_000);
    expect(net.node(0).core.peers(net.now).map((p) => p.id).sort()).toEqual(['n1', 'n2']);
    net.partition((i) => (i === 2 ? 1 : 0));
    net.run(4_000);
    expect(net.node(0).core.peers(net.now).map((p) => p.id)).toContain('n2');
    net.run(4_000);
    expect(net.node(0).core.peers(net.now).map((p) => p.id), 'n2 forgotten by n0').toEqual(['n1']);
    expect(net.node(1).core.peers(net.now).map((p) => p.id), 'n2 forgotten by n1').toEqual(['n0']);
    // n2 still has n0 as its seed: after the heal it dials it and is a member again.
    net.heal();
    net.run(3_000);
    expect(net.node(0).core.peers(net.now).map((p) => p.id).sort()).toEqual(['n1', 'n2']);

    const { found, outputs } = net.node(0).core.forget('n2', net.now);
    expect(found).toBe(true);
    expect(outputs).toEqual([expect.objectContaining({ kind: 'close' })]);
    expect(net.node(0).core.forget('nobody', net.now).found).toBe(false);
  });
});

describe('clock samples', () => {
  it('believe the shortest round trip, and among about as short ones the newest (a step shows within one sync)', () => {
    const filter = new ClockFilter();
    filter.add({ offsetMs: 0, rttMs: 1, at: 1 });
    filter.add({ offsetMs: 3, rttMs: 40, at: 2 });
    expect(filter.best()?.offsetMs).toBe(0);
    filter.add({ offsetMs: 5_000, rttMs: 0, at: 3 });
    expect(filter.best()?.offsetMs, 'a clock step on a LAN is seen at once').toBe(5_000);
    filter.add({ offsetMs: 10, rttMs: 2, at: 4 });
    expect(filter.best()?.offsetMs).toBe(10);
    expect(filter.best(5)).toBeUndefined();
    expect(clockVerdict([{ offsetMs: 600, rttMs: 10, at: 0 }, { offsetMs: 700, rttMs: 0, at: 0 }, { offsetMs: 0, rttMs: 0, at: 0 }], 500)).toEqual({ judged: 3, off: 2, skewed: true });
    // Off by 600 ms over a 400 ms round trip may be as little as 400 ms off: not judged skewed.
    expect(clockVerdict([{ offsetMs: 600, rttMs: 400, at: 0 }], 500).skewed).toBe(false);
    expect(clockVerdict([], 500).skewed).toBe(false);
  });

  it('drop the samples a clock took before it was set back, however short their round trips', () => {
    // Samples taken while this clock was 5 s ahead are stamped in what is now the future.
    const filter = new ClockFilter();
    filter.add({ offsetMs: -5_000, rttMs: 0, at: 105_000 });
    filter.add({ offsetMs: -5_000, rttMs: 1, at: 106_000 });
    // Set right at 101,000 (real time): until a fresh sample comes, the old ones are not believed.
    expect(filter.best(101_000 - 30_000, 101_000)).toBeUndefined();
    // A fresh sample with a longer round trip: the old ones go, and it is believed from now on, also once the clock passes their stamps.
    filter.add({ offsetMs: 3, rttMs: 20, at: 101_500 });
    expect(filter.best(0, 101_500)?.offsetMs).toBe(3);
    expect(filter.best(0, 110_000)?.offsetMs).toBe(3);
    expect(filter.best()?.offsetMs).toBe(3);
  });
});
