/**
 * Helpers for the durability and clock-skew process tests: nodes run by
 * scripts/lib/local-node.ts (`node --import tsx node/main.ts`, the PID is the
 * node, so kill -9 reaches exactly it; optionally under libfaketime), every
 * node seeded with all the others, every hit's outcome in a ledger.
 */
import http from 'node:http';
import { join } from 'node:path';
import { LocalNode, type FakeClock } from '../../scripts/lib/local-node.ts';
import { freePort, getJson, httpRequest, sleep } from './node-process.ts';

export { sleep };

export interface NodeSpec {
  readonly id: string;
  readonly extraArgs?: readonly string[];
  readonly fakeClock?: FakeClock;
}

/** Log lines kept per node, for failure messages and to find a log event. */
const LOG_LINES_KEPT = 400;
const logs = new Map<LocalNode, string[]>();
const started = new Set<LocalNode>();

/** The last lines the node wrote (stdout and stderr). */
export function logOf(node: LocalNode): string {
  return (logs.get(node) ?? []).join('\n');
}

/** Nodes on free ports with data under `root`, each seeded with every other one; started together. */
export async function startNodes(root: string, specs: readonly NodeSpec[]): Promise<LocalNode[]> {
  const ports = await Promise.all(specs.map(() => freePort()));
  const nodes = specs.map((spec, i) => {
    const lines: string[] = [];
    const node = new LocalNode({
      id: spec.id,
      port: ports[i] ?? 0,
      dataDir: join(root, spec.id),
      peers: ports.filter((_, j) => j !== i).map((port) => `127.0.0.1:${port}`),
      logLevel: 'info',
      extraArgs: spec.extraArgs,
      fakeClock: spec.fakeClock,
      readyTimeoutMs: 30_000,
      onLine: (line) => {
        lines.push(line);
        if (lines.length > LOG_LINES_KEPT) lines.shift();
      },
    });
    logs.set(node, lines);
    started.add(node);
    return node;
  });
  await Promise.all(nodes.map((node) => node.start()));
  return nodes;
}

/** kill -9 every node started here that still runs (afterAll), each by its PID. */
export async function killStartedNodes(): Promise<void> {
  await Promise.all([...started].map((node) => node.kill()));
  started.clear();
}

export interface ClusterView {
  readonly node: { readonly id: string; readonly incarnation: string; readonly origin: string; readonly seq: number; readonly vv: Record<string, readonly number[]> };
  readonly peers: readonly {
    readonly id: string;
    readonly origin: string | null;
    readonly state: string;
    readonly vv: Record<string, readonly number[]>;
    readonly clockOffsetMs: number | null;
    readonly rttMs: number | null;
  }[];
}

export const clusterOf = async (node: LocalNode): Promise<ClusterView> => (await getJson(`${node.url}/cluster`, { timeoutMs: 5_000 })) as ClusterView;

/** Lifetime counts of `keys` (GET /counts?window=all). */
export async function countsOf(node: LocalNode, keys: readonly string[]): Promise<Record<string, number>> {
  const answer = (await getJson(`${node.url}/counts?keys=${keys.join(',')}&window=all`, { timeoutMs: 5_000 })) as { counts?: Record<string, number> };
  if (typeof answer.counts !== 'object') throw new Error(`unexpected /counts answer: ${JSON.stringify(answer)}`);
  return answer.counts;
}

export async function readyz(node: LocalNode): Promise<{ status: number; body: string }> {
  return httpRequest('GET', `${node.url}/readyz`, { timeoutMs: 5_000 });
}

/** One sample of a metric from /metrics whose labels include `labels`; undefined if there is none. */
export async function metric(node: LocalNode, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const res = await httpRequest('GET', `${node.url}/metrics`, { timeoutMs: 5_000 });
  for (const line of res.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const text = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => text.includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return undefined;
}

/** Poll until `done(value)`; throws with the last value after the deadline. */
export async function eventually<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, deadlineMs = 20_000, pollMs = 50): Promise<T> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      last = value;
      if (done(value)) return value;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(pollMs);
  }
}

/** What became of the hits sent to one key. `rejected` got a complete non-200 answer (not counted); `unknown` got none. */
export interface Tally {
  acked: number;
  rejected: number;
  unknown: number;
}

export type HitOutcome = { readonly kind: 'acked'; readonly at: number } | { readonly kind: 'rejected'; readonly status: number; readonly body: string } | { readonly kind: 'unknown'; readonly code: string };

/** Every hit sent by a test, per key. */
export class Ledger {
  readonly perKey = new Map<string, Tally>();

  tally(key: string): Tally {
    let t = this.perKey.get(key);
    if (t === undefined) this.perKey.set(key, (t = { acked: 0, rejected: 0, unknown: 0 }));
    return t;
  }

  acked(keys: readonly string[]): Record<string, number> {
    return Object.fromEntries(keys.map((key) => [key, this.tally(key).acked]));
  }

  /** POST /hit/<key>?n=1 once, never retried; the outcome goes in the ledger. */
  async hit(node: LocalNode, key: string, agent?: http.Agent): Promise<HitOutcome> {
    const t = this.tally(key);
    try {
      const res = await httpRequest('POST', `${node.url}/hit/${encodeURIComponent(key)}?n=1`, { agent, timeoutMs: 15_000 });
      if (res.status !== 200) {
        t.rejected++;
        return { kind: 'rejected', status: res.status, body: res.body };
      }
      t.acked++;
      return { kind: 'acked', at: (JSON.parse(res.body) as { at: number }).at };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      // Refused: the request never reached a node, so it cannot have counted.
      if (code === 'ECONNREFUSED') {
        t.rejected++;
        return { kind: 'rejected', status: 0, body: code };
      }
      t.unknown++;
      return { kind: 'unknown', code };
    }
  }

  /** `hits` hits round-robin over `keys`, `concurrency` at a time; `onAck` after each 200 with the number so far. */
  async load(node: LocalNode, keys: readonly string[], hits: number, concurrency = 8, onAck?: (acked: number) => void): Promise<{ acked: number; rejected: number; unknown: number; statuses: Record<string, number> }> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const result = { acked: 0, rejected: 0, unknown: 0, statuses: {} as Record<string, number> };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < hits) {
        const key = keys[next++ % keys.length] ?? '';
        const outcome = await this.hit(node, key, agent);
        result[outcome.kind]++;
        const label = outcome.kind === 'acked' ? '200' : outcome.kind === 'rejected' ? (outcome.status === 0 ? outcome.body : String(outcome.status)) : outcome.code;
        result.statuses[label] = (result.statuses[label] ?? 0) + 1;
        if (outcome.kind === 'acked') onAck?.(result.acked);
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, () => worker()));
    } finally {
      agent.destroy();
    }
    return result;
  }
}

/**
 * Wait until every node answers the same lifetime count for every key, at
 * least the acked hits; returns the counts, which the caller checks against
 * acked + unknown (and, with no unknown, exactly acked).
 */
export async function converged(nodes: readonly LocalNode[], ledger: Ledger, keys: readonly string[], deadlineMs = 20_000): Promise<Record<string, number>> {
  const answers = await eventually(
    `every node to count at least ${JSON.stringify(ledger.acked(keys))} and agree`,
    () => Promise.all(nodes.map((n) => countsOf(n, keys))),
    (all) => all.every((counts) => keys.every((key) => counts[key] === all[0]?.[key] && (counts[key] ?? 0) >= ledger.tally(key).acked)),
    deadlineMs,
  );
  return answers[0] ?? {};
}
