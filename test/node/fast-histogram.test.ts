import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../node/fast-histogram.ts';

const BOUNDS = [0.0005, 0.001, 0.01, 0.1, 1];

/** Exposition lines as series → value, labels sorted: the two may order labels differently. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`unparsed line ${line}`);
    const labels = (match[2] ?? '').split(/,(?=[a-z_]+=)/).filter((l) => l !== '').sort().join(',');
    series.set(`${match[1]}{${labels}}`, Number(match[3]));
  }
  return series;
}

describe('FastHistogram', () => {
  it('exposes exactly what prom-client’s histogram exposes for the same observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('/hit/:key', '/count/:key'), fc.constantFrom('200', '400', '503'), fc.double({ min: 0, max: 3, noNaN: true })), { maxLength: 200 }),
        async (observations) => {
          const ours = new Registry();
          const theirs = new Registry();
          ours.setDefaultLabels({ node: 'n1' });
          theirs.setDefaultLabels({ node: 'n1' });
          const fast = new FastHistogram('x_seconds', 'help', ['route', 'status_code'], BOUNDS, ours);
          const reference = new Histogram({ name: 'x_seconds', help: 'help', labelNames: ['route', 'status_code'], buckets: BOUNDS, registers: [theirs] });
          for (const [route, status, value] of observations) {
            fast.child(route, status).observe(value);
            reference.labels(route, status).observe(value);
          }
          const [a, b] = [parse(await ours.metrics()), parse(await theirs.metrics())];
          expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
          for (const [name, value] of b) expect(a.get(name), name).toBeCloseTo(value, 9);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps one series per label values, however often a child is asked for', async () => {
    const registry = new Registry();
    const fast = new FastHistogram('y_seconds', 'help', ['route'], BOUNDS, registry);
    for (let i = 0; i < 5; i++) fast.child('/a').observe(0.002);
    fast.child('/b').observe(5);
    const lines = parse(await registry.metrics());
    expect(lines.get('y_seconds_count{route="/a"}')).toBe(5);
    expect(lines.get('y_seconds_bucket{le="0.01",route="/a"}')).toBe(5);
    expect(lines.get('y_seconds_bucket{le="1",route="/b"}')).toBe(0);
    expect(lines.get('y_seconds_bucket{le="+Inf",route="/b"}')).toBe(1);
    expect([...lines.keys()].filter((k) => k.startsWith('y_seconds_count'))).toHaveLength(2);
  });
});
