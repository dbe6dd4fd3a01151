// `?read=majority|all` (SPEC section 3): the answer joins the state of that
// many members for the range (max per slot, per origin), names who answered,
// writes nothing it learned, and is a 504 when too few answer in time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplicaState, hitBuckets } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { Tier } from '../../crdt/tiers.ts';
import { LIMITS } from '../../gossip/limits.ts';
import { LIFETIME_PLAN, planWindow } from '../../crdt/window-plan.ts';
import type { Read } from '../../gossip/messages.ts';
import { OpenReads } from '../../gossip/open-reads.ts';
import { fromRuns, toRuns } from '../../gossip/read-plan.ts';
import { FreshReads } from '../../node/fresh-reads.ts';
import { ReplicatedState } from '../../gossip/replicated-state.ts';
import type { RunningNode } from '../../node/start-node.ts';
import { clusterOf, eventually, proxies, sleep, starThroughProxies, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

const T = Date.UTC(2026, 10, 28, 12, 0, 0, 250);

describe('read plans on the wire', () => {
  it('every plan goes as a few runs and comes back bucket for bucket', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * 86_400_000 }), fc.integer({ min: 0, max: 400 * 86_400_000 }), (back, width) => {
        const now = T;
        const plan = planWindow(now - back, now - back + width, now, DEFAULT_RETENTION);
        const runs = toRuns(plan.buckets);
        expect(runs.length / 3).toBeLessThanOrEqual(LIMITS.maxReadRuns);
        expect(fromRuns(runs)).toEqual(plan.buckets);
      }),
    );
  });
});

describe('reads waiting for answers', () => {
  it('take one answer per peer, ask a peer again until it answers, and forget the oldest past the limit', () => {
    const reads = new OpenReads();
    const read = (id: number): Read => ({ type: 'read', id, keys: ['k'], runs: [4, 0, 1] });
    for (let id = 1; id <= LIMITS.maxOpenReads + 1; id++) reads.open(read(id));
    expect(reads.size).toBe(LIMITS.maxOpenReads);
    expect(reads.answered(1, 'n2'), 'the oldest was forgotten').toBe(false);
    expect(reads.answered(2, 'n2')).toBe(true);
    expect(reads.answered(2, 'n2'), 'a second answer').toBe(false);
    expect([...reads.unansweredBy('n2')].map((r) => r.id)).not.toContain(2);
    expect([...reads.unansweredBy('n3')].map((r) => r.id)).toContain(2);
    reads.close(3);
    expect([...reads.unansweredBy('n3')].map((r) => r.id)).not.toContain(3);
    expect(reads.answered(3, 'n3')).toBe(false);
  });
});

describe('joining what peers answer', () => {
  it('is the max per slot and origin, over ours and theirs, and leaves the state as it was', async () => {
    const state = new ReplicaState();
    const [second] = hitBuckets(T);
    if (second === undefined) throw new Error('no bucket');
    state.join({ origin: 'a#1', key: 'k', ...second, count: 5 });
    state.join({ origin: 'b#1', key: 'k', tier: Tier.lifetime, start: 0, count: 2 });
    const before = JSON.stringify([...state.slots()]);
    const plan = { from: second.start, to: second.start + 1000, buckets: [second] };
    const reads = new FreshReads({
      self: () => 'n1',
      state,
      members: () => 3,
      ask: (id) => {
        // n2 holds less of a#1 and more of c#1; n3 more of a#1.
        queueMicrotask(() => reads.onReply('n2', { type: 'readReply', id, origins: ['a#1', 'c#1'], rows: [0, 0, 0, 3, 0, 1, 0, 4], tooBig: false }));
        queueMicrotask(() => reads.onReply('n3', { type: 'readReply', id, origins: ['a#1'], rows: [0, 0, 0, 7], tooBig: false }));
        return ['n2', 'n3'];
      },
    });
    const all = await reads.read(['k'], plan, 'all', 1_000);
    expect(all).toMatchObject({ ok: true, counts: { k: 7 + 4 }, answered: ['n1', 'n2', 'n3'], needed: 3 });
    expect(JSON.stringify([...state.slots()])).toBe(before);
    // A reply naming a key or bucket it was not asked for is dropped, not trusted.
    const strict = new FreshReads({ self: () => 'n1', state, members: () => 2, ask: (id) => (queueMicrotask(() => strict.onReply('n2', { type: 'readReply', id, origins: ['a#1'], rows: [1, 0, 0, 9], tooBig: false })), ['n2']) });
    expect(await strict.read(['k'], plan, 'all', 50)).toMatchObject({ ok: false, counts: { k: 5 }, answered: ['n1'] });
  });
});


describe('a fresh read with idempotency tokens', () => {
  it('works duplicates out over the union of what members observed, each taken off its own origin only', async () => {
    const state = new ReplicaState();
    const [second] = hitBuckets(T);
    if (second === undefined) throw new Error('no bucket');
    // Here: a#1 counted token t (3 hits) and 1 hit more; b#1's retry of t is not known here yet.
    state.join({ origin: 'a#1', key: 'k', ...second, count: 4 });
    state.observe('k', 't', { origin: 'a#1', at: T, n: 3 });
    const plan = { from: second.start, to: second.start + 1000, buckets: [second] };
    const reads = new FreshReads({
      self: () => 'n1',
      state,
      members: () => 3,
      ask: (id) => {
        // n2 holds b#1's 3 hits of t and both observations; n3 claims a token of c#1 (2 hits held) and of evil#9 (none).
        queueMicrotask(() => reads.onReply('n2', { type: 'readReply', id, origins: ['a#1', 'b#1'], rows: [0, 0, 0, 4, 0, 1, 0, 3], tokens: [0, 't', 0, T, 3, 0, 't', 1, T + 1, 3], tooBig: false }));
        queueMicrotask(() => reads.onReply('n3', { type: 'readReply', id, origins: ['c#1', 'evil#9'], rows: [0, 0, 0, 2], tokens: [0, 'u', 1, T - 1, 99, 0, 'u', 0, T, 99], tooBig: false }));
        return ['n2', 'n3'];
      },
    });
    // a#1 4 + b#1 3 − b#1's duplicate 3 + c#1 2 − c#1's duplicate (99, capped at the 2 it holds).
    expect(await reads.read(['k'], plan, 'all', 1_000)).toMatchObject({ ok: true, counts: { k: 4 } });
    expect(JSON.stringify([...state.tokens.observations()])).toBe(JSON.stringify([{ key: 'k', token: 't', origin: 'a#1', at: T, n: 3 }]));
    // A reply whose tokens name a key that was not asked is dropped whole.
    const strict = new FreshReads({
      self: () => 'n1',
      state,
      members: () => 2,
      ask: (id) => (queueMicrotask(() => strict.onReply('n2', { type: 'readReply', id, origins: ['b#1'], rows: [0, 0, 0, 3], tokens: [3, 't', 0, T, 3], tooBig: false })), ['n2']),
    });
    expect(await strict.read(['k'], plan, 'all', 50)).toMatchObject({ ok: false, counts: { k: 4 }, answered: ['n1'] });
  });

  it('never answers less than a member holding every observation counts (a review found the max of members\' duplicates taking off a hit that counts)', async () => {
    const H = 3_600_000;
    const hitOf = (s: ReplicaState, origin: string, at: number): void => {
      s.addHit(origin, 'k', at - (at % 1000), 1, 1);
      s.observe('k', 'tok', { origin, at, n: 1 });
    };
    // The peer holds A (x) and B (y, an hour later): B is a duplicate there.
    const peer = new ReplicaState();
    hitOf(peer, 'x#1', T);
    hitOf(peer, 'y#1', T + H);
    // This node also holds C (z), 1.5 h before A: A is the duplicate, B (2.5 h after C) a new hit.
    const self = new ReplicaState();
    hitOf(self, 'x#1', T);
    hitOf(self, 'y#1', T + H);
    hitOf(self, 'z#1', T - 1.5 * H);
    expect(self.sum('k', LIFETIME_PLAN)).toBe(2);
    expect(peer.sum('k', LIFETIME_PLAN)).toBe(1);
    const answer = new ReplicatedState('p#1', peer).countsAt(['k'], LIFETIME_PLAN.buckets, 1e6);
    if (answer === undefined) throw new Error('too big');
    const reads: FreshReads = new FreshReads({
      self: () => 'n1',
      state: self,
      members: () => 2,
      ask: (id) => (queueMicrotask(() => reads.onReply('p', { type: 'readReply', id, ...answer, tooBig: false })), ['p']),
    });
    const fresh = await reads.read(['k'], LIFETIME_PLAN, 'all', 1_000);
    expect(fresh).toMatchObject({ ok: true, counts: { k: 2 } });
    // And the peer asking this node gets the same, from the other side.
    const back = new ReplicatedState('n1#1', self).countsAt(['k'], LIFETIME_PLAN.buckets, 1e6);
    if (back === undefined) throw new Error('too big');
    const fromPeer: FreshReads = new FreshReads({
      self: () => 'p',
      state: peer,
      members: () => 2,
      ask: (id) => (queueMicrotask(() => fromPeer.onReply('n1', { type: 'readReply', id, ...back, tooBig: false })), ['n1']),
    });
    expect(await fromPeer.read(['k'], LIFETIME_PLAN, 'all', 1_000)).toMatchObject({ ok: true, counts: { k: 2 } });
  });
});

async function get(node: RunningNode, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('?read= between real nodes', () => {
  it('over links delayed 300 ms, read=all on n1 counts a hit a peer has just taken, and answered names every member', async () => {
    const [n1, n2] = await starThroughProxies(300);
    for (let i = 1; i <= 3; i++) {
      expect((await fetch(`${n2.url}/hit/fresh-k`, { method: 'POST' })).status).toBe(200);
      const fresh = await get(n1, '/count/fresh-k?window=all&read=all&timeout=10s');
      expect(fresh.status).toBe(200);
      expect(fresh.body.count).toBe(i);
      expect((fresh.body.freshness as { answered: string[] }).answered.sort()).toEqual(['n1', 'n2', 'n3']);
      const many = await get(n1, '/counts?keys=fresh-k,other&window=1h&read=majority&timeout=10s');
      expect(many.status).toBe(200);
      expect((many.body.freshness as { answered: string[] }).answered).toHaveLength(2);
    }
  });

  it('with a member down, read=majority answers and read=all is a 504 naming who answered', async () => {
    const [n1, n2, n3] = await starThroughProxies(0);
    await fetch(`${n2.url}/hit/k?ack=all`, { method: 'POST' });
    await n3.stop();
    const majority = await get(n1, '/count/k?window=all&read=majority&timeout=2s');
    expect(majority.status).toBe(200);
    expect(majority.body.count).toBe(1);
    const all = await get(n1, '/count/k?window=all&read=all&timeout=300ms');
    expect(all.status).toBe(504);
    expect(all.body).toMatchObject({ answered: ['n1', 'n2'], needed: 3 });
  });

  it('asks a member whose link comes up while the read waits (a review found such a read waiting out its whole timeout)', async () => {
    const [n1, n2, n3] = await starThroughProxies(0);
    await fetch(`${n2.url}/hit/k`, { method: 'POST' });
    await fetch(`${n3.url}/hit/k`, { method: 'POST' });
    const toN3 = proxies[1];
    if (toN3 === undefined) throw new Error('no proxy');
    toN3.cut();
    await eventually('n1 to see n3 go', () => clusterOf(n1), (c) => c.peers.some((p) => p.id === 'n3' && p.state !== 'up'));
    const reading = get(n1, '/count/k?window=all&read=all&timeout=10s');
    await sleep(300);
    toN3.heal();
    const fresh = await reading;
    expect(fresh.status).toBe(200);
    expect(fresh.body.count).toBe(2);
  });

  it('asks again when the link a read went out on drops before the answer came', async () => {
    const [n1, , n3] = await starThroughProxies(0);
    await fetch(`${n3.url}/hit/k`, { method: 'POST' });
    const toN3 = proxies[1];
    if (toN3 === undefined) throw new Error('no proxy');
    // The read and its answer wait in the proxy; the cut loses them both.
    toN3.delay(1_000);
    const reading = get(n1, '/count/k?window=all&read=all&timeout=10s');
    await sleep(300);
    toN3.cut();
    toN3.heal();
    const fresh = await reading;
    expect(fresh.status).toBe(200);
    expect(fresh.body.count).toBe(1);
    expect(fresh.body.freshness).toMatchObject({ answered: ['n1', expect.any(String), expect.any(String)] });
  });

  it('refuses bad levels, bad timeouts and reads too big to gather with a 400', async () => {
    const [n1] = await starThroughProxies(0);
    for (const query of ['read=quorum', 'read=', 'read=all&timeout=0ms', 'read=all&timeout=2m', 'read=all&read=all']) {
      expect((await get(n1, `/count/k?${query}`)).status, query).toBe(400);
    }
    const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`).join(',');
    const big = await get(n1, `/counts?keys=${keys}&window=1825d&read=majority`);
    expect(big.status).toBe(400);
    expect(String(big.body.error)).toContain(`limit of ${LIMITS.maxReadBuckets}`);
    // The same read, local, is within the local budget.
    expect((await get(n1, `/counts?keys=${keys}&window=1825d`)).status).toBe(200);
  });
});
