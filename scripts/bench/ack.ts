/**
 * What `?ack=` and `?read=` cost: a lone client's POST /hit and GET /count
 * latency on node 1 of 3 at level local (the baseline), majority and all,
 * the levels taking turns. An acknowledged hit waits for its push to reach
 * the peers and their `held` frame to come back; a fresh read for the
 * peers' answers to a `read` frame: a round trip either way.
 */
import http from 'node:http';
import { join } from 'node:path';
import { startCluster, stopCluster, waitForMesh } from './cluster.ts';

export interface AckLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly hits: number;
}

export type AckBench = Readonly<Record<'ack' | 'read', Readonly<Record<'local' | 'majority' | 'all', AckLatency>>>>;

const LEVELS = ['local', 'majority', 'all'] as const;

function request(agent: http.Agent, method: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
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
    const base = `http://127.0.0.1:${first.port}`;
    const kinds = {
      ack: (level: string, i: number) => request(agent, 'POST', `${base}/hit/ack-${i % 100}?ack=${level}`),
      read: (level: string, i: number) => request(agent, 'GET', `${base}/count/ack-${i % 100}?window=1h&read=${level}`),
    } as const;
    const result = {} as Record<'ack' | 'read', Record<(typeof LEVELS)[number], AckLatency>>;
    for (const [kind, send] of Object.entries(kinds) as [keyof typeof kinds, (level: string, i: number) => Promise<number>][]) {
      const samples: Record<(typeof LEVELS)[number], number[]> = { local: [], majority: [], all: [] };
      // One level a third of a second, turn by turn, so a drift of the VM's speed hits all three alike.
      for (let round = 0; round < options.rounds * options.durationS; round++) {
        for (const level of LEVELS) {
          const until = performance.now() + 1_000 / LEVELS.length;
          for (let i = 0; performance.now() < until; i++) {
            const t0 = performance.now();
            const status = await send(level, i);
            if (status !== 200) throw new Error(`${kind}=${level} answered ${status}`);
            samples[level].push(performance.now() - t0);
          }
        }
      }
      const summary = (xs: number[]): AckLatency => {
        const sorted = [...xs].sort((a, b) => a - b);
        return { p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), hits: sorted.length };
      };
      result[kind] = { local: summary(samples.local), majority: summary(samples.majority), all: summary(samples.all) };
      const f = (x: number): string => x.toFixed(2);
      options.say(`${kind === 'ack' ? 'POST /hit' : 'GET /count (1 h)'} latency on node 1 of 3 by ?${kind}= level, one client, levels taking turns each ${Math.round(1_000 / LEVELS.length)} ms`);
      for (const level of LEVELS) {
        const r = result[kind][level];
        options.say(`  ${level.padEnd(9)} p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms over ${r.hits} requests; p50 ${f(r.p50Ms / result[kind].local.p50Ms)}x of local`);
      }
    }
    return result;
  } finally {
    agent.destroy();
    await stopCluster(nodes);
  }
}
