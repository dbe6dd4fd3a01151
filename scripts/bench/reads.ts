/**
 * What heavy reads cost the hit path: a lone client's POST /hit latency on a
 * node alone (the baseline) and while 8 clients keep asking GET /counts for
 * 1,000 keys over the longest window (5 years: ~1,900 buckets a key, the
 * budget's worst case), in alternating rounds. Each /counts answer is
 * computed in slices between which hits are served, so the hit latency should
 * grow by a few slices, not by whole answers.
 */
import http from 'node:http';
import { freePort, startPinned, type Server } from './processes.ts';

export interface ReadsBenchOptions {
  readonly dataDir: string;
  readonly serverCpu: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly say: (line: string) => void;
}

export interface ReadsSide {
  readonly hitP50Ms: number;
  readonly hitP99Ms: number;
  readonly hits: number;
  readonly readsPerS: number;
}

export interface ReadsBench {
  readonly alone: ReadsSide;
  readonly withReaders: ReadsSide;
  readonly perRound: readonly { readonly alone: ReadsSide; readonly withReaders: ReadsSide }[];
}

const KEYS = Array.from({ length: 1_000 }, (_, i) => `read-key-${i}`);
const READERS = 8;

function request(agent: http.Agent, url: string, method: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

async function side(server: Server, durationS: number, readers: number): Promise<ReadsSide> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: readers + 1 });
  const until = performance.now() + durationS * 1000;
  const latencies: number[] = [];
  let reads = 0;
  const countsUrl = `${server.url}/counts?window=1825d&keys=${KEYS.join(',')}`;
  const reader = async (): Promise<void> => {
    while (performance.now() < until) {
      const status = await request(agent, countsUrl, 'GET');
      if (status !== 200) throw new Error(`/counts answered ${status}`);
      reads++;
    }
  };
  const hitter = async (): Promise<void> => {
    for (let i = 0; performance.now() < until; i++) {
      const t0 = performance.now();
      const status = await request(agent, `${server.url}/hit/${KEYS[i % KEYS.length] ?? 'k'}`, 'POST');
      if (status !== 200) throw new Error(`/hit answered ${status}`);
      latencies.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 5)); // a steady trickle, not a flood
    }
  };
  await Promise.all([hitter(), ...Array.from({ length: readers }, () => reader())]);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { hitP50Ms: quantile(latencies, 0.5), hitP99Ms: quantile(latencies, 0.99), hits: latencies.length, readsPerS: reads / durationS };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function benchReads(options: ReadsBenchOptions): Promise<ReadsBench> {
  const port = await freePort();
  const server = await startPinned(options.serverCpu, 'node/main.ts', ['--id', 'reads', '--port', String(port), '--data', options.dataDir, '--log-level', 'warn'], port);
  try {
    const seed = new http.Agent({ keepAlive: true });
    await request(seed, `${server.url}/hits`, 'POST', JSON.stringify(KEYS.map((key) => ({ key, n: 3 }))));
    seed.destroy();
    await side(server, 1, READERS); // warm-up
    const perRound: { alone: ReadsSide; withReaders: ReadsSide }[] = [];
    for (let round = 0; round < options.rounds; round++) {
      perRound.push({ alone: await side(server, options.durationS, 0), withReaders: await side(server, options.durationS, READERS) });
    }
    const summarize = (pick: (r: { alone: ReadsSide; withReaders: ReadsSide }) => ReadsSide): ReadsSide => ({
      hitP50Ms: median(perRound.map((r) => pick(r).hitP50Ms)),
      hitP99Ms: median(perRound.map((r) => pick(r).hitP99Ms)),
      hits: median(perRound.map((r) => pick(r).hits)),
      readsPerS: median(perRound.map((r) => pick(r).readsPerS)),
    });
    const result = { alone: summarize((r) => r.alone), withReaders: summarize((r) => r.withReaders), perRound };
    const f = (x: number): string => x.toFixed(2);
    const range = (xs: number[]): string => `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;
    options.say(`POST /hit latency of a lone client, alone and while ${READERS} clients read 1,000 keys over 5 years (~1,900 buckets a key) with GET /counts (median of ${options.rounds} alternating rounds)`);
    options.say(`  alone          p50 ${f(result.alone.hitP50Ms)} ms (${range(perRound.map((r) => r.alone.hitP50Ms))}), p99 ${f(result.alone.hitP99Ms)} ms`);
    options.say(`  with readers   p50 ${f(result.withReaders.hitP50Ms)} ms (${range(perRound.map((r) => r.withReaders.hitP50Ms))}), p99 ${f(result.withReaders.hitP99Ms)} ms; ${f(result.withReaders.readsPerS)} reads/s (${f(result.withReaders.readsPerS * 1_000 * 1_900 / 1e6)} M bucket reads/s)`);
    options.say(`  ratio p50 ${f(result.withReaders.hitP50Ms / result.alone.hitP50Ms)}x, p99 ${f(result.withReaders.hitP99Ms / result.alone.hitP99Ms)}x`);
    return result;
  } finally {
    await server.stop();
  }
}
