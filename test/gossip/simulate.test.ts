import { describe, expect, it } from 'vitest';
import { defaultMaxPeers, simulate, type SimulateOptions, type SimulateResult } from '../../scripts/simulate.ts';

function options(nodes: number, overrides: Partial<SimulateOptions> = {}): SimulateOptions {
  return {
    nodes,
    seed: 7,
    faults: { latencyMs: 1, jitterMs: 2, dropRate: 0, duplicateRate: 0 },
    hits: 300,
    keys: 20,
    hot: 0,
    loadMs: 500,
    partitionMs: 2_000,
    maxPeers: defaultMaxPeers(nodes),
    limitMs: 20_000,
    ...overrides,
  };
}

/** Everything but the wall time, which is the one figure that is not deterministic. */
function figures(result: SimulateResult): SimulateResult {
  return { ...result, wallMs: 0 };
}

describe('scripts/simulate.ts', () => {
  for (const nodes of [3, 10]) {
    it(`converges with exact counts on ${nodes} nodes, after the load and after a partition heals`, () => {
      const result = simulate(options(nodes));
      expect(result.problems).toEqual([]);
      expect(result.mesh).toBe('full');
      expect(result.peers.min).toBe(nodes - 1);
      expect(result.load.convergeMs).toBeGreaterThan(0);
      expect(result.load.convergeMs).toBeLessThan(2_000);
      expect(result.load.rounds).toBe((result.load.convergeMs ?? NaN) / 1_000);
      expect(result.load.deltaBytes).toBeGreaterThan(0);
      expect(result.load.bytes).toBeGreaterThanOrEqual(result.load.deltaBytes);
      expect(result.load.bytesPerHit).toBe(result.load.bytes / 300);
      expect(result.partition?.convergeMs).toBeGreaterThan(0);
      expect(result.partition?.convergeMs).toBeLessThan(5_000);
    });
  }

  it('gives the same figures for the same seed, and others for another seed', () => {
    const first = simulate(options(10));
    const second = simulate(options(10));
    expect(figures(second)).toEqual(figures(first));
    const other = simulate(options(10, { seed: 8 }));
    expect(other.problems).toEqual([]);
    expect(other.load.bytes).not.toBe(first.load.bytes);
  });

  it('converges under loss and duplication, through anti-entropy', () => {
    const result = simulate(options(10, { faults: { latencyMs: 2, jitterMs: 5, dropRate: 0.1, duplicateRate: 0.05 }, partitionMs: 0 }));
    expect(result.problems).toEqual([]);
    expect(result.load.convergeMs).toBeDefined();
    expect(result.partition).toBeUndefined();
  });
});
