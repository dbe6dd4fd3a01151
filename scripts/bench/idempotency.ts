/**
 * What Idempotency-Key costs. One node: POST /hit over 1,000 keys with a
 * unique token per request against the same with no token, and the repeat
 * path (every request a retry of a token already counted), each side on a
 * node of its own on the same core, in alternating rounds; requests/s and the
 * server's CPU per 1,000 requests. Then gossip bytes per hit on a 3-node
 * cluster (as the cluster row measures them), a hot key with and without a
 * token per hit.
 *
 * Every side sends the same request: one header of the same length, holding
 * a token of the same length, from the same generator. Without a token the
 * header is X-Bench-Padding, which the server ignores, so the sides differ
 * only in the header's name.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { count, gossipBytesOut, startCluster, stopCluster, waitForMesh } from './cluster.ts';
import { hasWrk } from './load.ts';
import { cpuSeconds, freePort, startPinned, type RowOptions, type Server } from './processes.ts';
import { fmt } from './format.ts';

export type IdempotencyBenchOptions = RowOptions;

/** none: no token (a padding header); unique: a new token every request; repeat: one token per key, counted before. */
type Mode = 'none' | 'unique' | 'repeat';

interface Round {
  readonly rps: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (user + system) per 1,000 requests. */
  readonly cpuMsPer1k: number;
  /** CPU the load generator used, in cores. */
  readonly loadCpu: number;
}

export interface Side {
  readonly median: Round;
  readonly min: Round;
  readonly max: Round;
  readonly perRound: readonly Round[];
}

export interface IdempotencyBench {
  readonly tool: 'wrk' | 'autocannon';
  readonly none: Side;
  readonly unique: Side;
  readonly repeat: Side;
  /** unique req/s ÷ none req/s, medians. */
  readonly ratio: number;
  readonly gossip: { readonly none: GossipSide; readonly unique: GossipSide };
}

export interface GossipSide {
  readonly bytesPerHit: number;
  readonly range: readonly [number, number];
  readonly hits: number;
}

const KEYS = 1_000;
const TOKEN_HEADER = 'Idempotency-Key';
const PAD_HEADER = 'X-Bench-Padding'; // as long as TOKEN_HEADER
/** The token every repeat sends (per key, so 1,000 tokens), as long as the unique ones: 8 characters, '-', 10 digits. */
const REPEAT_RUN = 'repeat00';
const token = (run: string, i: number): string => `${run}-${String(i).padStart(10, '0')}`;

interface Load {
  readonly url: string;
  readonly path: string;
  readonly keys: number;
  readonly mode: Mode;
  readonly durationS: number;
  readonly connections: number;
}

type Measured = Omit<Round, 'cpuMsPer1k'> & { readonly failed: number };

/** A new run prefix per load, so a token is never sent twice by two runs. */
let runs = 0;
const runId = (): string => `${process.pid.toString(16).padStart(4, '0').slice(-4)}${(runs++).toString(16).padStart(4, '0')}`;

/** wrk with a Lua script that sets the header per request (one thread: one counter), or autocannon where wrk is missing. */
async function runTokenLoad(load: Load, cpu: number): Promise<Measured> {
  const run = load.mode === 'repeat' ? REPEAT_RUN : runId();
  const header = load.mode === 'none' ? PAD_HEADER : TOKEN_HEADER;
  if (hasWrk()) return runWrk(load, cpu, run, header);
  const before = process.cpuUsage();
  let i = 0;
  const result = await autocannon({
    url: load.url,
    connections: load.connections,
    duration: load.durationS,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => ({ ...req, path: `${load.path}${load.keys > 0 ? Math.floor(Math.random() * load.keys) : ''}`, headers: { [header]: token(run, load.mode === 'repeat' ? 0 : ++i) } }),
      },
    ],
  });
  const used = process.cpuUsage(before);
  return { rps: result.requests.average, requests: result.requests.total, p50Ms: result.latency.p50, p99Ms: result.latency.p99, failed: result.non2xx + result.errors, loadCpu: (used.user + used.system) / 1e6 / load.durationS };
}

async function runWrk(load: Load, cpu: number, run: string, header: string): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'hitmesh-wrk-'));
  const script = join(dir, 'tokens.lua');
  const key = load.keys > 0 ? `math.random(0, ${load.keys - 1})` : '""';
  writeFileSync(
    script,
    [
      'local i = 0',
      'request = function()',
      ...(load.mode === 'repeat' ? [] : ['  i = i + 1']),
      `  return wrk.format("POST", "${load.path}" .. ${key}, { ["${header}"] = string.format("${run}-%010d", i) }, nil)`,
      'end',
      // os.clock() in done(): the CPU of the whole wrk process, its threads joined.
      'done = function(summary, latency)',
      '  local e = summary.errors',
      '  io.write(string.format("RESULT %d %d %d %f %f %f\\n", summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,',
      '    latency:percentile(50), latency:percentile(99), os.clock()))',
      'end',
    ].join('\n'),
  );
  const child = spawn('taskset', ['-c', String(cpu), 'wrk', '-t1', `-c${load.connections}`, `-d${load.durationS}s`, '-s', script, load.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
  const fields = /^RESULT (.+)$/m.exec(out)?.[1]?.split(' ').map(Number);
  if (code !== 0 || fields === undefined) throw new Error(`wrk failed (${code}): ${out}`);
  const [requests = NaN, durationUs = NaN, failed = NaN, p50Us = NaN, p99Us = NaN, cpuS = NaN] = fields;
  return { rps: requests / (durationUs / 1e6), requests, p50Ms: p50Us / 1000, p99Ms: p99Us / 1000, failed, loadCpu: cpuS / load.durationS };
}

async function measure(server: Server, load: Omit<Load, 'url'>, cpu: number): Promise<Round> {
  const pid = server.child.pid ?? 0;
  const before = cpuSeconds(pid);
  const result = await runTokenLoad({ ...load, url: server.url }, cpu);
  const used = cpuSeconds(pid) - before;
  if (result.failed > 0) throw new Error(`${result.failed} of ${result.requests} requests failed (${load.mode} tokens on ${server.url})`);
  return { rps: result.rps, requests: result.requests, p50Ms: result.p50Ms, p99Ms: result.p99Ms, loadCpu: result.loadCpu, cpuMsPer1k: (used * 1000) / (result.requests / 1000) };
}

function summarize(perRound: readonly Round[]): Side {
  const pick = (f: (r: Round) => number, at: 'min' | 'mid' | 'max'): number => {
    const sorted = perRound.map(f).sort((a, b) => a - b);
    return sorted[at === 'min' ? 0 : at === 'max' ? sorted.length - 1 : Math.floor(sorted.length / 2)] ?? NaN;
  };
  const round = (at: 'min' | 'mid' | 'max'): Round => ({
    rps: pick((r) => r.rps, at),
    requests: pick((r) => r.requests, at),
    p50Ms: pick((r) => r.p50Ms, at),
    p99Ms: pick((r) => r.p99Ms, at),
    cpuMsPer1k: pick((r) => r.cpuMsPer1k, at),
    loadCpu: pick((r) => r.loadCpu, at),
  });
  return { median: round('mid'), min: round('min'), max: round('max'), perRound };
}

/** The sum of the lifetime counts of keys prefix0..prefix{n-1}. */
async function total(server: Server, prefix: string, n: number): Promise<number> {
  const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(',');
  const body = (await (await fetch(`${server.url}/counts?keys=${keys}&window=all`)).json()) as { counts: Record<string, number> };
  return Object.values(body.counts).reduce((a, b) => a + b, 0);
}

async function singleNode(options: IdempotencyBenchOptions): Promise<Record<Mode, Side>> {
  const start = async (name: string): Promise<Server> => {
    const port = await freePort();
    return startPinned(options.serverCpu, 'node/main.ts', ['--id', name, '--port', String(port), '--data', join(options.work, name), '--log-level', 'warn', '--max-tokens', '50000000'], port);
  };
  const modes: readonly Mode[] = ['none', 'unique', 'repeat'];
  const servers = await Promise.all(modes.map((mode) => start(`idem-${mode}`)));
  try {
    const repeatServer = servers[2] as Server;
    // The repeats' tokens, counted once beforehand: every request measured is then a duplicate.
    const primed = await fetch(`${repeatServer.url}/hits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Array.from({ length: KEYS }, (_, i) => ({ key: `k${i}`, id: token(REPEAT_RUN, 0) }))),
    });
    if (!primed.ok) throw new Error(`priming the repeat tokens: ${primed.status} ${await primed.text()}`);
    const load = (mode: Mode, durationS: number): Omit<Load, 'url'> => ({ path: '/hit/k', keys: KEYS, mode, durationS, connections: options.connections });
    // Warm-up: the JIT, connection pools, a fresh node's first compactions.
    for (const [i, mode] of modes.entries()) await measure(servers[i] as Server, load(mode, 5), options.loadCpu);
    const runs: Round[][] = modes.map(() => []);
    for (let round = 0; round < options.rounds; round++) {
      for (const [i, mode] of modes.entries()) runs[i]?.push(await measure(servers[i] as Server, load(mode, options.durationS), options.loadCpu));
    }
    const counted = await total(repeatServer, 'k', KEYS);
    if (counted !== KEYS) throw new Error(`the repeats were counted: ${counted} hits on the repeat node, ${KEYS} expected`);
    const [none, unique, repeat] = runs.map(summarize) as [Side, Side, Side];
    return { none, unique, repeat };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Gossip bytes per hit on 3 nodes (all frames of all nodes), hits on node 1 on one hot key, with a token per hit and without, alternating. */
async function gossipBytes(options: IdempotencyBenchOptions): Promise<Record<'none' | 'unique', GossipSide>> {
  const nodes = await startCluster(3, join(options.work, 'idem-cluster'), (i) => (i === 0 ? options.serverCpu : options.loadCpu), (i, ports) => (i === 0 ? [] : [`127.0.0.1:${ports[0]}`]), ['--max-tokens', '50000000']);
  try {
    await waitForMesh(nodes, 2);
    const first = nodes[0] as (typeof nodes)[number];
    const sent = { none: 0, unique: 0 };
    const perHit: Record<'none' | 'unique', number[]> = { none: [], unique: [] };
    for (let round = 0; round < options.rounds; round++) {
      for (const mode of ['none', 'unique'] as const) {
        const before = (await Promise.all(nodes.map(gossipBytesOut))).reduce((a, b) => a + b, 0);
        const result = await runTokenLoad({ url: first.server.url, path: mode === 'none' ? '/hit/hot-n' : '/hit/hot-u', keys: 0, mode, durationS: options.durationS, connections: 16 }, options.loadCpu);
        if (result.failed > 0) throw new Error(`${result.failed} hits failed (${mode} tokens, cluster)`);
        await new Promise((resolve) => setTimeout(resolve, 1_500)); // let replication finish
        const after = (await Promise.all(nodes.map(gossipBytesOut))).reduce((a, b) => a + b, 0);
        perHit[mode].push((after - before) / result.requests);
        sent[mode] += result.requests;
      }
    }
    // Every hit replicated (wrk does not count the requests still in flight at its end: a few more than it sent may be counted).
    for (const [mode, key] of [['none', 'hot-n'], ['unique', 'hot-u']] as const) {
      const counts = await Promise.all(nodes.map((n) => count(n, key)));
      if (new Set(counts).size !== 1 || (counts[0] ?? 0) < sent[mode]) throw new Error(`${key}: counts ${counts.join(', ')} on the 3 nodes, ${sent[mode]} hits answered`);
    }
    const side = (xs: readonly number[], hits: number): GossipSide => {
      const sorted = [...xs].sort((a, b) => a - b);
      return { bytesPerHit: sorted[Math.floor(sorted.length / 2)] ?? NaN, range: [sorted[0] ?? NaN, sorted[sorted.length - 1] ?? NaN], hits };
    };
    return { none: side(perHit.none, sent.none), unique: side(perHit.unique, sent.unique) };
  } finally {
    await stopCluster(nodes);
  }
}

function line(s: Side): string {
  const { median: m, min, max } = s;
  return `${fmt(m.rps)} req/s (${fmt(min.rps)}-${fmt(max.rps)})  ${fmt(m.cpuMsPer1k, 1)} CPU ms/1k req (${fmt(min.cpuMsPer1k, 1)}-${fmt(max.cpuMsPer1k, 1)})  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  (load generator ${fmt(m.loadCpu * 100)}% of a core)`;
}

export async function benchIdempotency(options: IdempotencyBenchOptions): Promise<IdempotencyBench> {
  const tool = hasWrk() ? 'wrk' : 'autocannon';
  const single = await singleNode(options);
  const ratio = single.unique.median.rps / single.none.median.rps;
  const say = options.say;
  say(`POST /hit/:key over 1,000 keys, Idempotency-Key vs none (${tool}; one node per side on the same core; median and range of ${options.rounds} alternating rounds)`);
  say(`  no token            ${line(single.none)}`);
  say(`  unique token        ${line(single.unique)}`);
  say(`  repeat (duplicate)  ${line(single.repeat)}`);
  say(`  ratio ${fmt(ratio, 2)} of the req/s without a token (target >= 0.80), CPU per request ${fmt(single.unique.median.cpuMsPer1k / single.none.median.cpuMsPer1k, 2)}x; repeats ${fmt(single.repeat.median.rps / single.none.median.rps, 2)}`);
  const gossip = await gossipBytes(options);
  say(`Gossip bytes per hit, 3 nodes, all frames of all nodes, one hot key hit on node 1 (16 connections, median and range of ${options.rounds} alternating rounds)`);
  say(`  no token      ${fmt(gossip.none.bytesPerHit, 2)} bytes/hit (${fmt(gossip.none.range[0], 2)}-${fmt(gossip.none.range[1], 2)}) over ${fmt(gossip.none.hits)} hits`);
  say(`  unique token  ${fmt(gossip.unique.bytesPerHit, 2)} bytes/hit (${fmt(gossip.unique.range[0], 2)}-${fmt(gossip.unique.range[1], 2)}) over ${fmt(gossip.unique.hits)} hits; tokens of ${token('x'.repeat(8), 0).length} characters`);
  return { tool, ...single, ratio, gossip };
}
