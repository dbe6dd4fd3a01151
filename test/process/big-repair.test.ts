/**
 * Big repairs and slow links between real node processes (issue "Counts you
 * can trust", finding 4): a new node joining one that holds 200,000 keys
 * (1,000,000 slots) gets every slot while the link stays up and the source
 * keeps answering its clients; a 4 KB/s link under steady load on both ends
 * stays up, and closed time ranges agree with the acknowledged hits while the
 * load still runs. Deadlines only bound how long a failing test waits.
 */
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../scripts/lib/fault-proxy.ts';
import { LocalNode } from '../../scripts/lib/local-node.ts';
import { ProxiedCluster } from '../../scripts/partition/proxied-cluster.ts';
import { freePort, httpRequest, makeTempDir, removeTempDirs, sleep } from './node-process.ts';

const KEYS = 200_000;
const BATCH = 10_000;
/** "Does not stall", not "is fast": a 2-core machine runs both nodes and this test. */
const PROBE_TIMEOUT_MS = 2_000;

const nodes: LocalNode[] = [];
let cluster: ProxiedCluster | undefined;
const proxies: FaultProxy[] = [];
let logs: string[] = [];

/** `step`, or an error naming it after `ms`: a clean-up that hangs says which part did (once seen under heavy load). */
async function within<T>(what: string, ms: number, step: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`clean-up: ${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([step, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

afterEach(async () => {
  // kill -9 by PID: the joiner's shutdown checkpoint of a million slots would take seconds, and the data goes anyway.
  await within('kill -9 of the nodes', 15_000, Promise.all(nodes.splice(0).map((node) => node.kill())));
  await within('stopping the proxied cluster', 20_000, cluster?.stop() ?? Promise.resolve());
  cluster = undefined;
  await within('stopping the fault proxies', 10_000, Promise.all(proxies.splice(0).map((proxy) => proxy.stop())));
  await within('removing the data directories', 10_000, removeTempDirs());
  logs = [];
});

interface ClusterView {
  readonly node: { readonly origin: string; readonly seq: number; readonly keys: number; readonly vv: Record<string, [number, number]> };
  readonly peers: readonly { readonly id: string; readonly state: string; readonly replicationLagMs: number }[];
}

async function getJson<T>(url: string, timeoutMs = 5_000): Promise<T> {
  const res = await httpRequest('GET', url, { timeoutMs });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as T;
}

/** The sum of every series of metric `name` whose labels contain each of `labels` (e.g. 'direction="out"'). */
async function metric(url: string, name: string, ...labels: string[]): Promise<number> {
  const lines = (await httpRequest('GET', `${url}/metrics`, { timeoutMs: 10_000 })).body.split('\n');
  const series = lines.filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && labels.every((label) => line.includes(label)));
  return series.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function until(what: string, check: () => Promise<boolean>, deadlineMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting until ${what}\n${logs.slice(-40).join('\n')}`);
    await sleep(everyMs);
  }
}

/** Run `probe` every `everyMs` (never two at once) until stopped. */
function every(everyMs: number, probe: () => Promise<void>): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const next = Date.now() + everyMs;
      await probe();
      await sleep(Math.max(0, next - Date.now()));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** What the /cluster polls saw: the link in any state but up after it was first up; polls unanswered in time; lags. */
interface LinkLog { readonly flaps: string[]; readonly silent: string[]; readonly lags: number[] }
const linkLog = (): LinkLog => ({ flaps: [], silent: [], lags: [] });

/** Poll `node`'s /cluster every 200 ms: its view of `peer` from the first time it saw it up. */
function watchLink(node: { id: string; url: string }, peer: string, log: LinkLog): () => Promise<void> {
  let seenUp = false;
  return every(200, async () => {
    try {
      const view = await getJson<ClusterView>(`${node.url}/cluster`, PROBE_TIMEOUT_MS);
      const state = view.peers.find((p) => p.id === peer);
      if (state?.state === 'up') seenUp = true;
      else if (seenUp) log.flaps.push(`${new Date().toISOString()} ${node.id} sees ${peer} ${state?.state ?? 'gone'}`);
      if (state !== undefined) log.lags.push(state.replicationLagMs);
    } catch (error) {
      log.silent.push(`${new Date().toISOString()} ${node.id} /cluster: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
}

async function startNode(id: string, dataDir: string, peers: readonly string[], extraArgs: readonly string[] = [], logLevel = 'info'): Promise<LocalNode> {
  const node = new LocalNode({ id, port: await freePort(), dataDir, peers, extraArgs, logLevel, onLine: (line) => logs.push(`${id} ${line}`) });
  nodes.push(node);
  await node.start();
  return node;
}

async function postHits(url: string, items: readonly { key: string }[]): Promise<number> {
  const res = await fetch(`${url}/hits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(items) });
  const body = (await res.json()) as { accepted?: number; error?: string };
  if (!res.ok) throw new Error(`POST /hits answered ${res.status}: ${body.error}`);
  return body.accepted ?? 0;
}

describe.sequential('big repairs and slow links between node processes', () => {
  it('a new node gets all 1,000,000 slots of a 200,000-key node; the link never flaps and the source keeps answering', { timeout: 100_000 }, async () => {
    const root = await makeTempDir('hitmesh-big-repair-');
    // Its own checkpoint of a million slots (about 30 s here, with a stall of its own at the start) is not the transfer: put off.
    const source = await startNode('src', join(root, 'src'), [], ['--checkpoint-interval', '1h']);
    const seedStart = Date.now();
    for (let b = 0; b < KEYS / BATCH; b++) {
      expect(await postHits(source.url, Array.from({ length: BATCH }, (_, i) => ({ key: `k${b * BATCH + i}` })))).toBe(BATCH);
    }
    const seedEnd = Date.now();
    const held = await getJson<ClusterView>(`${source.url}/cluster`);
    expect(held.node.keys).toBe(KEYS);

    const probes = { answered: 0, failed: [] as string[], worstHealthMs: 0, worstCountMs: 0 };
    const probe = async (path: string, worst: 'worstHealthMs' | 'worstCountMs', ok: (body: string) => boolean): Promise<void> => {
      const t0 = performance.now();
      try {
        const res = await httpRequest('GET', `${source.url}${path}`, { timeoutMs: PROBE_TIMEOUT_MS });
        if (res.status !== 200 || !ok(res.body)) throw new Error(`${res.status} ${res.body.slice(0, 200)}`);
        probes.answered++;
      } catch (error) {
        probes.failed.push(`${new Date().toISOString()} ${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
      probes[worst] = Math.max(probes[worst], performance.now() - t0);
    };
    const link = linkLog();
    const stops = [
      every(100, () => probe('/healthz', 'worstHealthMs', () => true)),
      every(100, () => probe('/count/k0?window=all', 'worstCountMs', (body) => (JSON.parse(body) as { count: number }).count === 1)),
      watchLink({ id: 'src', url: source.url }, 'new', link),
    ];
    const joinStart = performance.now();
    // A wiped node: an empty directory, so a new incarnation that holds nothing.
    const joiner = await startNode('new', join(root, 'new'), [`127.0.0.1:${source.options.port}`]);
    stops.push(watchLink({ id: 'new', url: joiner.url }, 'src', link));
    let joinMs: number;
    try {
      await until(
        `the new node holds the source's origin up to seq ${held.node.seq}`,
        async () => ((await getJson<ClusterView>(`${joiner.url}/cluster`, PROBE_TIMEOUT_MS)).node.vv[held.node.origin]?.[0] ?? 0) >= held.node.seq,
        45_000,
      );
      joinMs = performance.now() - joinStart;
    } finally {
      await Promise.all(stops.map((stop) => stop()));
    }
    const joined = await getJson<ClusterView>(`${joiner.url}/cluster`);
    const sent = { bytes: await metric(source.url, 'hitmesh_gossip_bytes_total', 'peer="new"', 'direction="out"'), frames: await metric(source.url, 'hitmesh_gossip_frames_total', 'peer="new"', 'direction="out"', 'type="delta"') };
    const repairs = await metric(source.url, 'hitmesh_gossip_repairs_total');
    const connections = await metric(source.url, 'hitmesh_gossip_frames_total', 'direction="in"', 'type="hello"');
    console.log(`[big-repair] ${KEYS} keys seeded in ${seedEnd - seedStart} ms, join ${Math.round(joinMs)} ms, ${sent.bytes} bytes in ${sent.frames} delta frames, ${repairs} repairs, ${connections} connections; ${probes.answered} source probes answered, worst /healthz ${Math.round(probes.worstHealthMs)} ms, worst /count ${Math.round(probes.worstCountMs)} ms; flaps ${JSON.stringify(link.flaps)}, unanswered /cluster ${JSON.stringify(link.silent)}`);

    expect(probes.failed, 'the source answered every client probe during the transfer').toEqual([]);
    expect(probes.answered).toBeGreaterThan(20);
    expect(link.flaps, 'the link was up all along, seen from both ends').toEqual([]);
    expect(link.silent.filter((poll) => poll.includes(' src ')), 'the source answered every /cluster poll').toEqual([]);
    expect.soft(link.silent, 'the new node answered every /cluster poll while it applied the repair').toEqual([]);
    expect(connections, 'one connection for the whole transfer').toBe(1);
    expect(repairs, 'one repair: it was never started again').toBe(1);
    expect(joined.node.keys).toBe(KEYS);
    // Keys from all over the range, and every tier: whole seconds, minutes, hours and days around the seeding
    // (the planner reads those buckets for such ranges), and the lifetime.
    const sample = Array.from({ length: 3_000 }, (_, i) => `k${(i * 66_667) % KEYS}`);
    const around = (unit: number): string => `from=${Math.floor(seedStart / unit) * unit}&to=${(Math.floor(seedEnd / unit) + 1) * unit}`;
    for (const range of ['window=all', around(1_000), around(60_000), around(3_600_000), around(86_400_000)]) {
      for (let i = 0; i < sample.length; i += 1_000) {
        const keys = sample.slice(i, i + 1_000);
        const { counts } = await getJson<{ counts: Record<string, number> }>(`${joiner.url}/counts?keys=${keys.join(',')}&${range}`);
        expect(keys.filter((key) => counts[key] !== 1), `keys whose count in ${range} is not 1`).toEqual([]);
      }
    }
    expect(await metric(joiner.url, 'hitmesh_keys'), 'hitmesh_keys on the new node counts the keys it got by gossip').toBe(KEYS);
  });

  it('a 4 KB/s link under steady load on both ends (20 hits/s each over 50 keys) stays up; closed ranges agree with the acknowledged hits while the load runs', { timeout: 100_000 }, async () => {
    await slowLink(20, 20_000);
  });

  // 100 hits/s over 50 keys is more than a 4 KB/s link carries as one push per 20 ms, but coalesced per (key, second)
  // it is at most 50 rows a second: flow control holds pushes while about a second is in flight, so the lag stays a
  // few seconds (measured 3-4 s: the reports of what arrived queue behind the peer's own data) where a queue of
  // pushes grew without bound (0.37 s more every second). Ranges are judged once closed 6 s.
  it('a saturated 4 KB/s link (100 hits/s each over 50 keys): pushes coalesce, and closed ranges still agree while the load runs', { timeout: 100_000 }, async () => {
    await slowLink(100, 15_000, true, 6_000);
  });
});

/** Every close of a gossip connection in the nodes' debug logs, as `<node> <reason>`. */
function closes(): string[] {
  return logs.filter((line) => line.includes('"gossip connection closed"')).map((line) => `${line.split(' ', 1)[0]} ${(JSON.parse(line.slice(line.indexOf(' ') + 1)) as { reason?: string }).reason}`);
}

/**
 * Two nodes whose one link carries 4 KB/s each way. Through a ProxiedCluster both ends dial (a proxy each way);
 * with `oneDialer` only n2 dials, through one proxy, so no duplicate connection is ever opened.
 */
async function throttledPair(oneDialer: boolean): Promise<[LocalNode, LocalNode]> {
  const root = await makeTempDir('hitmesh-slow-link-');
  if (!oneDialer) {
    cluster = await ProxiedCluster.start({ ids: ['n1', 'n2'], dataRoot: root, logLevel: 'debug', onLine: (id, line) => logs.push(`${id} ${line}`) });
    cluster.slow(['n1'], ['n2'], { delayMs: 0, bytesPerSecond: 4_096 });
    return cluster.nodes as [LocalNode, LocalNode];
  }
  const n1 = await startNode('n1', join(root, 'n1'), [], ['--static'], 'debug');
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: n1.options.port } });
  proxies.push(proxy);
  const n2 = await startNode('n2', join(root, 'n2'), [proxy.address], ['--static'], 'debug');
  const bothUp = async (): Promise<boolean> => (await Promise.all([n1, n2].map(async (n) => (await getJson<ClusterView>(`${n.url}/cluster`)).peers.some((p) => p.state === 'up')))).every(Boolean);
  await until('n1 and n2 see each other up', bothUp, 15_000);
  proxy.throttle(4_096);
  return [n1, n2];
}

async function slowLink(rate: number, durationMs: number, oneDialer = false, closedAgoMs = 3_000): Promise<void> {
  const [n1, n2] = await throttledPair(oneDialer);
  const closesBefore = closes().length;
  const link = linkLog();
  const stops = [watchLink(n1, 'n2', link), watchLink(n2, 'n1', link)];
  const load = new SteadyLoad([n1, n2], rate, 50);
  const firstSecond = Math.ceil(Date.now() / 1000) * 1000;
  const wrong: string[] = [];
  let checked = 0;
  try {
    await sleep(3_000 + closedAgoMs);
    while (load.elapsedMs < durationMs) {
      // Whole seconds from the load's first, ended `closedAgoMs` before the oldest hit still unanswered: closed, and long enough ago.
      const to = Math.floor((load.horizon() - closedAgoMs) / 1000) * 1000;
      for (const from of [firstSecond, to - 1000]) {
        const answers = await Promise.all([n1, n2].map((n) => load.counts(n, `from=${from}&to=${to}`)));
        const { acked, unknown } = load.expected(from, to);
        for (const [i, counts] of answers.entries()) {
          const off = load.keys.filter((key) => (counts[key] ?? 0) < (acked[key] ?? 0) || (counts[key] ?? 0) > (acked[key] ?? 0) + (unknown[key] ?? 0));
          if (off.length > 0) wrong.push(`${(Date.now() - to) / 1000} s after [${new Date(from).toISOString()}, ${new Date(to).toISOString()}) n${i + 1}: ${off.slice(0, 4).map((k) => `${k} ${counts[k]} of ${acked[k] ?? 0}`).join(', ')}`);
        }
        checked++;
      }
      await sleep(2_000);
    }
  } finally {
    await load.stop();
    await Promise.all(stops.map((stop) => stop()));
  }
  const loadCloses = closes().slice(closesBefore);
  const { acked, unknown } = load.expected(0, Number.MAX_SAFE_INTEGER);
  const stoppedAt = Date.now();
  let lifetime: Record<string, number>[] = [];
  await until(
    'both nodes count every acknowledged hit',
    async () => {
      lifetime = await Promise.all([n1, n2].map((n) => load.counts(n, 'window=all')));
      return lifetime.every((counts) => load.keys.every((key) => (counts[key] ?? 0) >= (acked[key] ?? 0) && counts[key] === lifetime[0]?.[key]));
    },
    60_000,
  );
  const drainMs = Date.now() - stoppedAt;
  console.log(`[slow-link ${rate}/s] ${JSON.stringify(load.tally)}; ${checked} closed-range checks, ${wrong.length} wrong${wrong.length > 0 ? `, e.g. ${wrong.slice(-2).join('; ')}` : ''}; lifetime totals agreed ${drainMs} ms after the load; worst replicationLagMs ${Math.max(0, ...link.lags)}; ${loadCloses.length} connections closed during the load (${loadCloses.filter((close) => close.endsWith('duplicate connection')).length} duplicates)`);

  expect(load.tally.failed, 'every hit was answered 200').toBe(0);
  expect(load.tally.acked).toBeGreaterThan((rate * 2 * durationMs) / 1000 / 2);
  expect(link.flaps, 'the throttled link stayed up, seen from both ends').toEqual([]);
  expect(link.silent, 'both nodes answered every /cluster poll').toEqual([]);
  expect(loadCloses.filter((close) => !close.endsWith('duplicate connection')), 'the link was never dropped').toEqual([]);
  expect(checked).toBeGreaterThanOrEqual(6);
  expect.soft(wrong, 'closed ranges counted on both nodes equal the hits acknowledged in them').toEqual([]);
  // Every node's lifetime count is at least the acknowledged hits (waited for above) and at most those and the unanswered.
  expect(lifetime.flatMap((counts) => load.keys.filter((key) => (counts[key] ?? 0) > (acked[key] ?? 0) + (unknown[key] ?? 0))), 'keys counted more than hit').toEqual([]);
  // Both ends dial (through their proxies); the duplicate is closed once, not redialed all along over the slow link.
  expect.soft(loadCloses.length, 'connections opened and closed again during the load').toBeLessThanOrEqual(2);
}

/**
 * `rate` hits per second on each node, round-robin over `keyCount` keys, never
 * retried. Every answer's `at` is kept: a closed range's true count is the
 * acknowledged hits stamped in it; a hit with no answer may or may not count.
 */
class SteadyLoad {
  readonly keys: string[];
  readonly tally = { acked: 0, failed: 0, unknown: 0 };
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  /** Every hit sent: `at` once acknowledged, null with no answer (it may or may not count), undefined while in flight. */
  private readonly hits: { key: string; sentAt: number; at?: number | null }[] = [];
  private readonly inFlight = new Set<{ sentAt: number }>();
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  private fired = 0;

  constructor(private readonly targets: readonly LocalNode[], rate: number, keyCount: number) {
    this.keys = Array.from({ length: keyCount }, (_, i) => `slow-${i}`);
    this.timer = setInterval(() => this.fire(), 1000 / rate);
  }

  get elapsedMs(): number {
    return Date.now() - this.started;
  }

  /** Every hit stamped before this instant is in the ledger: no request sent earlier is still unanswered. */
  horizon(): number {
    return Math.min(Date.now(), ...[...this.inFlight].map((hit) => hit.sentAt));
  }

  expected(from: number, to: number): { acked: Record<string, number>; unknown: Record<string, number> } {
    const acked: Record<string, number> = {};
    const unknown: Record<string, number> = {};
    for (const { key, sentAt, at } of this.hits) {
      if (typeof at === 'number' && at >= from && at < to) acked[key] = (acked[key] ?? 0) + 1;
      else if (at === null && sentAt < to) unknown[key] = (unknown[key] ?? 0) + 1;
    }
    return { acked, unknown };
  }

  async counts(node: LocalNode, range: string): Promise<Record<string, number>> {
    return (await getJson<{ counts: Record<string, number> }>(`${node.url}/counts?keys=${this.keys.join(',')}&${range}`)).counts;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.inFlight.size > 0) await sleep(20);
    this.agent.destroy();
  }

  private fire(): void {
    // The same key on every node at once: each key's count has a part from every origin.
    const key = this.keys[this.fired++ % this.keys.length] ?? '';
    for (const node of this.targets) {
      const hit: { key: string; sentAt: number; at?: number | null } = { key, sentAt: Date.now() };
      this.hits.push(hit);
      this.inFlight.add(hit);
      httpRequest('POST', `${node.url}/hit/${key}`, { agent: this.agent, timeoutMs: 5_000 })
        .then((res) => {
          if (res.status !== 200) this.tally.failed++;
          else {
            this.tally.acked++;
            hit.at = (JSON.parse(res.body) as { at: number }).at;
          }
        })
        .catch(() => {
          this.tally.unknown++;
          hit.at = null;
        })
        .finally(() => this.inFlight.delete(hit));
    }
  }
}
