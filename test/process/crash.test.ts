/**
 * Process tests: real `npm run node` processes, killed with SIGKILL or
 * stopped with SIGTERM, restarted on the same data directory.
 *
 * SPEC §3/§4: a 200 on a hit means the hit is in LevelDB and survives kill -9;
 * no acknowledged hit is lost and none is counted twice. A hit whose request
 * was in flight at the kill may or may not have been written ("unknown"), so
 * per key the count after the restart must lie in [acked, acked + unknown].
 * A node restarted on its data keeps its identity; one started on an empty
 * directory is a new replica even under an old --id (SPEC §2).
 */
import http from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  health,
  httpRequest,
  killAllNodes,
  lifetimeCount,
  liveNodeCount,
  makeTempDir,
  removeTempDirs,
  spawnNode,
  type NodeProcess,
} from './node-process.ts';

const KEYS = Array.from({ length: 10 }, (_, i) => `page-${i}`);

type Outcome = 'acked' | 'rejected' | 'refused' | 'unknown';

interface Tally {
  acked: number;
  /** A complete non-200 answer: the node said the hit was not counted. */
  rejected: number;
  /** ECONNREFUSED: the request never reached the node. */
  refused: number;
  /** No complete answer (reset, hang-up, timeout): may or may not have been written. */
  unknown: number;
}

interface LoadResult {
  readonly perKey: Map<string, Tally>;
  readonly total: Tally;
  readonly errorCodes: Record<string, number>;
  readonly statuses: Record<string, number>;
}

interface LoadOptions {
  readonly url: string;
  readonly keys: readonly string[];
  readonly hits: number;
  readonly concurrency: number;
  /** Called after every acknowledgement with the number acknowledged and the number of requests started so far. */
  readonly onAck?: (acked: number, started: number) => void;
}

const emptyTally = (): Tally => ({ acked: 0, rejected: 0, refused: 0, unknown: 0 });

/**
 * POST /hit/<key>?n=1, `hits` times, round-robin over `keys`, with up to
 * `concurrency` requests in flight over a keep-alive agent; every hit's
 * outcome is recorded, none is retried.
 */
async function sendHits(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const perKey = new Map(options.keys.map((key) => [key, emptyTally()]));
  const total = emptyTally();
  const errorCodes: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let next = 0;
  const record = (key: string, outcome: Outcome): void => {
    const tally = perKey.get(key);
    if (tally === undefined) throw new Error(`unknown key ${key}`);
    tally[outcome]++;
    total[outcome]++;
  };
  const worker = async (): Promise<void> => {
    while (next < options.hits) {
      const i = next++;
      const key = options.keys[i % options.keys.length] ?? '';
      try {
        const res = await httpRequest('POST', `${options.url}/hit/${encodeURIComponent(key)}?n=1`, { agent, timeoutMs: 30_000 });
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status === 200) {
          record(key, 'acked');
          options.onAck?.(total.acked, next);
        } else {
          record(key, 'rejected');
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : 'unknown');
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        record(key, code === 'ECONNREFUSED' ? 'refused' : 'unknown');
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  } finally {
    agent.destroy();
  }
  return { perKey, total, errorCodes, statuses };
}

async function countsOf(node: NodeProcess, keys: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, await lifetimeCount(node, key));
  return counts;
}

const sum = (values: Iterable<number>): number => [...values].reduce((a, b) => a + b, 0);

/** Per key: acked <= count <= acked + unknown (refused and rejected hits never count). */
function expectWithinBounds(load: LoadResult, counts: Map<string, number>): void {
  for (const [key, tally] of load.perKey) {
    const count = counts.get(key);
    expect(count, `count of ${key} (${JSON.stringify(tally)})`).toBeDefined();
    expect(count, `${key}: an acknowledged hit was lost (${JSON.stringify(tally)})`).toBeGreaterThanOrEqual(tally.acked);
    expect(count, `${key}: counted more than acked + unknown (${JSON.stringify(tally)})`).toBeLessThanOrEqual(tally.acked + tally.unknown);
  }
  if (load.total.unknown === 0) expect(sum(counts.values())).toBe(load.total.acked);
}

function report(label: string, load: LoadResult, counts: Map<string, number>, extra: Record<string, unknown> = {}): void {
  const perKey = Object.fromEntries([...load.perKey].map(([key, t]) => [key, `${t.acked}/${t.unknown}/${counts.get(key) ?? '?'}`]));
  console.log(
    `[${label}] ${JSON.stringify({ ...load.total, counted: sum(counts.values()), ...extra, errorCodes: load.errorCodes, statuses: load.statuses })}\n` +
      `[${label}] per key acked/unknown/count: ${JSON.stringify(perKey)}`,
  );
}

afterEach(async () => {
  await killAllNodes();
  expect(liveNodeCount()).toBe(0);
});

afterAll(async () => {
  try {
    await killAllNodes();
  } finally {
    await removeTempDirs();
  }
});

/** What the crash test leaves for the wipe test: a data dir with counts and its identity. */
let crashed: { dataDir: string; incarnation: string } | undefined;

describe.sequential('one node process: crash, restart, wipe, graceful stop', () => {
  it('kill -9 mid-load loses no acknowledged hit and keeps the identity', { timeout: 180_000 }, async () => {
    const dataDir = join(await makeTempDir(), 'n1');
    const node = await spawnNode({ id: 'n1', dataDir });
    const before = await health(node);
    expect(before).toMatchObject({ status: 'ok', node: 'n1' });

    const HITS = 10_000;
    let killedAt: { acked: number; started: number } | undefined;
    const loadStart = Date.now();
    const load = await sendHits({
      url: node.url,
      keys: KEYS,
      hits: HITS,
      concurrency: 64,
      onAck: (acked, started) => {
        if (killedAt === undefined && acked >= HITS / 2) {
          node.killNow();
          killedAt = { acked, started };
        }
      },
    });
    const loadMs = Date.now() - loadStart;

    // The whole group (npm, sh, tsx, node, esbuild) is gone.
    const status = await node.waitGone();
    expect(status.signal).toBe('SIGKILL');
    expect(killedAt, 'the kill happened').toBeDefined();
    // Requests were in flight when the kill was sent (none had failed yet, so started - acked of them).
    expect(killedAt?.started ?? 0).toBeGreaterThan(killedAt?.acked ?? 0);

    // Mid-way: hits were acknowledged before the kill, and some failed after it.
    expect(load.total.acked).toBeGreaterThanOrEqual(HITS / 2);
    expect(load.total.refused + load.total.unknown).toBeGreaterThan(0);
    expect(load.total.acked + load.total.rejected + load.total.refused + load.total.unknown).toBe(HITS);
    // SIGKILL leaves no time to answer anything but 200.
    expect(load.total.rejected, JSON.stringify(load.statuses)).toBe(0);

    const restarted = await spawnNode({ id: 'n1', dataDir });
    const after = await health(restarted);
    expect(after).toEqual(before);

    const counts = await countsOf(restarted, KEYS);
    report('kill -9', load, counts, { killedAt, ackedAfterKill: load.total.acked - (killedAt?.acked ?? 0), loadMs });
    expectWithinBounds(load, counts);
    crashed = { dataDir, incarnation: before.incarnation };

    await restarted.kill();
  });

  it('a node started on a wiped data dir is a new replica with no counts, even with the old --id', { timeout: 120_000 }, async () => {
    let dataDir: string;
    let incarnation: string;
    if (crashed !== undefined) {
      ({ dataDir, incarnation } = crashed);
    } else {
      // The crash test did not get far enough; make a node with counts here.
      dataDir = join(await makeTempDir(), 'n1');
      const node = await spawnNode({ id: 'n1', dataDir });
      incarnation = (await health(node)).incarnation;
      const load = await sendHits({ url: node.url, keys: KEYS, hits: 100, concurrency: 8 });
      expect(load.total.acked).toBe(100);
      await node.kill();
    }

    // Same data: same identity, counts still there.
    const again = await spawnNode({ id: 'n1', dataDir });
    expect((await health(again)).incarnation).toBe(incarnation);
    expect(sum((await countsOf(again, KEYS)).values())).toBeGreaterThan(0);
    const status = await again.kill();
    expect(status.signal).toBe('SIGKILL');

    await rm(dataDir, { recursive: true, force: true });

    const fresh = await spawnNode({ id: 'n1', dataDir });
    const h = await health(fresh);
    expect(h.node).toBe('n1');
    expect(h.incarnation).not.toBe(incarnation);
    const counts = await countsOf(fresh, KEYS);
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(KEYS.map((key) => [key, 0])));
    await fresh.kill();
  });

  it('SIGTERM to the node process: exit code 0 and every acknowledged hit kept', { timeout: 120_000 }, async () => {
    const dataDir = join(await makeTempDir(), 'n2');
    const node = await spawnNode({ id: 'n2', dataDir });
    const before = await health(node);

    const load = await sendHits({ url: node.url, keys: KEYS, hits: 2_000, concurrency: 32 });
    expect(load.total, JSON.stringify(load.errorCodes)).toEqual({ acked: 2_000, rejected: 0, refused: 0, unknown: 0 });

    // SIGTERM to the node process itself: its exit code travels up through tsx and sh to npm.
    const nodePid = await node.nodePid();
    process.kill(nodePid, 'SIGTERM');
    const status = await node.waitGone(30_000);
    expect(status, node.diagnostics()).toEqual({ code: 0, signal: null });

    const restarted = await spawnNode({ id: 'n2', dataDir });
    expect(await health(restarted)).toEqual(before);
    const counts = await countsOf(restarted, KEYS);
    report('SIGTERM node, idle', load, counts);
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries([...load.perKey].map(([key, t]) => [key, t.acked])));
    await restarted.kill();
  });

  it('SIGTERM to the whole group mid-load (as a supervisor does): clean shutdown, no acknowledged hit lost', { timeout: 180_000 }, async () => {
    const dataDir = join(await makeTempDir(), 'n3');
    // info level: the test looks for the "node stopped" line of a completed graceful stop.
    const node = await spawnNode({ id: 'n3', dataDir, logLevel: 'info' });
    const before = await health(node);

    let signalled = false;
    const load = await sendHits({
      url: node.url,
      keys: KEYS,
      hits: 6_000,
      concurrency: 64,
      onAck: (acked) => {
        if (!signalled && acked >= 2_000) {
          signalled = true;
          node.signalGroup('SIGTERM');
        }
      },
    });
    expect(signalled).toBe(true);
    await node.waitGone(30_000);
    expect(load.total.acked).toBeGreaterThanOrEqual(2_000);
    expect(node.stdout, `graceful stop did not complete\n${node.diagnostics()}`).toContain('"msg":"node stopped"');

    const restarted = await spawnNode({ id: 'n3', dataDir });
    expect(await health(restarted)).toEqual(before);
    const counts = await countsOf(restarted, KEYS);
    report('SIGTERM group, mid-load', load, counts);
    expectWithinBounds(load, counts);
    await restarted.kill();
  });
});
