/**
 * What --fsync costs: POST /hit over 1,000 keys against a node without it
 * (the baseline) and one with it, on the same core, in alternating rounds
 * (this VM's speed drifts: a drift hits both alike), with the suite's
 * connections and then one connection (a lone client sees the fsync in every
 * hit's latency). Group commit is what keeps the cost down under load: every
 * hit that arrives during an fsync joins the next batch, so the batch size
 * (hitmesh_store_batch_hits) is reported with each figure.
 */
import { join } from 'node:path';
import { runLoad, type LoadResult } from './load.ts';
import { freePort, startPinned, type RowOptions, type Server } from './processes.ts';
import { fmt } from './format.ts';

/** `work` is the disk whose fsync is measured. */
export type FsyncBenchOptions = RowOptions;

/** One side at one concurrency: the median load figures and the batches the node wrote meanwhile. */
export interface FsyncSide extends LoadResult {
  readonly hitsPerBatch: number;
  readonly writeMsPerBatch: number;
  /** Every round's figures, to see the spread behind the medians. */
  readonly perRound: readonly { readonly rps: number; readonly p99Ms: number; readonly hitsPerBatch: number }[];
}

export interface FsyncPass {
  readonly connections: number;
  readonly plain: FsyncSide;
  readonly fsync: FsyncSide;
  /** fsync hits/s ÷ plain hits/s. */
  readonly ratio: number;
}

const SPEC = { method: 'POST', prefix: '/hit/k', keys: 1_000, suffix: '' } as const;
/** A lone client needs less time for a steady figure. */
const SINGLE_CONNECTION_S = 3;

export async function benchFsync(options: FsyncBenchOptions): Promise<FsyncPass[]> {
  const start = async (name: string, extra: readonly string[]): Promise<Server> => {
    const port = await freePort();
    const args = ['--id', name, '--port', String(port), '--data', join(options.work, name), '--log-level', 'warn', ...extra];
    return startPinned(options.serverCpu, 'node/main.ts', args, port);
  };
  const plain = await start('nofsync', []);
  const synced = await start('fsync', ['--fsync']);
  try {
    const passes: FsyncPass[] = [];
    for (const [connections, seconds] of [
      [options.connections, options.durationS],
      [1, Math.min(options.durationS, SINGLE_CONNECTION_S)],
    ] as const) {
      passes.push(await pass(plain, synced, connections, seconds, options));
    }
    options.say(`POST /hit/:key over 1,000 keys, without and with --fsync (median of ${options.rounds} alternating rounds; data on ${options.work})`);
    for (const p of passes) {
      options.say(`  ${p.connections} connection${p.connections === 1 ? '' : 's'}:`);
      options.say(`    no fsync  ${line(p.plain)}`);
      options.say(`    --fsync   ${line(p.fsync)}`);
      options.say(`    ratio ${fmt(p.ratio, 2)} of the hits/s without fsync, p99 ${fmt(p.fsync.p99Ms / p.plain.p99Ms, 1)}x`);
    }
    return passes;
  } finally {
    await Promise.all([plain.stop(), synced.stop()]);
  }
}

async function pass(plain: Server, synced: Server, connections: number, seconds: number, options: FsyncBenchOptions): Promise<FsyncPass> {
  const sides = [plain, synced];
  // Warm-up: the JIT, the connection pool, LevelDB's first compactions.
  for (const server of sides) await measure(server, connections, Math.min(seconds, 3), options.loadCpu);
  const runs: Measured[][] = [[], []];
  for (let round = 0; round < options.rounds; round++) {
    for (const [i, server] of sides.entries()) runs[i]?.push(await measure(server, connections, seconds, options.loadCpu));
  }
  const [a, b] = runs.map(summarize);
  if (a === undefined || b === undefined) throw new Error('no runs');
  return { connections, plain: a, fsync: b, ratio: b.rps / a.rps };
}

interface Measured {
  readonly load: LoadResult;
  readonly batches: number;
  readonly hits: number;
  readonly writeSeconds: number;
}

async function measure(server: Server, connections: number, seconds: number, cpu: number): Promise<Measured> {
  const before = await storeFigures(server);
  const load = await runLoad({ ...SPEC, url: server.url, durationS: seconds, connections }, cpu);
  if (load.non2xx > 0) throw new Error(`${load.non2xx} hits failed against ${server.url}`);
  const after = await storeFigures(server);
  return { load, batches: after.batches - before.batches, hits: after.hits - before.hits, writeSeconds: after.writeSeconds - before.writeSeconds };
}

/** Medians of the load figures; batch figures over all rounds together. */
function summarize(runs: readonly Measured[]): FsyncSide {
  const mid = (f: (r: LoadResult) => number): number => {
    const sorted = runs.map((r) => f(r.load)).sort((x, y) => x - y);
    return sorted[Math.floor(sorted.length / 2)] ?? NaN;
  };
  const sum = (f: (m: Measured) => number): number => runs.reduce((total, m) => total + f(m), 0);
  const batches = sum((m) => m.batches);
  return {
    tool: runs[0]?.load.tool ?? 'wrk',
    rps: mid((r) => r.rps),
    p50Ms: mid((r) => r.p50Ms),
    p99Ms: mid((r) => r.p99Ms),
    non2xx: 0,
    loadCpu: mid((r) => r.loadCpu),
    hitsPerBatch: sum((m) => m.hits) / batches,
    writeMsPerBatch: (sum((m) => m.writeSeconds) * 1000) / batches,
    perRound: runs.map((m) => ({ rps: Math.round(m.load.rps), p99Ms: m.load.p99Ms, hitsPerBatch: Math.round((m.hits / m.batches) * 10) / 10 })),
  };
}

/** Batches written, hits in them and time spent writing them, so far (from /metrics). */
async function storeFigures(server: Server): Promise<{ batches: number; hits: number; writeSeconds: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name: string): number => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    if (match === null) throw new Error(`no ${name} in ${server.url}/metrics`);
    return Number(match[1]);
  };
  return { batches: value('hitmesh_store_batch_hits_count'), hits: value('hitmesh_store_batch_hits_sum'), writeSeconds: value('hitmesh_store_write_duration_seconds_sum') };
}

function line(s: FsyncSide): string {
  return `${fmt(s.rps)} hits/s  p50 ${fmt(s.p50Ms, 2)} ms  p99 ${fmt(s.p99Ms, 2)} ms  ${fmt(s.hitsPerBatch, 1)} hits/batch  ${fmt(s.writeMsPerBatch, 3)} ms/batch write`;
}
