import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareObservations, tokenProblem, type Observation } from '../../crdt/key-tokens.ts';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION, horizon } from '../../crdt/retention.ts';
import { ALL_TIERS, TIMED_TIERS, Tier, bucketStart } from '../../crdt/tiers.ts';
import { LATE_OBSERVATION_MS, TokenState } from '../../crdt/token-state.ts';

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const WINDOW = DEFAULT_RETENTION[Tier.second];

interface Seen extends Observation {
  readonly key: string;
  readonly token: string;
}

// Few keys, tokens and origins, times within minutes of each other: collisions and ties are the point.
const seenArb: fc.Arbitrary<Seen> = fc.record({
  key: fc.constantFrom('home', 'api', '__proto__'),
  token: fc.constantFrom('t1', 't2', 't3', 'a b', '~'),
  origin: fc.constantFrom('n1#a', 'n2#b', 'n3#c'),
  at: fc.integer({ min: 0, max: 180_000 }).map((ms) => T0 + ms),
  n: fc.integer({ min: 1, max: 5 }),
});

function stateOf(seen: readonly Seen[], windowMs = WINDOW): TokenState {
  const state = new TokenState(windowMs);
  for (const { key, token, ...o } of seen) state.join(key, token, o);
  return state;
}

/** Everything a count can see of a token state: its observations and its duplicates in every bucket they touch. */
function snapshot(state: TokenState): string[] {
  const out: string[] = [];
  for (const o of state.observations()) {
    out.push(JSON.stringify(['obs', o.key, o.token, o.origin, o.at, o.n]));
    for (const tier of ALL_TIERS) out.push(JSON.stringify(['dup', o.key, tier, bucketStart(tier, o.at), state.duplicatesIn(o.key, tier, bucketStart(tier, o.at))]));
  }
  return [...new Set(out)].sort();
}

function joined(...states: TokenState[]): TokenState {
  const out = new TokenState(states[0]?.windowMs ?? WINDOW);
  for (const s of states) out.merge(s);
  return out;
}

/** What a token map must say, worked out from scratch: per token, the earliest observation (per origin its earliest) counts, every other is a duplicate. */
function expectedDuplicates(seen: readonly Seen[], windowMs = WINDOW): Map<string, number> {
  const byToken = new Map<string, Map<string, Seen>>();
  for (const s of seen) {
    const id = `${s.key}\u0000${s.token}`;
    const origins = byToken.get(id) ?? new Map<string, Seen>();
    const mine = origins.get(s.origin);
    if (mine === undefined || compareObservations(s, mine) < 0) origins.set(s.origin, s);
    byToken.set(id, origins);
  }
  const duplicates = new Map<string, number>();
  for (const origins of byToken.values()) {
    const sorted = [...origins.values()].sort(compareObservations);
    const first = sorted[0] as Seen;
    for (const loser of sorted.slice(1).filter((o) => o.at - first.at < windowMs)) {
      for (const tier of ALL_TIERS) {
        const id = `${loser.key}|${tier}|${bucketStart(tier, loser.at)}`;
        duplicates.set(id, (duplicates.get(id) ?? 0) + loser.n);
      }
    }
  }
  return duplicates;
}

describe('token map (a CRDT of idempotency tokens)', () => {
  it('join is commutative, associative and idempotent, whatever order observations come in', () => {
    fc.assert(
      fc.property(fc.array(seenArb, { maxLength: 30 }), fc.array(seenArb, { maxLength: 30 }), fc.array(seenArb, { maxLength: 30 }), fc.constantFrom(WINDOW, 60_000, 1), (a, b, c, w) => {
        const [A, B, C] = [stateOf(a, w), stateOf(b, w), stateOf(c, w)];
        expect(snapshot(joined(A, B))).toEqual(snapshot(joined(B, A)));
        expect(snapshot(joined(joined(A, B), C))).toEqual(snapshot(joined(A, joined(B, C))));
        expect(snapshot(joined(A, A))).toEqual(snapshot(A));
        expect(snapshot(stateOf([...a].reverse(), w))).toEqual(snapshot(A));
      }),
      { numRuns: 300 },
    );
  });

  it('the earliest observation of a token counts (by time, then origin); every other is a duplicate in the buckets it fell in', () => {
    fc.assert(
      fc.property(fc.array(seenArb, { maxLength: 40 }), fc.constantFrom(WINDOW, 60_000, 1), (seen, w) => {
        const state = stateOf(seen, w);
        const expected = expectedDuplicates(seen, w);
        for (const s of seen) {
          for (const tier of ALL_TIERS) {
            const start = bucketStart(tier, s.at);
            expect(state.duplicatesIn(s.key, tier, start), `${s.key} ${tier} ${start}`).toBe(expected.get(`${s.key}|${tier}|${start}`) ?? 0);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a count is the G-Counter sum less the duplicates: each token counts its n once, in the bucket of its earliest observation', () => {
    fc.assert(
      fc.property(fc.array(seenArb, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), (seen, order) => {
        // Each origin counted every token it observed itself, once (its earliest, as a node does); the observations
        // then reach a replica in any order, slots and tokens apart.
        const own = new Map<string, Seen>();
        for (const s of seen) {
          const id = `${s.key}\u0000${s.token}\u0000${s.origin}`;
          const mine = own.get(id);
          if (mine === undefined || compareObservations(s, mine) < 0) own.set(id, s);
        }
        const observations = [...own.values()];
        const state = new ReplicaState();
        const counts = new Map<string, number>();
        for (const o of observations) {
          for (const tier of ALL_TIERS) {
            const id = `${o.origin}|${o.key}|${tier}|${bucketStart(tier, o.at)}`;
            counts.set(id, (counts.get(id) ?? 0) + o.n);
          }
        }
        for (const [id, count] of counts) {
          const [origin, key, tier, start] = id.split('|') as [string, string, string, string];
          state.join({ origin, key, tier: Number(tier) as Tier, start: Number(start), count });
        }
        const shuffled = observations.map((o, i) => ({ o, rank: order[i] ?? i })).sort((x, y) => x.rank - y.rank);
        for (const { o } of shuffled) state.observe(o.key, o.token, o);
        // Expected: per (key, token) the earliest observation's n, in its buckets.
        const firsts = new Map<string, Seen>();
        for (const o of observations) {
          const id = `${o.key}\u0000${o.token}`;
          const first = firsts.get(id);
          if (first === undefined || compareObservations(o, first) < 0) firsts.set(id, o);
        }
        for (const key of ['home', 'api', '__proto__']) {
          for (const tier of ALL_TIERS) {
            const starts = new Set(observations.filter((o) => o.key === key).map((o) => bucketStart(tier, o.at)));
            for (const start of starts) {
              let expected = 0;
              for (const f of firsts.values()) if (f.key === key && bucketStart(tier, f.at) === start) expected += f.n;
              expect(state.sum(key, { from: 0, to: 0, buckets: [{ tier, start }] }), `${key} tier ${tier} at ${start}`).toBe(expected);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('an earlier observation of the same origin replaces a later one (a rule-breaking peer cannot make a join order matter)', () => {
    const state = new TokenState(WINDOW);
    state.join('k', 't', { origin: 'b#1', at: T0 + 5_000, n: 1 });
    state.join('k', 't', { origin: 'a#1', at: T0 + 9_000, n: 1 });
    expect(state.duplicatesIn('k', Tier.second, T0 + 9_000)).toBe(1);
    expect(state.join('k', 't', { origin: 'a#1', at: T0 + 9_000, n: 1 })).toBe(0);
    expect(state.join('k', 't', { origin: 'a#1', at: T0 + 1_000, n: 1 })).toBe(3);
    expect(state.first('k', 't')).toEqual({ origin: 'a#1', at: T0 + 1_000, n: 1 });
    expect(state.duplicatesIn('k', Tier.second, T0 + 9_000)).toBe(0);
    expect(state.duplicatesIn('k', Tier.second, T0 + 5_000)).toBe(1);
    expect(state.duplicatesIn('k', Tier.minute, bucketStart(Tier.minute, T0))).toBe(1);
    expect(state.size).toBe(1);
  });

  it('forgets a token seen once a while (15 min) after the 1 s tier dropped its second, and one with duplicates never (they are taken off the lifetime total for good)', () => {
    const state = new ReplicaState(WINDOW);
    state.observe('k', 'once', { origin: 'a#1', at: T0, n: 1 });
    state.observe('k', 'twice', { origin: 'a#1', at: T0, n: 2 });
    state.observe('k', 'twice', { origin: 'b#1', at: T0 + 1_500, n: 2 });
    const dropped: string[] = [];
    const drop = (at: number): void => void state.dropExpired(at, DEFAULT_RETENTION, (key, token, list) => dropped.push(`${key}/${token}/${list.length}`));
    // Past the 1 s tier's retention, a late observation (a partition held it back) must still find the first on every node.
    drop(T0 + WINDOW + LATE_OBSERVATION_MS / 2);
    expect(dropped).toEqual([]);
    drop(T0 + WINDOW + LATE_OBSERVATION_MS + 2 * 60_000);
    expect(dropped).toEqual(['k/once/1']);
    expect(state.tokens.first('k', 'twice')?.origin).toBe('a#1');
    // The second bucket went with the 1 s tier; the hour and the lifetime still take the duplicate off.
    expect(state.tokens.duplicatesIn('k', Tier.second, bucketStart(Tier.second, T0 + 1_500))).toBe(0);
    expect(state.tokens.duplicatesIn('k', Tier.hour, bucketStart(Tier.hour, T0 + 1_500))).toBe(2);
    const muchLater = T0 + DEFAULT_RETENTION[Tier.day] + 2 * 86_400_000;
    for (const tier of TIMED_TIERS) expect(horizon(tier, muchLater, DEFAULT_RETENTION)).toBeGreaterThan(T0);
    drop(muchLater);
    expect(dropped).toEqual(['k/once/1']);
    expect(state.tokens.duplicatesIn('k', Tier.lifetime, 0)).toBe(2);
    expect(state.tokens.size).toBe(1);
  });

  it('an observation a window or more after the first is a new hit, not a duplicate, on every node whether or not it still holds the first', () => {
    const early = new TokenState(WINDOW);
    early.join('k', 't', { origin: 'a#1', at: T0, n: 1 });
    early.join('k', 't', { origin: 'b#1', at: T0 + WINDOW - 1, n: 1 });
    early.join('k', 't', { origin: 'c#1', at: T0 + WINDOW, n: 1 });
    expect(early.duplicatesIn('k', Tier.lifetime, 0)).toBe(1);
    expect(early.duplicatesIn('k', Tier.second, bucketStart(Tier.second, T0 + WINDOW))).toBe(0);
    // A node that never held a#1's observation: b is then the first, c is within its window.
    const late = new TokenState(WINDOW);
    late.join('k', 't', { origin: 'c#1', at: T0 + WINDOW, n: 1 });
    late.join('k', 't', { origin: 'b#1', at: T0 + WINDOW - 1, n: 1 });
    expect(late.duplicatesIn('k', Tier.lifetime, 0)).toBe(1);
    // And the earlier one arriving makes b the duplicate and frees c, as on the first node.
    late.join('k', 't', { origin: 'a#1', at: T0, n: 1 });
    expect(snapshot(late)).toEqual(snapshot(early));
    expect(early.repeatOf('k', 't', T0 + WINDOW - 1)?.origin).toBe('a#1');
    expect(early.repeatOf('k', 't', T0 + WINDOW)).toBeUndefined();
  });

  it('a duplicate is taken off its own origin\'s count only: a lying peer cannot lower anyone else\'s hits, and one known before its hits takes nothing', () => {
    const state = new ReplicaState();
    const second = bucketStart(Tier.second, T0);
    state.addHit('honest#1', 'home', T0, 5, 1);
    // Two "observations" of one token by peers that counted nothing of it.
    state.observe('home', 'lie', { origin: 'evil#1', at: T0, n: 1_000 });
    state.observe('home', 'lie', { origin: 'evil#2', at: T0 + 1, n: 1_000 });
    for (const tier of ALL_TIERS) expect(state.sum('home', { from: 0, to: 0, buckets: [{ tier, start: bucketStart(tier, T0) }] }), `tier ${tier}`).toBe(5);
    // Once the later origin's hits arrive, its duplicate takes them off: the token counts once.
    state.addHit('evil#2', 'home', T0 + 1, 1_000, 1);
    expect(state.sum('home', { from: 0, to: 0, buckets: [{ tier: Tier.second, start: second }] })).toBe(5);
    state.addHit('evil#1', 'home', T0, 1_000, 1);
    expect(state.sum('home', { from: 0, to: 0, buckets: [{ tier: Tier.second, start: second }] })).toBe(1_005);
  });

  it('names what is wrong with a bad token', () => {
    expect(tokenProblem('')).toMatch(/1-255/);
    expect(tokenProblem('x'.repeat(256))).toMatch(/1-255/);
    expect(tokenProblem('x'.repeat(255))).toBeUndefined();
    expect(tokenProblem(' ~!')).toBeUndefined();
    for (const bad of ['tab\there', 'nul\u0000', 'é', '\u007f', '🙂']) expect(tokenProblem(bad), JSON.stringify(bad)).toMatch(/printable ASCII/);
  });
});
