/** A node's memory, replication lag and clock offset, read from GET /metrics and GET /cluster. */

/**
 * The resident set size in a Prometheus text page: prom-client's default
 * `process_resident_memory_bytes`, under the node's `hitmesh_` prefix or
 * without it, labelled or not. Undefined when the page has neither.
 */
export function residentBytes(metrics: string): number | undefined {
  const match = /^(?:hitmesh_)?process_resident_memory_bytes(?:\{[^}]*\})?\s+(\S+)/m.exec(metrics);
  const value = match === null ? NaN : Number(match[1]);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The largest `replicationLagMs` over the peers in a GET /cluster answer; undefined when none has one. */
export function maxReplicationLagMs(cluster: unknown): number | undefined {
  return maxOverPeers(cluster, 'replicationLagMs', (v) => v);
}

/** The largest clock offset, either way, the node measured to a peer (GET /cluster `clockOffsetMs`). */
export function maxClockOffsetMs(cluster: unknown): number | undefined {
  return maxOverPeers(cluster, 'clockOffsetMs', Math.abs);
}

function maxOverPeers(cluster: unknown, field: string, map: (v: number) => number): number | undefined {
  if (typeof cluster !== 'object' || cluster === null || !('peers' in cluster) || !Array.isArray(cluster.peers)) return undefined;
  let max: number | undefined;
  for (const peer of cluster.peers as unknown[]) {
    if (typeof peer !== 'object' || peer === null) continue;
    const value = (peer as Record<string, unknown>)[field];
    if (typeof value === 'number' && Number.isFinite(value)) max = Math.max(max ?? map(value), map(value));
  }
  return max;
}

export interface NodeStats {
  readonly rssBytes: number | null;
  readonly lagMs: number | null;
  readonly clockOffsetMs: number | null;
}

/** The figures of one node; null for what it did not answer in time (it may be down). */
export async function readNodeStats(url: string, timeoutMs = 2_000): Promise<NodeStats> {
  const [metrics, cluster] = await Promise.all([
    fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) }).then((r) => r.text()).catch(() => undefined),
    fetch(`${url}/cluster`, { signal: AbortSignal.timeout(timeoutMs) }).then((r): Promise<unknown> => r.json()).catch(() => undefined),
  ]);
  return {
    rssBytes: metrics === undefined ? null : (residentBytes(metrics) ?? null),
    lagMs: cluster === undefined ? null : (maxReplicationLagMs(cluster) ?? null),
    clockOffsetMs: cluster === undefined ? null : (maxClockOffsetMs(cluster) ?? null),
  };
}
