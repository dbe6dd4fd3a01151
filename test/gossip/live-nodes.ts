/**
 * Real nodes in this process over loopback WebSockets, for the gossip tests:
 * start and restart them on port 0 with their own data dirs, talk HTTP to
 * them, wait for conditions, and speak raw gossip to them. `useLiveNodes()`
 * registers the hooks that stop every node, proxy and socket after each test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, afterEach, expect } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { parseCli } from '../../node/cli.ts';
import type { Clock } from '../../node/clock.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';
import { FaultProxy } from '../../scripts/lib/fault-proxy.ts';

/** How long a condition may take before the test gives up (not a speed requirement). */
export const DEADLINE_MS = 10_000;
export const POLL_MS = 50;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Nodes, proxies and sockets, all stopped after each test even when it fails.

let root: string | undefined;
let dirsMade = 0;
const nodes: RunningNode[] = [];
export const proxies: FaultProxy[] = [];
const sockets: WebSocket[] = [];
const dataDirs = new Map<RunningNode, { id: string; dir: string; flags: readonly string[]; clock: Clock | undefined }>();

/** Stop every node, proxy and raw socket after each test (even when it fails), and remove the data dirs after the file. */
export function useLiveNodes(): void {
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    const stopping = [...nodes.splice(0).map((node) => node.stop()), ...proxies.splice(0).map((proxy) => proxy.stop())];
    const results = await Promise.allSettled(stopping);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new AggregateError(failed.map((r): unknown => r.reason), 'could not stop every node and proxy');
  });
  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });
}

/** Start a node the way `npm run node` would, on port 0 with a fresh data dir. */
export function start(id: string, ...flags: string[]): Promise<RunningNode> {
  return startWithClock(id, undefined, ...flags);
}

/** The same with a clock of the test's (a skewed one, say). */
export async function startWithClock(id: string, clock: Clock | undefined, ...flags: string[]): Promise<RunningNode> {
  root ??= await mkdtemp(join(tmpdir(), 'hitmesh-cluster-'));
  // A fresh dir per start across the whole file: tests reuse ids, and `nodes` is emptied after each test.
  return startIn(id, join(root, `${id}-${dirsMade++}`), flags, clock);
}

/** Stop a node and start it again on the same data dir and flags (a new port). */
export async function restart(node: RunningNode): Promise<RunningNode> {
  const was = dataDirs.get(node);
  if (was === undefined) throw new Error('not a node started here');
  await node.stop();
  nodes.splice(nodes.indexOf(node), 1);
  return startIn(was.id, was.dir, was.flags, was.clock);
}

async function startIn(id: string, dir: string, flags: readonly string[], clock: Clock | undefined): Promise<RunningNode> {
  const parsed = parseCli(['--id', id, '--host', '127.0.0.1', '--port', '0', '--data', dir, '--log-level', 'silent', ...flags], {});
  if (parsed.kind !== 'run') throw new Error('expected a run config');
  const node = await startNode(parsed.config, { shutdownGraceMs: 2_000, ...(clock === undefined ? {} : { clock }) });
  nodes.push(node);
  dataDirs.set(node, { id, dir, flags, clock });
  return node;
}

// ---------------------------------------------------------------------------
// HTTP

export interface Freshness {
  readonly peers: number;
  readonly synced: number;
  readonly maxLagMs: number;
}

export interface CountAnswer {
  readonly key: string;
  readonly count: number;
  readonly node: string;
  readonly freshness: Freshness;
}

export interface PeerInfo {
  readonly id: string;
  readonly origin: string | null;
  readonly address: string;
  readonly state: 'up' | 'suspect' | 'down';
  readonly synced: boolean;
}

export interface ClusterAnswer {
  readonly node: { readonly id: string; readonly origin: string; readonly address: string };
  readonly peers: readonly PeerInfo[];
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

export async function post<T>(url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** POST /hit/<key>?n=N, checked against SPEC §3. */
export async function hit(node: RunningNode, key: string, n?: number): Promise<void> {
  const answer = await post<{ key: string; n: number; node: string; at: number }>(`${node.url}/hit/${encodeURIComponent(key)}${n === undefined ? '' : `?n=${n}`}`);
  expect(answer).toMatchObject({ key, n: n ?? 1, node: node.replica.identity.id });
  expect(Number.isInteger(answer.at)).toBe(true);
}

/** POST /hits, checked against SPEC §3. */
export async function hits(node: RunningNode, items: readonly { key: string; n?: number }[]): Promise<void> {
  const answer = await post<{ accepted: number }>(`${node.url}/hits`, items);
  expect(answer).toEqual({ accepted: items.reduce((sum, item) => sum + (item.n ?? 1), 0) });
}

export const countOf = (node: RunningNode, key: string): Promise<CountAnswer> => getJson<CountAnswer>(`${node.url}/count/${encodeURIComponent(key)}?window=all`);
export const clusterOf = (node: RunningNode): Promise<ClusterAnswer> => getJson<ClusterAnswer>(`${node.url}/cluster`);

/** hitmesh_gossip_rejected_total by kind, from /metrics (absent series count 0). */
export async function rejected(node: RunningNode): Promise<{ handshake: number; frame: number }> {
  const res = await fetch(`${node.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const found = { handshake: 0, frame: 0 };
  for (const line of text.split('\n')) {
    const match = /^hitmesh_gossip_rejected_total\{([^}]*)\} (\S+)$/.exec(line);
    if (match === null) continue;
    const kind = /kind="([^"]*)"/.exec(match[1] ?? '')?.[1];
    if (kind === 'handshake' || kind === 'frame') found[kind] = Number(match[2]);
  }
  return found;
}

// ---------------------------------------------------------------------------
// Waiting

/**
 * Poll `probe` every POLL_MS until `done` holds of its value; throws with the
 * last value (or error) after DEADLINE_MS. `never`, if given, fails at once.
 */
export async function eventually<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, never?: (value: T) => string | undefined): Promise<T> {
  const until = Date.now() + DEADLINE_MS;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      last = value;
      const broken = never?.(value);
      if (broken !== undefined) throw new Error(`${what}: ${broken} (${JSON.stringify(value)})`);
      if (done(value)) return value;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(`${what}:`)) throw error;
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > until) throw new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(POLL_MS);
  }
}

/** Every node's lifetime count of every key, as node index → key → count. */
export async function allCounts(of: readonly RunningNode[], keys: readonly string[]): Promise<Record<string, number>[]> {
  return Promise.all(
    of.map(async (node) => {
      const answers = await Promise.all(keys.map((key) => countOf(node, key)));
      return Object.fromEntries(answers.map((a) => [a.key, a.count]));
    }),
  );
}

/** Wait until every node counts exactly `expected`; any count above it fails at once (a double count). */
export async function converge(of: readonly RunningNode[], expected: Record<string, number>): Promise<void> {
  const keys = Object.keys(expected);
  await eventually(
    `every node to count ${JSON.stringify(expected)}`,
    () => allCounts(of, keys),
    (counts) => counts.every((c) => keys.every((key) => c[key] === expected[key])),
    (counts) => {
      for (const [i, c] of counts.entries()) for (const key of keys) if ((c[key] ?? 0) > (expected[key] ?? 0)) return `node ${i} counts ${key} ${c[key]} > ${expected[key]}`;
      return undefined;
    },
  );
}

/**
 * n1, and n2 and n3 each reaching it through a fault proxy that delays every
 * chunk by `delayMs` (all --static: no way around the proxies); n1 sees both up.
 */
export async function starThroughProxies(delayMs = 0): Promise<[RunningNode, RunningNode, RunningNode]> {
  const n1 = await start('n1', '--static');
  const port = Number(n1.address.split(':').pop());
  const viaProxy = async (): Promise<string> => {
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port } });
    proxies.push(proxy);
    if (delayMs > 0) proxy.delay(delayMs);
    return proxy.address;
  };
  const n2 = await start('n2', '--static', '--peers', await viaProxy());
  const n3 = await start('n3', '--static', '--peers', await viaProxy());
  await peersUp(n1, [n2, n3]);
  return [n1, n2, n3];
}

/** Wait until `node` sees exactly the peers `ids` (by id), each 'up' with a known origin. */
export async function peersUp(node: RunningNode, others: readonly RunningNode[]): Promise<ClusterAnswer> {
  const want = others.map((o) => ({ id: o.replica.identity.id, origin: o.replica.identity.origin })).sort((a, b) => a.id.localeCompare(b.id));
  return eventually(
    `${node.replica.identity.id} to see ${want.map((w) => w.id).join(', ')} up`,
    () => clusterOf(node),
    (c) =>
      JSON.stringify(c.peers.filter((p) => p.state === 'up').map((p) => ({ id: p.id, origin: p.origin })).sort((a, b) => a.id.localeCompare(b.id))) === JSON.stringify(want) &&
      c.peers.length === want.length,
  );
}

// ---------------------------------------------------------------------------
// Raw gossip sockets

// The node's own framing (gossip/ws-transport.ts): plain msgpack maps.
export const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface Closed {
  readonly code: number;
  readonly reason: string;
  /** Frames the node sent before closing, decoded. */
  readonly received: readonly Record<string, unknown>[];
}

/**
 * Open ws://<address>/gossip, wait for the node's hello, run `script` (which
 * sends whatever it likes), and resolve when the node closes the socket.
 * `script` may wait for a frame of a type with `next`.
 */
export async function rawGossip(address: string, script: (ws: WebSocket, next: (type: string) => Promise<Record<string, unknown>>) => Promise<void>): Promise<Closed> {
  const ws = new WebSocket(`ws://${address}/gossip`);
  sockets.push(ws);
  const received: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (frame: Record<string, unknown>) => void }[] = [];
  ws.on('message', (data: RawData) => {
    const frame = packr.unpack(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer)) as Record<string, unknown>;
    received.push(frame);
    for (const w of waiters.splice(0)) {
      if (frame.type === w.type) w.resolve(frame);
      else waiters.push(w);
    }
  });
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  const next = (type: string): Promise<Record<string, unknown>> => {
    const seen = received.find((f) => f.type === type);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ type, resolve }));
  };
  const timeout = <T>(what: string, p: Promise<T>): Promise<T> =>
    Promise.race([p, sleep(DEADLINE_MS).then(() => Promise.reject(new Error(`raw gossip socket: timed out waiting for ${what}; got ${JSON.stringify(received.map((f) => f.type))}`)))]);
  await timeout('the open', new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed before it opened')));
  }));
  await timeout('the node\'s hello', next('hello'));
  await script(ws, (type) => timeout(`a ${type} frame`, next(type)));
  const { code, reason } = await timeout('the node to close the socket', closed);
  return { code, reason, received };
}

/** Deterministic "random" bytes (xorshift32), so a failure can be replayed. */
export function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

