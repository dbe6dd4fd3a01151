// `?read=majority|all` (SPEC section 3): the answer joins the state of that
// many members for the range (max per slot, per origin), names who answered,
// writes nothing it learned, and is a 504 when too few answer in time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplicaState, hitBuckets } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { Tier } from '../../crdt/tiers.ts';
import { LIMITS } from '../../gossip/limits.ts';
import { planWindow } from '../../crdt/window-plan.ts';
import { fromRuns, toRuns } from '../../gossip/read-plan.ts';
import { FreshReads } from '../../node/fresh-reads.ts';
import type { RunningNode } from '../../node/start-node.ts';
import { starThroughProxies, useLiveNodes } from './live-nodes.ts';

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
  it('takes off the most duplicates any member proves, per origin, never past what that origin holds', async () => {
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
        // n2 holds b#1's 3 hits of t and knows they are a duplicate; n3 claims 99 duplicates of c#1, which it holds 2 hits of.
        queueMicrotask(() => reads.onReply('n2', { type: 'readReply', id, origins: ['a#1', 'b#1'], rows: [0, 0, 0, 4, 0, 1, 0, 3], duplicates: [0, 1, 0, 3], tooBig: false }));
        queueMicrotask(() => reads.onReply('n3', { type: 'readReply', id, origins: ['c#1'], rows: [0, 0, 0, 2], duplicates: [0, 0, 0, 99], tooBig: false }));
        return ['n2', 'n3'];
      },
    });
    expect(await reads.read(['k'], plan, 'all', 1_000)).toMatchObject({ ok: true, counts: { k: 4 } });
    // A reply whose duplicates name a bucket that was not asked is dropped whole.
    const strict = new FreshReads({
      self: () => 'n1',
      state,
      members: () => 2,
      ask: (id) => (queueMicrotask(() => strict.onReply('n2', { type: 'readReply', id, origins: ['b#1'], rows: [0, 0, 0, 3], duplicates: [0, 0, 5, 3], tooBig: false })), ['n2']),
    });
    expect(await strict.read(['k'], plan, 'all', 50)).toMatchObject({ ok: false, counts: { k: 4 }, answered: ['n1'] });
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
