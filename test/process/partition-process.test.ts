/**
 * Three `npm run node` processes with a cluster secret, every link between two
 * of them through its own TCP fault proxy (nodes run --static, so they dial
 * only the proxies): a node cut off from the others keeps taking hits, none of
 * them cross while the cut lasts, and after the heal every node counts every
 * acknowledged hit exactly. A fourth process with the wrong secret is refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../scripts/lib/fault-proxy.ts';
import { freePort, getJson, httpRequest, killAllNodes, lifetimeCount, makeTempDir, removeTempDirs, sleep, spawnNode, type NodeProcess } from './node-process.ts';

const SECRET = 'process-test-secret';
const proxies: FaultProxy[] = [];

afterAll(async () => {
  try {
    await killAllNodes();
    await Promise.all(proxies.map((p) => p.stop()));
  } finally {
    await removeTempDirs();
  }
});

async function hits(node: NodeProcess, key: string, n: number): Promise<number> {
  let acked = 0;
  for (let i = 0; i < n; i++) if ((await httpRequest('POST', `${node.url}/hit/${key}`)).status === 200) acked++;
  return acked;
}

async function until(what: string, check: () => Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

async function upPeers(node: NodeProcess): Promise<string[]> {
  const view = (await getJson(`${node.url}/cluster`)) as { peers: { id: string; state: string }[] };
  return view.peers.filter((p) => p.state === 'up').map((p) => p.id);
}

describe.sequential('three node processes behind fault proxies', () => {
  const nodes: NodeProcess[] = [];
  /** link[i][j]: the proxy node i dials node j through. */
  const link: FaultProxy[][] = [[], [], []];

  it('form a full mesh through the proxies, with the secret', async () => {
    const root = await makeTempDir();
    const ports = [await freePort(), await freePort(), await freePort()];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (i === j) continue;
        const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: ports[j] as number } });
        proxies.push(proxy);
        (link[i] as FaultProxy[])[j] = proxy;
      }
    }
    const started = await Promise.all(
      [0, 1, 2].map((i) =>
        spawnNode({
          id: `n${i + 1}`,
          dataDir: `${root}/n${i + 1}`,
          port: ports[i],
          extraArgs: ['--static', '--secret', SECRET, '--peers', (link[i] as FaultProxy[]).filter((p) => p !== undefined).map((p) => p.address).join(',')],
        }),
      ),
    );
    nodes.push(...started);
    for (const node of nodes) await until(`${node.id} sees both peers up`, async () => (await upPeers(node)).length === 2);
  });

  it('a node with the wrong secret is refused and never becomes a member', async () => {
    const root = await makeTempDir();
    const first = nodes[0] as NodeProcess;
    const intruder = await spawnNode({ id: 'intruder', dataDir: `${root}/x`, extraArgs: ['--secret', 'wrong', '--peers', `127.0.0.1:${first.port}`] });
    await httpRequest('POST', `${intruder.url}/hit/forged`);
    await until('the handshake is refused', async () => {
      const metrics = await (await fetch(`${first.url}/metrics`)).text();
      return /hitmesh_gossip_rejected_total\{[^}]*kind="handshake"[^}]*\} [1-9]/.test(metrics);
    });
    await sleep(1_500);
    expect(await upPeers(first)).not.toContain('intruder');
    expect(await lifetimeCount(first, 'forged')).toBe(0);
    await intruder.kill();
  });

  it('a node cut off keeps taking hits; nothing crosses the cut; after the heal every node counts every hit', async () => {
    const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const before = await hits(n1, 'pre', 5);
    await until('pre reaches n3', async () => (await lifetimeCount(n3, 'pre')) === before);
    // Cut n3 off from n1 and n2, both directions.
    for (const [i, j] of [[0, 2], [2, 0], [1, 2], [2, 1]] as const) (link[i] as FaultProxy[])[j]?.cut();
    await until('n3 sees no peer up', async () => (await upPeers(n3)).length === 0);
    const majority = (await hits(n1, 'split', 20)) + (await hits(n2, 'split', 20));
    const minority = await hits(n3, 'split', 15);
    expect(majority + minority).toBe(55); // every side keeps taking writes
    await sleep(1_000);
    expect(await lifetimeCount(n3, 'split')).toBe(minority);
    expect(await lifetimeCount(n1, 'split')).toBe(majority);
    for (const row of link) for (const proxy of row) proxy?.heal();
    for (const node of nodes) await until(`${node.id} counts every split hit`, async () => (await lifetimeCount(node, 'split')) === majority + minority);
    for (const node of nodes) {
      expect(await lifetimeCount(node, 'pre')).toBe(before);
      const counts = (await getJson(`${node.url}/count/split?window=1h`)) as { count: number };
      expect(counts.count).toBe(majority + minority);
    }
  });
});
