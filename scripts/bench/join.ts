/**
 * Join: how long a new, empty node takes to get everything from a node that
 * holds `keys` keys hit once each (five slots a key), and what it costs both.
 * The baseline, from the same run, is seeding those keys into the first node
 * through its fastest client path (POST /hits of 10,000): the same state put
 * in over HTTP, every batch durable, against the same state copied by gossip.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startPinned, type Server } from './processes.ts';
import { fmt } from './format.ts';

export interface JoinResult {
  readonly keys: number;
  readonly slots: number;
  readonly seedS: number;
  /** From the new node's spawn until its vector holds the source's origin up to the source's seq. */
  readonly joinS: number;
  /** Spawn until the new node answered /readyz (start-up; the transfer is already under way by then). */
  readonly readyS: number;
  readonly bytesSent: number;
  readonly framesSent: number;
  readonly repairs: number;
  /** Peak RSS in MB, sampled from /metrics during the transfer, and the kernel's high-water mark (VmHWM) at the end. */
  readonly sourceRssMb: { readonly beforeJoin: number; readonly peak: number; readonly hwm: number };
  readonly joinerRssMb: { readonly peak: number; readonly hwm: number };
  /** Source probes during the transfer: worst and p99 latency in ms, and how many failed (10 s timeout). */
  readonly health: Probes;
  /** The source's own longest event-loop delay during the transfer (its monitorEventLoopDelay), in ms: blind to the prober's core. */
  readonly sourceLoopMaxMs: number;
  readonly count: Probes;
}

export interface Probes {
  readonly n: number;
  readonly failed: number;
  readonly worstMs: number;
  readonly p99Ms: number;
}

const BATCH = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function getText(url: string, timeoutMs = 10_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${text}`);
  return text;
}

/** The sum of every series of `name` in a /metrics text whose labels contain each of `labels`. */
function metricIn(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && labels.every((label) => line.includes(label))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const metric = async (url: string, name: string, ...labels: string[]): Promise<number> => metricIn(await getText(`${url}/metrics`), name, ...labels);

/** RSS in MB, and the longest event-loop delay since the last scrape in ms (prom-client resets its histogram on each). */
async function vitals(url: string): Promise<{ rssMb: number; loopMaxMs: number }> {
  const text = await getText(`${url}/metrics`);
  return { rssMb: metricIn(text, 'process_resident_memory_bytes') / 2 ** 20, loopMaxMs: metricIn(text, 'nodejs_eventloop_lag_max_seconds') * 1000 };
}

function hwmMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? NaN) / 1024;
}

interface ClusterView {
  readonly node: { readonly origin: string; readonly seq: number; readonly keys: number; readonly vv: Record<string, [number, number]> };
}

/** GET `path` on `url` back to back (10 ms apart) until stopped: the latency of each answer. */
function probe(url: string, path: string): { stop(): Promise<Probes> } {
  const latencies: number[] = [];
  let failed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        await getText(`${url}${path}`);
      } catch {
        failed++;
      }
      latencies.push(performance.now() - t0);
      await sleep(10);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      latencies.sort((a, b) => a - b);
      const at = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
      return { n: latencies.length, failed, worstMs: at(1), p99Ms: at(0.99) };
    },
  };
}

/** kill -9: a graceful stop would first checkpoint millions of slots, which is not what is measured. */
async function kill(server: Server | undefined): Promise<void> {
  server?.child.kill('SIGKILL');
  await server?.stop();
}

export async function joinBench(dataRoot: string, cpus: { readonly source: number; readonly joiner: number }, keys = 1_000_000): Promise<JoinResult> {
  const sourcePort = await freePort();
  // Its own checkpoint of the seeded slots (minutes at this size) is put off: not part of either figure.
  const source = await startPinned(cpus.source, 'node/main.ts', ['--id', 'source', '--port', String(sourcePort), '--data', join(dataRoot, 'source'), '--log-level', 'warn', '--checkpoint-interval', '1h'], sourcePort);
  let joiner: Server | undefined;
  try {
    const seedStart = performance.now();
    for (let b = 0; b < keys / BATCH; b++) {
      const body = JSON.stringify(Array.from({ length: BATCH }, (_, i) => ({ key: `k${b * BATCH + i}` })));
      const res = await fetch(`${source.url}/hits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!res.ok) throw new Error(`POST /hits answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
    const seedS = (performance.now() - seedStart) / 1000;
    const held = JSON.parse(await getText(`${source.url}/cluster`)) as ClusterView;
    if (held.node.keys !== keys) throw new Error(`the source holds ${held.node.keys} keys, not ${keys}`);
    // This scrape also resets the source's event-loop histogram: the delays sampled below are the transfer's.
    const beforeJoin = (await vitals(source.url)).rssMb;

    const health = probe(source.url, '/healthz');
    const count = probe(source.url, '/count/k0?window=all');
    const peak = { source: beforeJoin, joiner: 0, loopMs: 0 };
    const joinerPort = await freePort();
    const joinerUrl = `http://127.0.0.1:${joinerPort}`;
    let done = false;
    const sampling = (async () => {
      while (!done) {
        const [there, here] = await Promise.all([vitals(source.url).catch(() => undefined), vitals(joinerUrl).catch(() => undefined)]);
        peak.source = Math.max(peak.source, there?.rssMb ?? 0);
        peak.loopMs = Math.max(peak.loopMs, there?.loopMaxMs ?? 0);
        peak.joiner = Math.max(peak.joiner, here?.rssMb ?? 0);
        await sleep(500);
      }
    })();
    const joinStart = performance.now();
    let joinS: number;
    let readyS: number;
    let probes: { health: Probes; count: Probes };
    try {
      joiner = await startPinned(cpus.joiner, 'node/main.ts', ['--id', 'joiner', '--port', String(joinerPort), '--data', join(dataRoot, 'joiner'), '--log-level', 'warn', '--peers', `127.0.0.1:${sourcePort}`], joinerPort);
      readyS = (performance.now() - joinStart) / 1000;
      for (;;) {
        const view = JSON.parse(await getText(`${joinerUrl}/cluster`, 30_000)) as ClusterView;
        if ((view.node.vv[held.node.origin]?.[0] ?? 0) >= held.node.seq && view.node.keys === keys) break;
        if (performance.now() - joinStart > 600_000) throw new Error(`no join within 10 minutes: ${view.node.keys} keys`);
        await sleep(100);
      }
      joinS = (performance.now() - joinStart) / 1000;
    } finally {
      done = true;
      const [healthProbes, countProbes] = await Promise.all([health.stop(), count.stop(), sampling]);
      probes = { health: healthProbes, count: countProbes };
    }
    // The sample a joiner must answer like the source: a key from every part of the range, each counted once.
    const sample = Array.from({ length: 1_000 }, (_, i) => `k${(i * 999_983) % keys}`);
    const { counts } = JSON.parse(await getText(`${joinerUrl}/counts?keys=${sample.join(',')}&window=all`)) as { counts: Record<string, number> };
    const off = Object.entries(counts).filter(([, n]) => n !== 1);
    if (off.length > 0) throw new Error(`the joiner counts ${off.length} of 1,000 sampled keys wrong, e.g. ${JSON.stringify(off.slice(0, 3))}`);
    return {
      keys,
      slots: keys * 5,
      seedS,
      joinS,
      readyS,
      bytesSent: await metric(source.url, 'hitmesh_gossip_bytes_total', 'peer="joiner"', 'direction="out"'),
      framesSent: await metric(source.url, 'hitmesh_gossip_frames_total', 'peer="joiner"', 'direction="out"', 'type="delta"'),
      repairs: await metric(source.url, 'hitmesh_gossip_repairs_total'),
      sourceRssMb: { beforeJoin, peak: peak.source, hwm: hwmMb(source.child.pid) },
      joinerRssMb: { peak: peak.joiner, hwm: hwmMb(joiner.child.pid) },
      sourceLoopMaxMs: peak.loopMs,
      ...probes,
    };
  } finally {
    await Promise.all([kill(joiner), kill(source)]);
  }
}

/** The report lines of a run. */
export function describeJoin(r: JoinResult): string[] {
  const mb = (bytes: number): string => fmt(bytes / 2 ** 20, 1);
  return [
    `Join: a new empty node gets all of a node holding ${fmt(r.keys)} keys hit once each (${fmt(r.slots)} slots)`,
    `  baseline, seeding them into the first node (POST /hits of ${fmt(BATCH)}): ${fmt(r.seedS, 1)} s, ${fmt(r.keys / r.seedS)} keys/s`,
    `  join: ${fmt(r.joinS, 1)} s from the new node's spawn (ready after ${fmt(r.readyS, 1)} s), ${fmt(r.keys / r.joinS)} keys/s, ${fmt(r.joinS / r.seedS, 2)}x the seeding time (target: well under a minute)`,
    `  sent: ${mb(r.bytesSent)} MB in ${fmt(r.framesSent)} delta frames (${fmt(r.bytesSent / r.framesSent / 1024)} KB each, ${fmt(r.bytesSent / r.slots, 1)} bytes a slot), ${fmt(r.repairs)} repair(s)`,
    `  peak RSS: source ${fmt(r.sourceRssMb.peak)} MB (${fmt(r.sourceRssMb.beforeJoin)} MB before the join, high-water ${fmt(r.sourceRssMb.hwm)} MB), new node ${fmt(r.joinerRssMb.peak)} MB (high-water ${fmt(r.joinerRssMb.hwm)} MB)`,
    `  the source during the transfer: GET /healthz worst ${fmt(r.health.worstMs)} ms, p99 ${fmt(r.health.p99Ms)} ms over ${fmt(r.health.n)} probes (${r.health.failed} failed); GET /count worst ${fmt(r.count.worstMs)} ms, p99 ${fmt(r.count.p99Ms)} ms (${r.count.failed} failed)`,
    `  its own longest event-loop delay meanwhile (monitorEventLoopDelay, blind to the prober's core): ${fmt(r.sourceLoopMaxMs)} ms`,
  ];
}
