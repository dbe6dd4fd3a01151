import type { Registry } from 'prom-client';

/** One labelled series: a count per bucket (not cumulative), the sum and the count. */
interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's registry serializes a metric from (its `get()`). */
interface MetricSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: { readonly labels: Record<string, string | number>; readonly value: number; readonly metricName: string }[];
}

/**
 * A Prometheus histogram for the request path. prom-client's validates and
 * hashes the labels on every observation (about 2.5 µs, a tenth of a count
 * answer); here a series is looked up once and then observed with a bucket
 * search and three additions. It registers on a prom-client registry and is
 * exposed in the same text format. The number of series is bounded by the
 * caller's label values (routes × methods × status codes).
 */
export class FastHistogram {
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    // The registry keeps anything with a name and a get(); the cast names that contract.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of these label values (in labelNames order), made on first use. */
  child(...values: string[]): { observe(value: number): void } {
    const id = values.join('\u0000');
    let series = this.series.get(id);
    if (series === undefined) {
      const labels = Object.fromEntries(this.labelNames.map((label, i) => [label, values[i] ?? '']));
      series = { labels, buckets: new Float64Array(this.upperBounds.length), sum: 0, count: 0 };
      this.series.set(id, series);
    }
    const target = series;
    const bounds = this.upperBounds;
    return {
      observe(value: number): void {
        // A latency is finite; one NaN would make the sum NaN for good (prom-client throws instead).
        if (!Number.isFinite(value)) return;
        target.sum += value;
        target.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= (bounds[i] as number)) {
            (target.buckets[i] as number)++;
            return;
          }
        }
      },
    };
  }

  get(): MetricSnapshot {
    const values: MetricSnapshot['values'] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      let cumulative = 0;
      for (const [i, le] of this.upperBounds.entries()) {
        cumulative += series.buckets[i] as number;
        values.push({ labels: { ...series.labels, le }, value: cumulative, metricName: bucketName });
      }
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: bucketName });
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  /** Zero every series in place: children handed out before stay live (the registry's resetMetrics). */
  reset(): void {
    for (const series of this.series.values()) {
      series.buckets.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
