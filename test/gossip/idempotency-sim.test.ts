import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareObservations, type Observation } from '../../crdt/key-tokens.ts';
import { ALL_TIERS, bucketStart } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { DEFAULT_GOSSIP } from '../../gossip/config.ts';
import { SimNetwork, fingerprint, type SimFaults } from '../../gossip/sim-network.ts';

/**
 * Idempotency over the simulated network: clients retry the same token on
 * any node, during partitions, under loss, duplication and reordering. Once
 * the network heals, every node counts each token once, in the buckets of its
 * earliest observation (by time, then origin), and all agree.
 */

type MutableFaults = { -readonly [K in keyof SimFaults]: SimFaults[K] };

/** A logical hit: its key and n never change between retries. */
const TOKENS = Array.from({ length: 12 }, (_, i) => ({ token: `req-${i}`, key: ['home', 'api', 'ключ'][i % 3] as string, n: 1 + (i % 4) }));

type Step =
  | { readonly kind: 'send'; readonly token: number; readonly node: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'partition'; readonly groups: readonly number[] }
  | { readonly kind: 'heal' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), token: fc.nat({ max: TOKENS.length - 1 }), node: fc.nat({ max: 4 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 1_500 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('partition' as const), groups: fc.array(fc.nat({ max: 2 }), { minLength: 5, maxLength: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
);

const scenarioArb = fc.record({
  n: fc.integer({ min: 2, max: 5 }),
  seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
  faults: fc.record({
    latencyMs: fc.integer({ min: 0, max: 20 }),
    jitterMs: fc.integer({ min: 0, max: 50 }),
    dropRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
    duplicateRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
  }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 60, size: 'max' }),
});

describe('idempotency tokens over the simulated network', () => {
  it('every token counts once, in the earliest bucket, on every node, however often and wherever it was retried', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const faults: MutableFaults = { ...s.faults };
        const net = new SimNetwork(s.n, faults, DEFAULT_GOSSIP, s.seed);
        // Per token, every observation a node made (it counted the hit there).
        const counted = new Map<number, Observation[]>();
        for (const step of s.steps) {
          if (step.kind === 'send') {
            const { token, key, n } = TOKENS[step.token] as (typeof TOKENS)[number];
            const node = net.node(step.node % s.n);
            if (net.hitOnce(node.index, key, token, n)) counted.set(step.token, [...(counted.get(step.token) ?? []), { origin: node.origin, at: net.now, n }]);
          } else if (step.kind === 'advance') net.run(step.ms);
          else if (step.kind === 'partition') net.partition((i) => step.groups[i] ?? 0);
          else net.heal();
        }
        net.heal();
        faults.dropRate = 0;
        faults.duplicateRate = 0;
        expect(net.runUntilConverged(60_000), 'converged once the faults stopped').not.toBeUndefined();
        const reference = fingerprint(net.node(0).state);
        // Expected: each token's n once, in the buckets of its earliest observation.
        const expected = new Map<string, number>();
        const lifetime = new Map<string, number>();
        for (const [index, observations] of counted) {
          const { key, n } = TOKENS[index] as (typeof TOKENS)[number];
          const first = [...observations].sort(compareObservations)[0] as Observation;
          lifetime.set(key, (lifetime.get(key) ?? 0) + n);
          for (const tier of ALL_TIERS) {
            const id = `${key}|${tier}|${bucketStart(tier, first.at)}`;
            expected.set(id, (expected.get(id) ?? 0) + n);
          }
        }
        for (const node of net.nodes) {
          expect(fingerprint(node.state), `state of ${node.id}`).toBe(reference);
          for (const { key } of TOKENS) expect(node.state.sum(key, LIFETIME_PLAN), `lifetime of ${key} on ${node.id}`).toBe(lifetime.get(key) ?? 0);
          // Every bucket any observation fell in, earliest or not.
          for (const [index, observations] of counted) {
            const { key } = TOKENS[index] as (typeof TOKENS)[number];
            for (const o of observations) {
              for (const tier of ALL_TIERS) {
                const start = bucketStart(tier, o.at);
                const count = node.state.sum(key, { from: start, to: start, buckets: [{ tier, start }] });
                expect(count, `${key} tier ${tier} at ${start} on ${node.id}`).toBe(expected.get(`${key}|${tier}|${start}`) ?? 0);
              }
            }
          }
        }
        // Once converged, every node knows every token: a retry anywhere is a repeat.
        for (const index of counted.keys()) {
          const { key, token, n } = TOKENS[index] as (typeof TOKENS)[number];
          for (const node of net.nodes) expect(net.hitOnce(node.index, key, token, n), `${token} again on ${node.id}`).toBe(false);
        }
      }),
      { numRuns: 250 },
    );
  });

  it('a token taken on both sides of a partition counts once after the heal, in the earlier side\'s bucket', () => {
    const net = new SimNetwork(3, { latencyMs: 2, jitterMs: 0, dropRate: 0, duplicateRate: 0 }, DEFAULT_GOSSIP, 1);
    expect(net.runUntilConverged(10_000)).not.toBeUndefined();
    net.partition((i) => (i === 0 ? 0 : 1));
    net.run(3_000);
    expect(net.hitOnce(0, 'k', 'retry-me', 3)).toBe(true);
    const first = net.now;
    net.run(2_500);
    expect(net.hitOnce(2, 'k', 'retry-me', 3)).toBe(true);
    net.run(500);
    // Across the cut the other side knows it already.
    expect(net.hitOnce(1, 'k', 'retry-me', 3)).toBe(false);
    expect(net.node(1).state.sum('k', LIFETIME_PLAN)).toBe(3);
    net.heal();
    expect(net.runUntilConverged(20_000)).not.toBeUndefined();
    for (const node of net.nodes) {
      expect(node.state.sum('k', LIFETIME_PLAN), node.id).toBe(3);
      const second = bucketStart(0, first);
      expect(node.state.sum('k', { from: second, to: second, buckets: [{ tier: 0, start: second }] })).toBe(3);
      expect(node.state.tokens.first('k', 'retry-me')?.origin).toBe(net.node(0).origin);
    }
  });
});
