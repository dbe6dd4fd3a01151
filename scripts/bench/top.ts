/**
 * GET /top on 100,000 keys hit over the last day with a Zipf (s = 1)
 * distribution, written into the data directory as the node would have
 * (bench/seed.ts), while a steady 1,000 hits/s of the same distribution keep
 * flowing: /top?window=60s|1h|24h&k=10 requests/s and latency with the index
 * and without it (--no-top-index: a scan of every key); POST /hit requests/s
 * with and without the index, in alternating rounds; RSS of each.
 */
import { cpSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { mulberry32 } from '../../gossip/random.ts';
import { runLoad, type LoadResult } from './load.ts';
import { cpuSeconds, freePort, rssMb, startPinned, type RowOptions, type Server } from './processes.ts';
import { seedHistory } from './seed.ts';

export type TopBenchOptions = RowOptions;

const KEYS = 100_000;
const TOP_HITS = 200_000; // the hottest key's hits in the day; the k-th has 1/k of it (about 2.4 M hits in all)
const WINDOWS = ['60s', '1h', '24h'] as const;
const STEADY_HITS_PER_S = 1_000;
/** A few clients, not a flood: the figure to read is one core's rate and a request's own latency. */
const TOP_CONNECTIONS = 4;

type Side = 'index' | 'scan';

interface TopRuns {
  readonly rps: number[];
  readonly p50: number[];
  readonly p99: number[];
  readonly cpuMsPerRequest: number[];
  failed: number;
}

const noRuns = (): TopRuns => ({ rps: [], p50: [], p99: [], cpuMsPerRequest: [], failed: 0 });

/** Zipf over KEYS: key r (from 0) with probability ∝ 1/(r+1), by inverting the cumulative sums. */
function zipfPicker(seed: number): () => number {
  const cumulative = new Float64Array(KEYS);
  let sum = 0;
  for (let r = 0; r < KEYS; r++) cumulative[r] = sum += 1 / (r + 1);
  const random = mulberry32(seed);
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = KEYS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Hits at a steady rate on both nodes until stopped (batches of 50, 20 a second): the index must keep up meanwhile. */
function steadyHits(servers: readonly Server[]): () => Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const pick = zipfPicker(3);
  const perTick = STEADY_HITS_PER_S / 20;
  const timer = setInterval(() => {
    for (const server of servers) {
      const body = JSON.stringify(Array.from({ length: perTick }, () => ({ key: `k${pick()}` })));
      const req = http.request(`${server.url}/hits`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => res.resume());
      req.on('error', () => undefined);
      req.end(body);
    }
  }, 50);
  return async () => {
    clearInterval(timer);
    await new Promise((resolve) => setTimeout(resolve, 100));
    agent.destroy();
  };
}

/** Until the node spends less than 20% of a core (its own steady hits cost less) over 200 ms, at most 20 s. */
async function idle(server: Server): Promise<void> {
  const until = Date.now() + 20_000;
  let last = cpuSeconds(server.child.pid ?? 0);
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = cpuSeconds(server.child.pid ?? 0);
    if (now - last < 0.2 * 0.2) return;
    last = now;
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f = (x: number, digits = 1): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const range = (xs: readonly number[], digits = 1): string => `${f(Math.min(...xs), digits)}-${f(Math.max(...xs), digits)}`;

export async function benchTop(options: TopBenchOptions): Promise<Record<string, unknown>> {
  const { work, serverCpu, loadCpu, durationS, rounds, say } = options;
  const seeded = join(work, 'top-index');
  const now = Date.now();
  const { slots, hits } = await seedHistory(seeded, 'top', { keys: KEYS, hitsPerKey: (k) => Math.max(1, Math.round(TOP_HITS / (k + 1))), spanMs: 86_400_000, now, seed: 5, secondsWithinMs: 2 * 3_600_000 });
  cpSync(seeded, join(work, 'top-scan'), { recursive: true });
  const start = async (side: Side): Promise<Server> => {
    const port = await freePort();
    const flags = side === 'scan' ? ['--no-top-index'] : [];
    return startPinned(serverCpu, 'node/main.ts', ['--id', 'top', '--port', String(port), '--data', join(work, `top-${side}`), '--log-level', 'warn', ...flags], port);
  };
  const servers: Record<Side, Server> = { index: await start('index'), scan: await start('scan') };
  // Start-up work (expiring the seeded seconds past retention, compactions) settles first.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const rss: Record<Side, number> = { index: rssMb(servers.index.child.pid ?? 0), scan: rssMb(servers.scan.child.pid ?? 0) };
  say(`GET /top on ${f(KEYS, 0)} keys, Zipf over the last day (${f(hits, 0)} hits, ${f(slots, 0)} slots), ${f(STEADY_HITS_PER_S, 0)} hits/s flowing into each node meanwhile; ${TOP_CONNECTIONS} connections, median of ${rounds} alternating rounds`);
  const stopHits = steadyHits([servers.index, servers.scan]);
  const top: Record<string, Record<Side, TopRuns>> = {};
  try {
    for (const window of WINDOWS) {
      const runs: Record<Side, TopRuns> = { index: noRuns(), scan: noRuns() };
      for (let round = 0; round < rounds; round++) {
        for (const side of ['index', 'scan'] as const) {
          const server = servers[side];
          const cpuBefore = cpuSeconds(server.child.pid ?? 0);
          const result: LoadResult = await runLoad({ url: server.url, method: 'GET', prefix: `/top?k=10&window=${window}`, keys: 0, suffix: '', durationS, connections: TOP_CONNECTIONS }, loadCpu);
          runs[side].failed += result.non2xx;
          const cpu = cpuSeconds(server.child.pid ?? 0) - cpuBefore;
          runs[side].rps.push(result.rps);
          runs[side].p50.push(result.p50Ms);
          runs[side].p99.push(result.p99Ms);
          runs[side].cpuMsPerRequest.push((cpu * 1000) / Math.max(1, result.rps * durationS));
          // Scans the load generator gave up on still run: let them finish before the other node's round shares the core.
          await idle(server);
        }
      }
      top[window] = runs;
      for (const side of ['index', 'scan'] as const) {
        const r = runs[side];
        say(`  /top window=${window.padEnd(3)} ${side === 'index' ? 'with the index ' : 'scan, no index '} ${f(median(r.rps), 0)} req/s (${range(r.rps, 0)})  p50 ${f(median(r.p50), 2)} ms  p99 ${f(median(r.p99), 2)} ms (${range(r.p99, 2)})  CPU ${f(median(r.cpuMsPerRequest), 2)} ms a request${r.failed > 0 ? `; ${r.failed} failed or timed out (wrk gives up after 2 s)` : ''}`);
      }
    }
  } finally {
    await stopHits();
  }
  // The hit path with and without the index, alternating rounds, 1,000 keys of the seeded set (the hottest).
  const hitRuns: Record<Side, number[]> = { index: [], scan: [] };
  const hitSpec = { method: 'POST', prefix: '/hit/k', keys: 1_000, suffix: '' } as const;
  for (const side of ['index', 'scan'] as const) await runLoad({ ...hitSpec, url: servers[side].url, durationS: 3, connections: options.connections }, loadCpu);
  for (let round = 0; round < rounds; round++) {
    for (const side of ['index', 'scan'] as const) {
      const result = await runLoad({ ...hitSpec, url: servers[side].url, durationS, connections: options.connections }, loadCpu);
      if (result.non2xx > 0) throw new Error(`${result.non2xx} hits failed on the ${side} node`);
      hitRuns[side].push(result.rps);
    }
  }
  const after: Record<Side, number> = { index: rssMb(servers.index.child.pid ?? 0), scan: rssMb(servers.scan.child.pid ?? 0) };
  await Promise.all([servers.index.stop(), servers.scan.stop()]);
  const ratio = median(hitRuns.index) / median(hitRuns.scan);
  const ratios = hitRuns.index.map((x, i) => x / (hitRuns.scan[i] ?? NaN));
  say(`  POST /hit over 1,000 keys, ${options.connections} connections: with the index ${f(median(hitRuns.index), 0)} req/s (${range(hitRuns.index, 0)}), without ${f(median(hitRuns.scan), 0)} (${range(hitRuns.scan, 0)}); ratio ${f(ratio, 2)} (rounds ${range(ratios, 2)}; target >= 0.95)`);
  say(`  RSS with the index ${f(rss.index, 0)} MB at start, ${f(after.index, 0)} MB at the end; without ${f(rss.scan, 0)} MB and ${f(after.scan, 0)} MB`);
  return { keys: KEYS, hits, slots, top, hit: { ...hitRuns, ratio }, rss: { start: rss, end: after } };
}
