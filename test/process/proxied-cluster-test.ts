/**
 * What the tests of real node processes behind TCP fault proxies share: one
 * cluster per test, stopped (every process by its PID) and its directories
 * removed after it, and a JSON call with a timeout.
 */
import { afterEach } from 'vitest';
import { ProxiedCluster } from '../../scripts/partition/proxied-cluster.ts';
import { makeTempDir, removeTempDirs } from './node-process.ts';

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** Register the after-each stop; `start` launches the test's cluster (one at a time). */
export function useProxiedCluster(prefix: string): { start: (ids: readonly string[]) => Promise<ProxiedCluster> } {
  let cluster: ProxiedCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    await removeTempDirs();
  });
  return {
    start: async (ids) => (cluster = await ProxiedCluster.start({ ids, dataRoot: await makeTempDir(prefix) })),
  };
}

/** One request with a JSON answer, given up after 15 s. */
export async function call(method: string, url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
