/**
 * Cluster benchmarks: replication lag under load, convergence after a healed
 * partition, gossip bytes per hit, and hit throughput with peers attached.
 * Every figure comes with its baseline from the same run.
 */
import { join } from 'node:path';
import { ProxiedCluster } from '../partition/proxied-cluster.ts';
import { runLoad, type LoadResult } from './load.ts';
import { freePort, startPinned, type Server } from './processes.ts';

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly server: Server;
}

/** Start `n` nodes on `cpu`; `peersOf(i, ports)` gives each node's --peers. */
export async function startCluster(
  n: number,
  dataRoot: string,
  cpuOf: (i: number) => number,
  peersOf: (i: number, ports: readonly number[]) => readonly string[],
  extra: readonly string[] = [],
): Promise<ClusterNode[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  return Promise.all(
    ports.map(async (port, i) => {
      const id = `c${i + 1}`;
      const peers = peersOf(i, ports);
      const args = ['--id', id, '--port', String(port), '--data', join(dataRoot, id), '--log-level', 'warn', ...(peers.length > 0 ? ['--peers', peers.join(',')] : []), ...extra];
      return { id, port, server: await startPinned(cpuOf(i), 'node/main.ts', args, port) };
    }),
  );
}

export async function stopCluster(nodes: readonly ClusterNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.server.stop()));
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  return res.json();
}

export async function count(node: ClusterNode, key: string): Promise<number> {
  const body = (await getJson(`${node.server.url}/count/${encodeURIComponent(key)}?window=all`)) as { count: number };
  return body.count;
}

/** The sum of the lifetime counts of `keys` on one node, in one request. */
async function totalAt(url: string, keys: readonly string[]): Promise<number> {
  const body = (await getJson(`${url}/counts?keys=${keys.map(encodeURIComponent).join(',')}&window=all`)) as { counts: Record<string, number> };
  return Object.values(body.counts).reduce((a, b) => a + b, 0);
}

async function hitUrl(url: string, key: string, n = 1): Promise<boolean> {
  const res = await fetch(`${url}/hit/${encodeURIComponent(key)}?n=${n}`, { method: 'POST' });
  await res.arrayBuffer();
  return res.ok;
}

/** Wait until every node has `peers` peers up. */
export async function waitForMesh(nodes: readonly ClusterNode[], peers: number, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const views = await Promise.all(nodes.map((n) => getJson(`${n.server.url}/cluster`) as Promise<{ peers: { state: string }[] }>));
    if (views.every((v) => v.peers.filter((p) => p.state === 'up').length >= peers)) return;
    if (Date.now() > deadline) throw new Error('the cluster did not connect in time');
    await sleep(100);
  }
}

export async function gossipBytesOut(node: ClusterNode): Promise<number> {
  const text = await (await fetch(`${node.server.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('hitmesh_gossip_bytes_total{') && line.includes('direction="out"')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Replication lag: while a steady load runs on node 1, a probe key is hit on
 * node 1 every 50 ms and the other nodes are polled until they count it. The
 * baseline is the same probe read back from node 1 itself (the local path).
 */
export async function replicationLag(nodes: readonly ClusterNode[], loadCpu: number, seconds: number): Promise<{ p50: number; p99: number; localP50: number; localP99: number; probes: number }> {
  const [first, ...others] = nodes;
  if (first === undefined) throw new Error('no nodes');
  const loading = runLoad({ url: first.server.url, method: 'POST', prefix: '/hit/load', keys: 1_000, suffix: '', durationS: seconds, connections: 16 }, loadCpu);
  const lags: number[] = [];
  const local: number[] = [];
  const end = Date.now() + (seconds - 1) * 1000;
  let i = 0;
  while (Date.now() < end) {
    const key = `probe-${i++}`;
    const t0 = performance.now();
    await hitUrl(first.server.url, key);
    local.push(performance.now() - t0);
    await Promise.all(
      others.map(async (node) => {
        while ((await count(node, key)) < 1) await sleep(2);
        lags.push(performance.now() - t0);
      }),
    );
    await sleep(50);
  }
  await loading;
  lags.sort((a, b) => a - b);
  local.sort((a, b) => a - b);
  return { p50: percentile(lags, 50), p99: percentile(lags, 99), localP50: percentile(local, 50), localP99: percentile(local, 99), probes: i };
}

/**
 * Partition of a 5-node cluster whose every link runs through a fault proxy
 * (nodes --static): cut {1,2,3} from {4,5}, keep hitting both sides for
 * `partitionS`, heal, and time until every node counts every acknowledged hit.
 */
export async function partitionHeal(dataRoot: string, cpuOf: (i: number) => number, partitionS: number): Promise<{ convergeMs: number; acked: number }> {
  const ids = ['p1', 'p2', 'p3', 'p4', 'p5'];
  const cluster = await ProxiedCluster.start({ ids, dataRoot, cpuOf });
  try {
    cluster.cut(ids.slice(0, 3), ids.slice(3), 'cut');
    const urls = cluster.nodes.map((node) => node.url);
    let acked = 0;
    const end = Date.now() + partitionS * 1000;
    let k = 0;
    while (Date.now() < end) {
      const results = await Promise.all(urls.map((url) => hitUrl(url, `split-${k % 50}`)));
      acked += results.filter(Boolean).length;
      k++;
      await sleep(20);
    }
    const healedAt = performance.now();
    cluster.healAll();
    const keys = Array.from({ length: Math.min(k, 50) }, (_, i) => `split-${i}`);
    for (;;) {
      const totals = await Promise.all(urls.map((url) => totalAt(url, keys)));
      if (totals.every((t) => t === acked)) return { convergeMs: performance.now() - healedAt, acked };
      if (performance.now() - healedAt > 30_000) throw new Error(`no convergence 30 s after heal: ${totals.join(', ')} of ${acked}`);
      await sleep(10);
    }
  } finally {
    await cluster.stop();
  }
}

/** Gossip bytes per hit on a 3-node cluster, all hits on node 1: one hot key, then every hit a new key. */
export async function bytesPerHit(nodes: readonly ClusterNode[], loadCpu: number, seconds: number): Promise<{ hot: number; distinct: number; hotHits: number; distinctHits: number }> {
  const first = nodes[0];
  if (first === undefined) throw new Error('no nodes');
  const measure = async (keys: number): Promise<{ perHit: number; hits: number }> => {
    const before = (await Promise.all(nodes.map(gossipBytesOut))).reduce((a, b) => a + b, 0);
    const result: LoadResult = await runLoad({ url: first.server.url, method: 'POST', prefix: keys === 1 ? '/hit/hot' : '/hit/d', keys: keys === 1 ? 0 : keys, suffix: '', durationS: seconds, connections: 16 }, loadCpu);
    await sleep(1_500); // let replication finish
    const after = (await Promise.all(nodes.map(gossipBytesOut))).reduce((a, b) => a + b, 0);
    const hits = result.rps * seconds;
    return { perHit: (after - before) / hits, hits };
  };
  const hot = await measure(1);
  // Random keys from a space far larger than the hits sent: nearly every hit is a key of its own.
  const distinct = await measure(1_000_000_000);
  return { hot: hot.perHit, distinct: distinct.perHit, hotHits: hot.hits, distinctHits: distinct.hits };
}
