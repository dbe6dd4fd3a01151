/** Waiting until a node's hits are on every other node, read from their version vectors in GET /cluster. */
import type { ProxiedCluster } from './proxied-cluster.ts';

/** Until every other node's version vector covers `id`'s own last sequence number. */
export async function waitReplicated(cluster: ProxiedCluster, id: string, timeoutMs: number): Promise<void> {
  const victim = await clusterView(cluster.node(id).url);
  if (victim === undefined) throw new Error(`${id} does not answer /cluster`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(cluster.nodes.filter((n) => n.id !== id).map((n) => clusterView(n.url)));
    if (views.every((v) => (v?.node.vv[victim.node.origin]?.[0] ?? 0) >= victim.node.seq)) return;
    if (Date.now() > deadline) throw new Error(`${id}'s hits did not reach every other node within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface ClusterView {
  readonly node: { readonly origin: string; readonly seq: number; readonly vv: Readonly<Record<string, readonly [number, number]>> };
}

async function clusterView(url: string): Promise<ClusterView | undefined> {
  try {
    const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as ClusterView;
  } catch {
    return undefined;
  }
}
