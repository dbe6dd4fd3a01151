import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCounts, type NodeCounts } from '../../scripts/partition/count-check.ts';
import { halves } from '../../scripts/partition/experiments.ts';
import { HitLedger } from '../../scripts/partition/hit-ledger.ts';
import { parsePartitionArgs, UsageError, USAGE } from '../../scripts/partition/options.ts';

const RANGE = { fromMs: 10_000, toMs: 20_000 };

function ledgerOf(hits: readonly { node: string; key: string; sentAt: number; outcome: 'acked' | 'failed' | 'unknown'; at?: number }[]): HitLedger {
  const ledger = new HitLedger(['a', 'b']);
  for (const h of hits) {
    ledger.record(h.node, h.key, h.sentAt, h.outcome === 'acked' ? { kind: 'acked', at: h.at ?? h.sentAt } : { kind: h.outcome });
  }
  return ledger;
}

const answers = (a: NodeCounts, b: NodeCounts): Map<string, NodeCounts> =>
  new Map([
    ['a', a],
    ['b', b],
  ]);

describe('HitLedger', () => {
  it('tallies outcomes per node and in total', () => {
    const ledger = ledgerOf([
      { node: 'a', key: 'k', sentAt: 1, outcome: 'acked' },
      { node: 'a', key: 'k', sentAt: 2, outcome: 'unknown' },
      { node: 'b', key: 'k', sentAt: 3, outcome: 'failed' },
      { node: 'b', key: 'j', sentAt: 4, outcome: 'acked' },
    ]);
    expect(ledger.tally('a')).toEqual({ acked: 1, failed: 0, unknown: 1 });
    expect(ledger.tally('b')).toEqual({ acked: 1, failed: 1, unknown: 0 });
    expect(ledger.totals()).toEqual({ sent: 4, acked: 2, failed: 1, unknown: 1 });
    expect(() => ledger.record('c', 'k', 5, { kind: 'failed' })).toThrow(/unknown node/);
  });

  it('bounds a window by where acked hits were stamped, and by when unknown ones were sent', () => {
    const ledger = ledgerOf([
      { node: 'a', key: 'k', sentAt: 9_000, outcome: 'acked', at: 9_999 }, // stamped before the window
      { node: 'a', key: 'k', sentAt: 9_990, outcome: 'acked', at: 10_000 }, // first ms of it
      { node: 'b', key: 'k', sentAt: 19_000, outcome: 'acked', at: 19_999 }, // last ms of it
      { node: 'b', key: 'k', sentAt: 19_990, outcome: 'acked', at: 20_000 }, // just after
      { node: 'a', key: 'k', sentAt: 5_000, outcome: 'unknown' }, // sent before: could have been stamped inside
      { node: 'b', key: 'k', sentAt: 20_000, outcome: 'unknown' }, // sent at the end: cannot be inside
      { node: 'b', key: 'k', sentAt: 12_000, outcome: 'failed' },
    ]);
    expect(ledger.bounds('k', RANGE)).toEqual({ acked: 2, unknown: 1 });
    expect(ledger.bounds('k')).toEqual({ acked: 4, unknown: 2 });
    expect(ledger.bounds('never')).toEqual({ acked: 0, unknown: 0 });
  });
});

describe('checkCounts', () => {
  const ledger = ledgerOf([
    { node: 'a', key: 'k', sentAt: 15_000, outcome: 'acked' },
    { node: 'b', key: 'k', sentAt: 15_000, outcome: 'acked' },
    { node: 'b', key: 'k', sentAt: 15_000, outcome: 'unknown' },
  ]);
  const check = (all: [number | undefined, number | undefined], window: [number, number] = [2, 2]) =>
    checkCounts(ledger, {
      keys: ['k'],
      all: answers(all[0] === undefined ? undefined : new Map([['k', all[0]]]), all[1] === undefined ? undefined : new Map([['k', all[1]]])),
      window: answers(new Map([['k', window[0]]]), new Map([['k', window[1]]])),
      range: RANGE,
    });

  it('accepts any count from acked to acked + unknown', () => {
    expect(check([2, 3])).toEqual({ total: 4, violations: [] });
  });

  it('names a lost hit, a double count and a node that did not answer', () => {
    expect(check([1, 2]).violations).toEqual([{ kind: 'lost', node: 'a', key: 'k', window: 'all', count: 1, acked: 2, unknown: 1 }]);
    expect(check([4, 2]).violations).toEqual([{ kind: 'double-counted', node: 'a', key: 'k', window: 'all', count: 4, acked: 2, unknown: 1 }]);
    expect(check([2, undefined]).violations).toEqual([{ kind: 'no-answer', node: 'b', key: 'k', window: 'all', count: null, acked: 2, unknown: 1 }]);
    expect(check([2, 2], [2, 1]).violations).toEqual([{ kind: 'lost', node: 'b', key: 'k', window: 'window', count: 1, acked: 2, unknown: 1 }]);
  });

  it('a key missing from a node\'s answer is reported, not taken as 0', () => {
    const result = checkCounts(ledger, { keys: ['k'], all: answers(new Map(), new Map([['k', 2]])), window: new Map(), range: RANGE });
    expect(result.violations.map((v) => v.kind)).toEqual(['no-answer']);
  });

  it('property: a node holding every acked hit and any share of the unknown ones passes; one fewer or one more than allowed fails', () => {
    const hit = fc.record({
      node: fc.constantFrom('a', 'b'),
      key: fc.constantFrom('x', 'y'),
      sentAt: fc.integer({ min: 0, max: 30_000 }),
      outcome: fc.constantFrom('acked' as const, 'failed' as const, 'unknown' as const),
      delay: fc.integer({ min: 0, max: 500 }),
    });
    fc.assert(
      fc.property(fc.array(hit, { maxLength: 60 }), fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }), (hits, applied) => {
        const ledger = ledgerOf(hits.map((h) => ({ ...h, at: h.sentAt + h.delay })));
        // What an exact node would count: every acked hit, and the unknown ones that happened to land.
        const truth = (range?: { fromMs: number; toMs: number }): Map<string, number> => {
          const counts = new Map<string, number>([
            ['x', 0],
            ['y', 0],
          ]);
          hits.forEach((h, i) => {
            const at = h.sentAt + h.delay;
            const inRange = range === undefined || (at >= range.fromMs && at < range.toMs);
            if (inRange && (h.outcome === 'acked' || (h.outcome === 'unknown' && applied[i] === true))) counts.set(h.key, (counts.get(h.key) ?? 0) + 1);
          });
          return counts;
        };
        const exact = checkCounts(ledger, { keys: ['x', 'y'], all: answers(truth(), truth()), window: answers(truth(RANGE), truth(RANGE)), range: RANGE });
        expect(exact.violations).toEqual([]);
        for (const key of ['x', 'y']) {
          const { acked, unknown } = ledger.bounds(key);
          const off = (count: number): Map<string, number> => new Map([...truth()].map(([k, c]) => [k, k === key ? count : c]));
          const tooMany = checkCounts(ledger, { keys: ['x', 'y'], all: answers(off(acked + unknown + 1), truth()), window: new Map(), range: RANGE });
          expect(tooMany.violations.map((v) => v.kind)).toEqual(['double-counted']);
          if (acked > 0) {
            const tooFew = checkCounts(ledger, { keys: ['x', 'y'], all: answers(truth(), off(acked - 1)), window: new Map(), range: RANGE });
            expect(tooFew.violations.map((v) => v.kind)).toEqual(['lost']);
          }
        }
      }),
    );
  });
});

describe('partition flags', () => {
  it('defaults, and `all` runs every experiment', () => {
    const options = parsePartitionArgs(['split']);
    if (options === 'help') throw new Error('expected options');
    expect(options.experiments.map((e) => e.name)).toEqual(['split']);
    expect(options.settings).toEqual({ nodes: 3, durationS: 10, rate: 200, keys: 20, seed: 1, cutMode: 'cut', convergeLimitS: 30, continuous: false });
    expect(options.out).toBe('reports');
    const all = parsePartitionArgs(['all', '--nodes', '5', '--mode', 'blackhole']);
    if (all === 'help') throw new Error('expected options');
    expect(all.experiments.map((e) => e.name)).toEqual(['split', 'isolate', 'bridge', 'flap', 'slow', 'fresh', 'retry', 'crash', 'wipe', 'chaos']);
    expect(all.settings.cutMode).toBe('blackhole');
    expect(parsePartitionArgs(['--help'])).toBe('help');
  });

  it('--continuous keeps the load going through the heal, for any experiment, and is off by default', () => {
    for (const name of ['split', 'crash', 'all']) {
      const options = parsePartitionArgs([name, '--continuous']);
      if (options === 'help') throw new Error('expected options');
      expect(options.settings.continuous).toBe(true);
    }
    const plain = parsePartitionArgs(['split', '--duration', '4']);
    if (plain === 'help') throw new Error('expected options');
    expect(plain.settings.continuous).toBe(false);
    expect(USAGE).toMatch(/--continuous\s+keep the load going through the heal/);
    expect(() => parsePartitionArgs(['split', '--continuous=yes'])).toThrow(UsageError);
  });

  it.each([
    [[], /name an experiment/],
    [['split', 'crash'], /one experiment at a time/],
    [['nope'], /unknown experiment "nope"/],
    [['split', '--nodes', '1'], /--nodes must be a number from 2 to 15/],
    [['split', '--nodes', '2.5'], /--nodes must be a whole number/],
    [['split', '--rate', 'fast'], /--rate must be a number/],
    [['split', '--duration', ''], /--duration must be a number/],
    [['split', '--mode', 'melt'], /--mode must be cut or blackhole/],
    [['bridge', '--nodes', '2'], /bridge needs at least 3 nodes/],
    [['split', '--colour'], /Unknown option/],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parsePartitionArgs(argv)).toThrow(UsageError);
    expect(() => parsePartitionArgs(argv)).toThrow(message);
  });
});

describe('split sides', () => {
  it.each([2, 3, 4, 5, 6, 15])('%i nodes: two non-empty sides, the first a majority, every node on one side', (n) => {
    const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    const [major, minor] = halves(ids);
    expect(minor.length).toBeGreaterThan(0);
    expect(major.length).toBeGreaterThanOrEqual(minor.length);
    if (n > 2) expect(major.length).toBeGreaterThan(n / 2);
    expect([...major, ...minor]).toEqual(ids);
  });
});
