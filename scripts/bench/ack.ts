/**
 * What `?ack=` costs: a lone client's POST /hit latency on node 1 of 3 with
 * ack=local (the baseline), ack=majority and ack=all, in alternating rounds.
 * An acknowledged hit waits for its push (every --push-interval, 20 ms) to
 * reach the peers and their `held` frame to come back: about half a push
 * interval plus a round trip, not a sync interval.
 */
import http from 'node:http';
import { join } from 'node:path';
import { startCluster, stopCluster, waitForMesh } from './cluster.ts';

export interface AckLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly hits: number;
}

export type AckBench = Readonly<Record<'local' | 'majority' | 'all', AckLatency>>;

const LEVELS = ['local', 'majority', 'all'] as const;

function post(agent: http.Agent, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

export async function benchAck(options: { work: string; cpuOf: (i: number) => number; rounds: number; durationS: number; say: (line: string) => void }): Promise<AckBench> {
  const nodes = await startCluster(3, join(options.work, 'ack'), options.cpuOf, (i, ports) => (i === 0 ? [] : [`127.0.0.1:${ports[0]}`]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitForMesh(nodes, 2);
    const first = nodes[0];
    if (first === undefined) throw new Error('no node');
    const samples: Record<(typeof LEVELS)[number], number[]> = { local: [], majority: [], all: [] };
    // One level a second, turn by turn, so a drift of the VM's speed hits all three alike.
    for (let round = 0; round < options.rounds * options.durationS; round++) {
      for (const level of LEVELS) {
        const until = performance.now() + 1_000 / LEVELS.length;
        for (let i = 0; performance.now() < until; i++) {
          const t0 = performance.now();
          const status = await post(agent, `http://127.0.0.1:${first.port}/hit/ack-${i % 100}?ack=${level}`);
          if (status !== 200) throw new Error(`ack=${level} answered ${status}`);
          samples[level].push(performance.now() - t0);
        }
      }
    }
    const summary = (xs: number[]): AckLatency => {
      const sorted = [...xs].sort((a, b) => a - b);
      return { p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), hits: sorted.length };
    };
    const result: AckBench = { local: summary(samples.local), majority: summary(samples.majority), all: summary(samples.all) };
    const f = (x: number): string => x.toFixed(2);
    options.say(`POST /hit latency on node 1 of 3 by ?ack= level, one client, levels taking turns each ${Math.round(1_000 / LEVELS.length)} ms`);
    for (const level of LEVELS) {
      const r = result[level];
      options.say(`  ${level.padEnd(9)} p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms over ${r.hits} hits; p50 ${f(r.p50Ms / result.local.p50Ms)}x of local`);
    }
    return result;
  } finally {
    agent.destroy();
    await stopCluster(nodes);
  }
}
