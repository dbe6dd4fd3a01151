/**
 * The node URLs a client fails over between, each with its breaker. Requests
 * start on successive nodes (round robin) and each retry moves on to the
 * next node whose breaker lets it through.
 */
import { CircuitBreaker, type BreakerOptions } from './breaker.ts';

export interface PoolNode {
  /** Base URL without a trailing slash. */
  readonly url: string;
  readonly breaker: CircuitBreaker;
}

export class NodePool {
  readonly nodes: readonly PoolNode[];
  private nextStart = 0;

  constructor(urls: readonly string[], breaker: BreakerOptions, now: () => number) {
    if (urls.length === 0) throw new RangeError('urls must name at least one node');
    this.nodes = urls.map((url) => ({ url: normalizeBaseUrl(url), breaker: new CircuitBreaker(breaker, now) }));
  }

  /** Where a new request begins: the next node in turn. */
  startIndex(): number {
    const start = this.nextStart;
    this.nextStart = (this.nextStart + 1) % this.nodes.length;
    return start;
  }

  /**
   * The node for the attempt after `previous` (the start index, for the first):
   * the first from there on whose breaker admits it. If every breaker is
   * open, the one that opened first is tried anyway rather than failing
   * without trying: it is the likeliest to have recovered.
   */
  pick(from: number): { node: PoolNode; index: number } {
    const count = this.nodes.length;
    for (let step = 0; step < count; step++) {
      const index = (from + step) % count;
      const node = this.nodes[index];
      if (node !== undefined && node.breaker.tryAcquire()) return { node, index };
    }
    let oldest = 0;
    for (const [index, node] of this.nodes.entries()) {
      const openedAt = node.breaker.openedAt ?? -Infinity;
      if (openedAt < (this.nodes[oldest]?.breaker.openedAt ?? -Infinity)) oldest = index;
    }
    const node = this.nodes[oldest];
    if (node === undefined) throw new Error('unreachable: an empty pool');
    node.breaker.forceAcquire();
    return { node, index: oldest };
  }
}

function normalizeBaseUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new RangeError(`a node URL must be http: or https:, got ${url}`);
  if (parsed.search !== '' || parsed.hash !== '') throw new RangeError(`a node URL must not carry a query or fragment, got ${url}`);
  return parsed.href.replace(/\/+$/, '');
}
