/**
 * GET /top on 100,000 keys hit over the last day with a Zipf (s = 1)
 * distribution, written into the data directory as the node would have
 * (bench/seed.ts), while a steady 1,000 hits/s of the same distribution keep
 * flowing: /top?window=60s|1h|24h&k=10 requests/s and latency with the index,
 * then without it (--no-top-index: a scan of every key), one node at a time
 * on the server core; how each ranking
 * was answered, from the node's metrics; POST /hit requests/s and CPU time a
 * request with and without the index, in alternating rounds, for 1,000 keys
 * hit alike (the index's worst case) and for Zipf over every key; RSS of each.
 */
import { cpSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { mulberry32 } from '../../gossip/random.ts';
import { runLoad, runMeasuredLoad, zipfPicker } from './load.ts';
import { cpuSeconds, freePort, rssMb, startPinned, type RowOptions, type Server } from './processes.ts';
import { seedHistory } from './seed.ts';

export type TopBenchOptions = RowOptions;

const KEYS = 100_000;
const TOP_HITS = 200_000; // the hottest key's hits in the day; the k-th has 1/k of it (about 2.4 M hits in all)
const WINDOWS = ['60s', '1h', '24h'] as const;
const STEADY_HITS_PER_S = 1_000;
/**
 * One client: a request's own latency, not a queue's. On one core a ranking
 * costs far more than a loopback round trip, so one connection also keeps
 * the core about as busy as it can be kept.
 */
const TOP_CONNECTIONS = 1;

type Side = 'index' | 'scan';

interface TopRuns {
  readonly rps: number[];
  /** Rankings by method (union, sorted, scan, inexact), from the node's hitmesh_top_rankings_total. */
  readonly methods: Record<string, number>;
  readonly p50: number[];
  readonly p99: number[];
  readonly cpuMsPerRequest: number[];
  failed: number;
}

const noRuns = (): TopRuns => ({ methods: {}, rps: [], p50: [], p99: [], cpuMsPerRequest: [], failed: 0 });

/** Hits at a steady rate until stopped (batches of 50, 20 a second): the index must keep up meanwhile. */
function steadyHits(servers: readonly Server[]): () => Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const pick = zipfPicker(KEYS, mulberry32(3));
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

/** Until the node spends less than `share` of a core over `spanMs`, at most `maxMs`. */
async function idle(server: Server, share = 0.2, spanMs = 200, maxMs = 20_000): Promise<void> {
  const until = Date.now() + maxMs;
  let last = cpuSeconds(server.child.pid ?? 0);
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, spanMs));
    const now = cpuSeconds(server.child.pid ?? 0);
    if (now - last < (share * spanMs) / 1000) return;
    last = now;
  }
}

/** Start-up done: loading, expiring the seeded seconds past retention, LevelDB's compactions after them (2 s under 5% of a core). */
const settled = (server: Server): Promise<void> => idle(server, 0.05, 2_000, 60_000);

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const f = (x: number, digits = 1): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const range = (xs: readonly number[], digits = 1): string => `${f(Math.min(...xs), digits)}-${f(Math.max(...xs), digits)}`;

/** The node's GET /top rankings so far, by method. */
async function rankingMethods(server: Server): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const methods: Record<string, number> = {};
  for (const match of text.matchAll(/^hitmesh_top_rankings_total\{[^}]*method="(\w+)"[^}]*\} (\d+)/gm)) methods[match[1] as string] = Number(match[2]);
  return methods;
}

/** One node's /top rounds for every window, alone on the server core, with the steady hits flowing into it. */
async function measureTop(server: Server, side: Side, options: TopBenchOptions): Promise<Record<string, TopRuns>> {
  const { durationS, rounds, loadCpu, say } = options;
  const stopHits = steadyHits([server]);
  const byWindow: Record<string, TopRuns> = {};
  try {
    for (const window of WINDOWS) {
      const runs = noRuns();
      const spec = { url: server.url, method: 'GET', prefix: `/top?k=10&window=${window}`, keys: 0, suffix: '', connections: TOP_CONNECTIONS } as const;
      await runLoad({ ...spec, durationS: 1 }, loadCpu); // warm-up: compile this plan's paths
      await idle(server);
      const before = await rankingMethods(server);
      for (let round = 0; round < rounds; round++) {
        const result = await runMeasuredLoad({ ...spec, durationS }, loadCpu, server.child.pid ?? 0);
        runs.failed += result.non2xx;
        runs.rps.push(result.rps);
        runs.p50.push(result.p50Ms);
        runs.p99.push(result.p99Ms);
        runs.cpuMsPerRequest.push(result.serverUsPerRequest / 1000);
      }
      const after = await rankingMethods(server);
      for (const [method, n] of Object.entries(after)) if (n > (before[method] ?? 0)) runs.methods[method] = n - (before[method] ?? 0);
      byWindow[window] = runs;
      const how = Object.entries(runs.methods).map(([method, n]) => `${method} ${f(n, 0)}`).join(', ');
      say(`  /top window=${window.padEnd(3)} ${side === 'index' ? 'with the index ' : 'scan, no index '} ${f(median(runs.rps), 0)} req/s (${range(runs.rps, 0)})  p50 ${f(median(runs.p50), 2)} ms  p99 ${f(median(runs.p99), 2)} ms (${range(runs.p99, 2)})  CPU ${f(median(runs.cpuMsPerRequest), 2)} ms a request; ranked by ${how}${runs.failed > 0 ? `; ${runs.failed} failed or timed out (wrk gives up after 2 s)` : ''}`);
    }
  } finally {
    await stopHits();
  }
  await idle(server);
  return byWindow;
}

export async function benchTop(options: TopBenchOptions): Promise<Record<string, unknown>> {
  const { work, serverCpu, loadCpu, durationS, rounds, say } = options;
  const seeded = join(work, 'top-seed');
  const now = Date.now();
  const { slots, hits } = await seedHistory(seeded, 'top', { keys: KEYS, hitsPerKey: (k) => Math.max(1, Math.round(TOP_HITS / (k + 1))), spanMs: 86_400_000, now, seed: 5, secondsWithinMs: 2 * 3_600_000 });
  /** A node on a fresh copy of the seeded directory, settled after its start-up. */
  const start = async (side: Side, phase: string): Promise<Server> => {
    const dir = join(work, `${phase}-${side}`);
    cpSync(seeded, dir, { recursive: true });
    const port = await freePort();
    const flags = side === 'scan' ? ['--no-top-index'] : [];
    const server = await startPinned(serverCpu, 'node/main.ts', ['--id', 'top', '--port', String(port), '--data', dir, '--log-level', 'warn', ...flags], port);
    await settled(server);
    return server;
  };
  say(`GET /top on ${f(KEYS, 0)} keys, Zipf over the last day (${f(hits, 0)} hits, ${f(slots, 0)} slots), ${f(STEADY_HITS_PER_S, 0)} hits/s flowing in meanwhile; ${TOP_CONNECTIONS} connection, ${rounds} rounds of ${durationS} s, each node alone on the server core`);
  // One node at a time: another's start-up or leftover scans would share the server core.
  const top: Partial<Record<Side, Record<string, TopRuns>>> = {};
  const rss: Record<Side, { start: number; end: number }> = { index: { start: NaN, end: NaN }, scan: { start: NaN, end: NaN } };
  for (const side of ['index', 'scan'] as const) {
    const server = await start(side, 'top');
    rss[side].start = rssMb(server.child.pid ?? 0);
    top[side] = await measureTop(server, side, options);
    rss[side].end = rssMb(server.child.pid ?? 0);
    await server.stop();
  }
  say(`  RSS with the index ${f(rss.index.start, 0)} MB at start, ${f(rss.index.end, 0)} MB after its rounds; without ${f(rss.scan.start, 0)} MB and ${f(rss.scan.end, 0)} MB`);
  // The hit path with and without the index: two nodes on fresh copies of the same directory, alternating rounds
  // (twice as many, in ABBA order: the ratio is the figure).
  const servers: Record<Side, Server> = { index: await start('index', 'hit'), scan: await start('scan', 'hit') };
  const hit: Record<string, unknown> = {};
  // The index's worst case: 1,000 keys hit alike, so every heap churns at its floor; then hits as they come, Zipf over every key.
  for (const [name, spec] of [
    ['uniform over the 1,000 hottest keys', { method: 'POST', prefix: '/hit/k', keys: 1_000, suffix: '' }],
    [`Zipf over all ${f(KEYS, 0)} keys`, { method: 'POST', prefix: '/hit/k', keys: KEYS, zipf: true, suffix: '' }],
  ] as const) {
    const runs: Record<Side, { rps: number[]; cpuUsPerRequest: number[] }> = { index: { rps: [], cpuUsPerRequest: [] }, scan: { rps: [], cpuUsPerRequest: [] } };
    for (const side of ['index', 'scan'] as const) await runLoad({ ...spec, url: servers[side].url, durationS: 3, connections: options.connections }, loadCpu);
    for (let round = 0; round < 2 * rounds; round++) {
      for (const side of round % 2 === 0 ? (['index', 'scan'] as const) : (['scan', 'index'] as const)) {
        const server = servers[side];
        const result = await runMeasuredLoad({ ...spec, url: server.url, durationS, connections: options.connections }, loadCpu, server.child.pid ?? 0);
        if (result.non2xx > 0) throw new Error(`${result.non2xx} hits failed on the ${side} node`);
        runs[side].rps.push(result.rps);
        runs[side].cpuUsPerRequest.push(result.serverUsPerRequest);
      }
    }
    const ratio = median(runs.index.rps) / median(runs.scan.rps);
    const ratios = runs.index.rps.map((x, i) => x / (runs.scan.rps[i] ?? NaN));
    const cpuRatio = median(runs.scan.cpuUsPerRequest) / median(runs.index.cpuUsPerRequest);
    say(`  POST /hit ${name}, ${options.connections} connections, ${2 * rounds} alternating rounds: with the index ${f(median(runs.index.rps), 0)} req/s (${range(runs.index.rps, 0)}), without ${f(median(runs.scan.rps), 0)} (${range(runs.scan.rps, 0)}); ratio ${f(ratio, 2)} (rounds ${range(ratios, 2)}; target >= 0.95)`);
    say(`    CPU a hit request: with the index ${f(median(runs.index.cpuUsPerRequest), 1)} us (${range(runs.index.cpuUsPerRequest, 1)}), without ${f(median(runs.scan.cpuUsPerRequest), 1)} us (${range(runs.scan.cpuUsPerRequest, 1)}); ratio without/with ${f(cpuRatio, 2)}`);
    hit[name] = { ...runs, ratio, cpuRatio };
  }
  await Promise.all([servers.index.stop(), servers.scan.stop()]);
  return { keys: KEYS, hits, slots, top, hit, rss };
}
