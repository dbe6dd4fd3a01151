/**
 * Unclean stops with real node processes (SPEC §4): a node restarted on a
 * data directory that is behind what its peers hold of its own origin (here:
 * a restored backup, which is what a power loss without --fsync leaves too)
 * starts a new incarnation, so it never reuses a sequence number its peers
 * hold and its new hits are never hidden behind their higher counts; a
 * kill -9 loses nothing, so it keeps its identity; with --fsync a node
 * answers hits and keeps them across kill -9.
 */
import { cp, rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { LocalNode } from '../../scripts/lib/local-node.ts';
import { clusterOf, converged, countsOf, eventually, killStartedNodes, Ledger, logOf, metric, sleep, startNodes, type HitOutcome } from './durability-cluster.ts';
import { makeTempDir, removeTempDirs } from './node-process.ts';

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];

afterAll(async () => {
  try {
    await killStartedNodes();
  } finally {
    await removeTempDirs();
  }
});

async function threeNodes(name: string): Promise<[LocalNode, LocalNode, LocalNode]> {
  const root = await makeTempDir(`hitmesh-durability-${name}-`);
  const [n1, n2, n3] = await startNodes(root, [{ id: 'n1' }, { id: 'n2' }, { id: 'n3' }]);
  if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('three nodes');
  await meshUp([n1, n2, n3]);
  return [n1, n2, n3];
}

/** Every node sees the two others up, with their current origins. */
async function meshUp(nodes: readonly LocalNode[]): Promise<void> {
  const origins = new Map(await Promise.all(nodes.map(async (n) => [n.id, (await clusterOf(n)).node.origin] as const)));
  await eventually(
    'a full mesh with current origins',
    () => Promise.all(nodes.map(clusterOf)),
    (all) => all.every((c) => c.peers.length === nodes.length - 1 && c.peers.every((p) => p.state === 'up' && p.origin === origins.get(p.id))),
  );
}

/** Until both peers say (in /cluster) they hold `node`'s origin up to its current seq. */
async function peersHoldAllOf(node: LocalNode, peers: readonly LocalNode[]): Promise<{ origin: string; seq: number }> {
  const self = (await clusterOf(node)).node;
  await eventually(
    `${peers.map((p) => p.id).join(', ')} to hold ${self.origin} up to seq ${self.seq}`,
    () => Promise.all(peers.map(async (p) => (await clusterOf(p)).node.vv[self.origin]?.[0])),
    (held) => held.every((seq) => seq === self.seq),
  );
  return { origin: self.origin, seq: self.seq };
}

/** `perKey` hits on each of `keys`, all of which must be acknowledged. */
async function allAcked(ledger: Ledger, node: LocalNode, keys: readonly string[], perKey: number): Promise<void> {
  const result = await ledger.load(node, keys, perKey * keys.length, 8);
  expect(result, `${node.id}: ${JSON.stringify(result.statuses)}\n${logOf(node)}`).toMatchObject({ acked: perKey * keys.length, rejected: 0, unknown: 0 });
}

/** acked <= count <= acked + unknown for every key. */
function expectWithinBounds(ledger: Ledger, counts: Record<string, number>, keys: readonly string[]): void {
  for (const key of keys) {
    const t = ledger.tally(key);
    expect(counts[key], `${key}: an acknowledged hit was lost (${JSON.stringify(t)})`).toBeGreaterThanOrEqual(t.acked);
    expect(counts[key], `${key}: counted more than acked + unknown (${JSON.stringify(t)})`).toBeLessThanOrEqual(t.acked + t.unknown);
  }
}

describe.sequential('unclean stops', () => {
  it('a restored backup comes back as a new incarnation; every hit acked before the backup, after it and after the restore counts exactly once on every node', { timeout: 80_000 }, async () => {
    const nodes = await threeNodes('restore');
    const [n1, n2, n3] = nodes;
    const ledger = new Ledger();
    const keys = [...KEYS, 'only-a', 'only-b', 'only-c', 'early'];

    // A: before the backup.
    await allAcked(ledger, n1, KEYS, 40);
    await allAcked(ledger, n1, ['only-a'], 10);
    const first = await clusterOf(n1);
    expect((await n1.stop()).code, 'SIGTERM: a clean stop').toBe(0);
    const backup = `${n1.options.dataDir}.backup`;
    await cp(n1.options.dataDir, backup, { recursive: true });

    // B: after the backup, replicated to both peers.
    await n1.start();
    expect((await clusterOf(n1)).node.incarnation, 'a clean restart keeps the identity').toBe(first.node.incarnation);
    await allAcked(ledger, n1, KEYS, 60);
    await allAcked(ledger, n1, ['only-b'], 10);
    const held = await peersHoldAllOf(n1, [n2, n3]);
    await converged(nodes, ledger, keys);
    expect((await n1.stop()).code).toBe(0);

    // Restore the backup and start: a hit sent while it starts is held until it knows what its peers hold of it.
    await rm(n1.options.dataDir, { recursive: true, force: true });
    await cp(backup, n1.options.dataDir, { recursive: true });
    let startedAt = 0;
    const starting = n1.start().then(() => (startedAt = Date.now()));
    await sleep(200); // past start()'s own probe of the port, which would accept and reset a hit
    let early: HitOutcome | undefined;
    while (early === undefined || (early.kind === 'rejected' && early.status === 0)) {
      early = await ledger.hit(n1, 'early');
      if (early.kind === 'rejected' && early.status === 0) await sleep(5);
    }
    const earlyAt = Date.now();
    await starting;
    expect(early, 'a hit during start-up is held, then taken').toMatchObject({ kind: 'acked' });

    const restored = await clusterOf(n1);
    expect(restored.node.incarnation, 'the restored node is a new incarnation').not.toBe(first.node.incarnation);
    expect(await metric(n1, 'hitmesh_incarnations_started_total')).toBe(1);
    expect(logOf(n1)).toMatch(/holds this node's origin up to seq/);
    await meshUp(nodes);

    // C: after the restore, fewer per key than B. Had the restored node gone on with its old origin from the
    // backup's seq, these hits would sit in slots its peers already hold higher (A + B) and max-merge hides them:
    // every node would count 40 + 60 = 100 of each key, not 130.
    await allAcked(ledger, n1, KEYS, 30);
    await allAcked(ledger, n1, ['only-c'], 10);
    const counts = await converged(nodes, ledger, keys);
    expect(counts, 'exactly every acknowledged hit, on every node').toEqual({
      ...Object.fromEntries(KEYS.map((key) => [key, 40 + 60 + 30])),
      'only-a': 10,
      'only-b': 10,
      'only-c': 10,
      early: 1,
    });
    for (const node of nodes) expect(await countsOf(node, keys), node.id).toEqual(counts);
    // The old origin stays where the peers had it; nothing was written under it again.
    for (const node of nodes) expect((await clusterOf(node)).node.vv[held.origin]?.[0], `${node.id}: the old origin's seq`).toBe(held.seq);
    console.log(`[durability] restore: ${JSON.stringify({ before: first.node.incarnation, restored: restored.node.incarnation, earlyHitAnsweredMsBeforeReady: startedAt - earlyAt, oldOriginSeq: held.seq, newSeq: (await clusterOf(n1)).node.seq, counts })}`);
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it('kill -9 of a node under load does not start a new incarnation: the identity stays and no acknowledged hit is lost or doubled', { timeout: 60_000 }, async () => {
    const nodes = await threeNodes('kill');
    const [n1, n2, n3] = nodes;
    const ledger = new Ledger();
    const before = await clusterOf(n1);
    let killed = false;
    const load = await ledger.load(n1, KEYS, 3_000, 16, (acked) => {
      if (!killed && acked >= 1_000) {
        killed = true;
        void n1.kill();
      }
    });
    expect((await n1.exited()).signal).toBe('SIGKILL');
    expect(load.acked).toBeGreaterThanOrEqual(1_000);
    expect(load.acked, 'the kill came mid-load').toBeLessThan(3_000);

    await n1.start();
    const after = await clusterOf(n1);
    expect(after.node.incarnation, 'kill -9 loses nothing: the same identity').toBe(before.node.incarnation);
    expect(await metric(n1, 'hitmesh_incarnations_started_total')).toBe(0);
    expect(logOf(n1)).not.toMatch(/started a new incarnation/);
    await meshUp(nodes);
    await allAcked(ledger, n1, KEYS, 20);
    const counts = await converged(nodes, ledger, KEYS);
    expectWithinBounds(ledger, counts, KEYS);
    const held = await peersHoldAllOf(n1, [n2, n3]);
    expect(held.origin).toBe(before.node.origin);
    console.log(`[durability] kill -9: ${JSON.stringify({ load, seq: held.seq, counts, acked: ledger.acked(KEYS) })}`);
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it('a node started with --fsync answers hits and keeps every acknowledged one across kill -9', { timeout: 45_000 }, async () => {
    const root = await makeTempDir('hitmesh-durability-fsync-');
    const [node] = await startNodes(root, [{ id: 'f1', extraArgs: ['--fsync'] }]);
    if (node === undefined) throw new Error('one node');
    const ledger = new Ledger();
    const before = await clusterOf(node);
    let killed = false;
    const load = await ledger.load(node, KEYS, 2_000, 16, (acked) => {
      if (!killed && acked >= 600) {
        killed = true;
        void node.kill();
      }
    });
    expect((await node.exited()).signal).toBe('SIGKILL');
    expect(load.acked).toBeGreaterThanOrEqual(600);
    await node.start();
    expect((await clusterOf(node)).node.incarnation).toBe(before.node.incarnation);
    const counts = await countsOf(node, KEYS);
    expectWithinBounds(ledger, counts, KEYS);
    // And it goes on taking hits with --fsync after the restart.
    await allAcked(ledger, node, KEYS, 20);
    const writes = { sum: await metric(node, 'hitmesh_store_write_duration_seconds_sum'), count: await metric(node, 'hitmesh_store_write_duration_seconds_count') };
    console.log(`[durability] --fsync kill -9: ${JSON.stringify({ load, counts, meanWriteMs: ((writes.sum ?? NaN) / (writes.count ?? NaN)) * 1000 })}`);
    await node.kill();
  });
});
