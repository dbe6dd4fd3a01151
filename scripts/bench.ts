/**
 * npm run bench: the server on one core, the load generator on the other, a
 * bare fastify server as the ceiling in the same run, and ratios against it.
 *
 *   npm run bench -- [--duration 8] [--connections 64] [--only hit,batch,count,rss] [--json out.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type LoadResult, type LoadSpec } from './bench/load.ts';
import { freePort, rssMb, startPinned, type Server } from './bench/processes.ts';
import { seedHistory } from './bench/seed.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    only: { type: 'string', default: 'hit,batch,count,rss' },
    json: { type: 'string' },
  },
});
const durationS = Number(values.duration);
const connections = Number(values.connections);
const only = new Set(values.only.split(','));

const SERVER_CPU = 0;
const LOAD_CPU = cpus().length > 1 ? 1 : 0;
// The orchestrator (and autocannon, when it is the load generator) stays off the server's core.
execFileSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });

const work = mkdtempSync(join(tmpdir(), 'hitmesh-bench-'));
const report: Record<string, unknown> = { machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, durationS, connections };
const lines: string[] = [];
const say = (line: string): void => {
  lines.push(line);
  console.log(line);
};

async function bare(): Promise<Server> {
  const port = await freePort();
  return startPinned(SERVER_CPU, 'scripts/bench/bare-server.ts', [String(port)], port);
}

async function node(dataDir: string, id = 'bench'): Promise<Server> {
  const port = await freePort();
  return startPinned(SERVER_CPU, 'node/main.ts', ['--id', id, '--port', String(port), '--data', dataDir, '--log-level', 'warn'], port);
}

async function load(server: Server, spec: Omit<LoadSpec, 'url' | 'durationS' | 'connections'>, seconds = durationS): Promise<LoadResult> {
  // A short warm-up so the JIT and connection pools are settled before measuring.
  await runLoad({ ...spec, url: server.url, durationS: 2, connections }, LOAD_CPU);
  const result = await runLoad({ ...spec, url: server.url, durationS: seconds, connections }, LOAD_CPU);
  if (result.non2xx > 0) throw new Error(`${result.non2xx} requests failed during ${spec.method} ${spec.prefix}`);
  return result;
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const describe = (r: LoadResult): string => `${fmt(r.rps)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  (${r.tool} used ${fmt(r.loadCpu * 100)}% of a core)`;

async function benchHit(): Promise<void> {
  const spec = { method: 'POST', prefix: '/hit/k', keys: 1_000, suffix: '' } as const;
  const ceiling = await bare();
  const base = await load(ceiling, spec);
  await ceiling.stop();
  const server = await node(join(work, 'hit'));
  const real = await load(server, spec);
  await server.stop();
  report.hit = { ceiling: base, node: real, ratio: real.rps / base.rps };
  say(`POST /hit/:key over 1,000 keys`);
  say(`  bare fastify  ${describe(base)}`);
  say(`  hitmesh node  ${describe(real)}`);
  say(`  ratio ${fmt(real.rps / base.rps, 2)} of the ceiling (target >= 0.80); every 200 is in LevelDB`);
}

async function benchBatch(): Promise<void> {
  const items = Array.from({ length: 1_000 }, (_, i) => ({ key: `k${i}`, n: 1 }));
  const body = JSON.stringify(items);
  const server = await node(join(work, 'batch'));
  const real = await load(server, { method: 'POST', prefix: '/hits', keys: 0, suffix: '', body });
  await server.stop();
  const hitsPerS = real.rps * 1_000;
  report.batch = { node: real, hitsPerS };
  say(`POST /hits, batches of 1,000 hits over 1,000 keys`);
  say(`  hitmesh node  ${describe(real)}`);
  say(`  ${fmt(hitsPerS)} hits/s (target >= 1,000,000)`);
}

async function benchCount(): Promise<void> {
  const dir = join(work, 'count');
  const now = Date.now();
  const seeded = await seedHistory(dir, 'bench', { keys: 10_000, hitsPerKey: 40, spanMs: 30 * 86_400_000, now, seed: 1 });
  const ceiling = await bare();
  const base = await load(ceiling, { method: 'GET', prefix: '/count/k', keys: 10_000, suffix: '?window=1h' });
  await ceiling.stop();
  const server = await node(dir);
  const results: Record<string, LoadResult> = {};
  say(`GET /count/:key over 10,000 keys with 30 days of history (${fmt(seeded.hits)} hits, ${fmt(seeded.slots)} slots)`);
  say(`  bare fastify  ${describe(base)}`);
  for (const window of ['60s', '1h', '24h', '30d']) {
    const r = await load(server, { method: 'GET', prefix: '/count/k', keys: 10_000, suffix: `?window=${window}` });
    results[window] = r;
    say(`  window ${window.padEnd(4)} ${describe(r)}  ratio ${fmt(r.rps / base.rps, 2)}, p99 ${fmt(r.p99Ms / base.p99Ms, 2)}x`);
  }
  await server.stop();
  report.count = { ceiling: base, windows: results };
  say(`  targets: ratio >= 0.80, p99 within 1.2x of the ceiling's`);
}

async function benchRss(): Promise<void> {
  const dir = join(work, 'rss');
  const now = Date.now();
  await seedHistory(dir, 'bench', { keys: 100_000, hitsPerKey: 3, spanMs: 3_600_000, now, seed: 2 });
  const started = Date.now();
  const server = await node(dir);
  const startS = (Date.now() - started) / 1000;
  const pid = server.child.pid ?? 0;
  const idle = rssMb(pid);
  await runLoad({ url: server.url, method: 'POST', prefix: '/hit/k', keys: 100_000, suffix: '', durationS: Math.min(durationS, 5), connections }, LOAD_CPU);
  const loaded = rssMb(pid);
  await server.stop();
  report.rss = { keys: 100_000, startS, idleMb: idle, afterLoadMb: loaded };
  say(`RSS with 100,000 keys hit in the last hour`);
  say(`  ${fmt(idle)} MB after start (rebuilt from LevelDB in ${fmt(startS, 1)} s), ${fmt(loaded)} MB after ${Math.min(durationS, 5)} s of hits on them (target <= 300 MB)`);
}

try {
  say(`hitmesh bench: server pinned to cpu ${SERVER_CPU}, load generator on cpu ${LOAD_CPU}, ${durationS} s per measurement, ${connections} connections`);
  if (only.has('hit')) await benchHit();
  if (only.has('batch')) await benchBatch();
  if (only.has('count')) await benchCount();
  if (only.has('rss')) await benchRss();
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(report, null, 2));
} finally {
  rmSync(work, { recursive: true, force: true });
}
