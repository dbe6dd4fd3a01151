import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../gossip/random.ts';
import { applyFault, FAULT_KINDS, FaultDeck, faultLabel, faultNodes, HOLD_MS, planFault, SKEW_MS, type FaultPlan, type FaultTarget, type SoakFaultKind } from '../../scripts/soak/faults.ts';

describe('FaultDeck', () => {
  it('deals every kind once per round, in an order the seed decides', () => {
    const deal = (seed: number, n: number): SoakFaultKind[] => {
      const deck = new FaultDeck(FAULT_KINDS, mulberry32(seed));
      return Array.from({ length: n }, () => deck.next());
    };
    const dealt = deal(1, FAULT_KINDS.length * 3);
    for (let round = 0; round < 3; round++) {
      expect([...dealt.slice(round * FAULT_KINDS.length, (round + 1) * FAULT_KINDS.length)].sort()).toEqual([...FAULT_KINDS].sort());
    }
    expect(deal(1, 12)).toEqual(deal(1, 12));
    expect(new Set([1, 2, 3, 4, 5].map((seed) => deal(seed, 6).join())).size).toBeGreaterThan(1);
    expect(() => new FaultDeck([], Math.random)).toThrow(/no fault kinds/);
  });
});

describe('planFault', () => {
  it('property: splits leave two non-empty sides covering every node; kill and wipe spare the steady node; clocks only run ahead', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), fc.integer(), fc.constantFrom(...FAULT_KINDS), (n, seed, kind) => {
        const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
        const steady = ids[Math.abs(seed) % n] ?? 'n1';
        const plan = planFault(kind, ids, steady, mulberry32(seed));
        expect(plan.kind).toBe(kind);
        expect(plan.holdMs).toBeGreaterThanOrEqual(HOLD_MS.min);
        expect(plan.holdMs).toBeLessThanOrEqual(HOLD_MS.max);
        if ('sides' in plan) {
          const [a, b] = plan.sides;
          expect(a.length).toBeGreaterThan(0);
          expect(b.length).toBeGreaterThan(0);
          expect([...a, ...b].sort()).toEqual([...ids].sort());
        } else {
          expect(ids).toContain(plan.victim);
          if (plan.kind === 'kill' || plan.kind === 'wipe') expect(plan.victim).not.toBe(steady);
          if (plan.kind === 'skew') {
            expect(plan.offsetMs).toBeGreaterThanOrEqual(SKEW_MS.min);
            expect(plan.offsetMs).toBeLessThanOrEqual(SKEW_MS.max);
          }
        }
        expect(faultNodes(plan).length).toBeGreaterThan(0);
      }),
    );
  });

  it('labels name what was done to whom', () => {
    expect(faultLabel({ kind: 'cut', sides: [['n2'], ['n3', 'n1']], holdMs: 2_000 })).toBe('cut {n2} | {n1,n3}');
    expect(faultLabel({ kind: 'blackhole', sides: [['n1'], ['n2']], holdMs: 2_000 })).toBe('black-holed {n1} | {n2}');
    expect(faultLabel({ kind: 'slow', sides: [['n1'], ['n2']], holdMs: 2_000 })).toMatch(/^slow \{n1\} \| \{n2\}: \+150 ms, 4096 B\/s$/);
    expect(faultLabel({ kind: 'kill', victim: 'n3', holdMs: 2_000 })).toBe('kill -9 n3, restart on its data');
    expect(faultLabel({ kind: 'wipe', victim: 'n3', holdMs: 2_000 })).toBe('n3 drained, wiped, restarted empty');
    expect(faultLabel({ kind: 'skew', victim: 'n2', holdMs: 2_000, offsetMs: 1_500 })).toBe('n2 clock +1500 ms');
  });
});

/** A FaultTarget that records every call in order and lets time pass instantly. */
function recorder(fail?: string): { target: FaultTarget; calls: string[] } {
  const calls: string[] = [];
  let t = 0;
  const step = (call: string): void => {
    calls.push(call);
    if (call === fail) throw new Error(`${call} failed`);
  };
  const target: FaultTarget = {
    cut: (a, b, mode) => step(`${mode} ${a.join()}|${b.join()}`),
    slow: (a, b) => step(`slow ${a.join()}|${b.join()}`),
    healAll: () => step('heal'),
    kill: async (id) => step(`kill ${id}`),
    wipe: async (id) => step(`wipe ${id}`),
    restart: async (id) => step(`restart ${id}`),
    setClockOffset: async (id, ms) => step(`clock ${id} ${ms}`),
    pauseLoad: async (id) => step(`pause ${id}`),
    resumeLoad: (id) => step(`resume ${id}`),
    waitReplicated: async (id) => step(`replicated ${id}`),
    now: () => t,
    until: async (ms) => {
      calls.push(`until ${ms}`);
      t = Math.max(t, ms);
    },
    span: (label) => {
      calls.push(`span ${label}`);
      return { end: () => calls.push('span end') };
    },
    event: () => undefined,
  };
  return { target, calls };
}

describe('applyFault', () => {
  const run = async (plan: FaultPlan, fail?: string): Promise<string[]> => {
    const { target, calls } = recorder(fail);
    await applyFault(plan, target).catch(() => calls.push('threw'));
    return calls;
  };

  it('holds each fault for its time and undoes it before resolving', async () => {
    expect(await run({ kind: 'cut', sides: [['n1'], ['n2', 'n3']], holdMs: 3_000 })).toEqual(['span cut {n1} | {n2,n3}', 'cut n1|n2,n3', 'until 3000', 'heal', 'span end']);
    expect(await run({ kind: 'blackhole', sides: [['n1'], ['n2']], holdMs: 2_000 })).toEqual(['span black-holed {n1} | {n2}', 'blackhole n1|n2', 'until 2000', 'heal', 'span end']);
    expect(await run({ kind: 'slow', sides: [['n1'], ['n2']], holdMs: 2_000 })).toEqual(expect.arrayContaining(['slow n1|n2', 'until 2000', 'heal', 'span end']));
    expect(await run({ kind: 'kill', victim: 'n2', holdMs: 2_500 })).toEqual(['span kill -9 n2, restart on its data', 'kill n2', 'until 2500', 'restart n2', 'span end']);
    expect(await run({ kind: 'skew', victim: 'n3', holdMs: 2_000, offsetMs: 1_200 })).toEqual(['span n3 clock +1200 ms', 'clock n3 1200', 'until 2000', 'clock n3 0', 'span end']);
  });

  it('wipes only after the node is out of the load and its hits are everywhere, and puts it back in the load', async () => {
    expect(await run({ kind: 'wipe', victim: 'n2', holdMs: 2_000 })).toEqual([
      'span n2 drained, wiped, restarted empty',
      'pause n2',
      'replicated n2',
      'wipe n2',
      'until 2000',
      'restart n2',
      'resume n2',
      'span end',
    ]);
  });

  it('a wipe whose node never drains does not wipe, and still resumes its load; the error reaches the caller', async () => {
    expect(await run({ kind: 'wipe', victim: 'n2', holdMs: 2_000 }, 'replicated n2')).toEqual(['span n2 drained, wiped, restarted empty', 'pause n2', 'replicated n2', 'resume n2', 'span end', 'threw']);
  });
});
