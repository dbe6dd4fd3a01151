/**
 * A local cluster of hitmesh nodes, each a LocalNode child process on
 * 127.0.0.1: lay it out (ids n1…nN, consecutive ports, one data dir each,
 * every node seeded with all the others), start the nodes concurrently, wait
 * until they see each other, stop them. No flags, no printing: the cluster
 * script and the experiments build on it.
 */
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LocalNode, type ExitStatus, type LocalNodeOptions } from './local-node.ts';

const HOST = '127.0.0.1';

export interface ClusterLayoutOptions {
  /** How many nodes: n1 … nN. */
  readonly nodes: number;
  /** Port of n1; nK listens on basePort + K - 1. */
  readonly basePort: number;
  /** Parent of the node dirs: nK keeps its LevelDB in <dataDir>/nK. */
  readonly dataDir: string;
  readonly secret?: string;
  readonly logLevel?: string;
  /** Flags given to every node after the ones the layout sets. */
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
  /** Every output line of every node. */
  readonly onLine?: (id: string, line: string, stream: 'stdout' | 'stderr') => void;
}

/** The id of the k-th node (1-based). */
export function nodeId(k: number): string {
  return `n${k}`;
}

/** What each node of the cluster is started with: ids, ports, data dirs (absolute) and peers (all the other nodes). */
export function clusterLayout(options: ClusterLayoutOptions): LocalNodeOptions[] {
  const { nodes, basePort } = options;
  if (!Number.isInteger(nodes) || nodes < 1) throw new RangeError(`a cluster needs at least one node, got ${nodes}`);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + nodes - 1 > 65_535) {
    throw new RangeError(`ports ${basePort}..${basePort + nodes - 1} are not all valid TCP ports`);
  }
  const dataDir = resolve(options.dataDir);
  const ports = Array.from({ length: nodes }, (_, i) => basePort + i);
  return ports.map((port, i) => {
    const id = nodeId(i + 1);
    const onLine = options.onLine;
    return {
      id,
      port,
      dataDir: join(dataDir, id),
      peers: ports.filter((p) => p !== port).map((p) => `${HOST}:${p}`),
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}),
      ...(options.extraArgs !== undefined ? { extraArgs: options.extraArgs } : {}),
      ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      ...(onLine !== undefined ? { onLine: (line: string, stream: 'stdout' | 'stderr') => onLine(id, line, stream) } : {}),
    };
  });
}

/** The nodes of a cluster layout, not started. */
export function createClusterNodes(options: ClusterLayoutOptions): LocalNode[] {
  return clusterLayout(options).map((o) => new LocalNode(o));
}

/**
 * Remove every node dir (`n<digits>`) under `dataDir`, of this layout or an
 * earlier, larger one; nothing else there is touched. Returns what it removed.
 */
export async function wipeNodeDirs(dataDir: string): Promise<string[]> {
  const root = resolve(dataDir);
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const dirs = entries.filter((e) => e.isDirectory() && /^n[0-9]+$/.test(e.name)).map((e) => join(root, e.name));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  return dirs;
}

/** Some nodes of a cluster did not start (or the start was aborted); every node was stopped again. */
export class ClusterStartError extends Error {
  constructor(
    /** The nodes that failed on their own: not those that failed because the others were being stopped. */
    readonly failures: readonly { readonly id: string; readonly error: unknown }[],
    readonly aborted = false,
  ) {
    super(aborted && failures.length === 0 ? 'start aborted' : failures.map((f) => (f.error instanceof Error ? f.error.message : `${f.id}: ${String(f.error)}`)).join('\n'));
    this.name = 'ClusterStartError';
  }
}

export interface StartNodesOptions {
  /** How long a node may take to exit after SIGTERM when the start is undone. */
  readonly stopGraceMs?: number;
  /** Abort the start: every node is stopped and startNodes throws a ClusterStartError with `aborted`. */
  readonly signal?: AbortSignal;
}

/**
 * Start every node at once and wait until each answers /readyz. As soon as one
 * fails (or `signal` aborts), all are stopped — those running and those that
 * come up later — and this throws a ClusterStartError naming each node that
 * failed on its own; when it returns, every node is running and ready.
 */
export async function startNodes(nodes: readonly LocalNode[], options: StartNodesOptions = {}): Promise<void> {
  const graceMs = options.stopGraceMs ?? 10_000;
  const failures: { id: string; error: unknown }[] = [];
  /** Nodes that were running when the stop began: their failing start is its consequence, not a cause. */
  const stoppedByUs = new Set<LocalNode>();
  let stopping: Promise<unknown> | undefined;
  const stopAll = (): void => {
    if (stopping !== undefined) return;
    for (const node of nodes) if (node.running) stoppedByUs.add(node);
    stopping = stopNodes(nodes, graceMs);
  };
  const abort = (): void => stopAll();
  if (options.signal?.aborted === true) stopAll();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    await Promise.all(
      nodes.map(async (node) => {
        try {
          await node.start();
        } catch (error) {
          if (!stoppedByUs.has(node)) failures.push({ id: node.id, error });
          stopAll();
        }
      }),
    );
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
  if (stopping === undefined) return;
  // Nodes that were not yet spawned when the stop began have started since: stop them too.
  await stopping;
  await stopNodes(nodes, graceMs);
  throw new ClusterStartError(failures, options.signal?.aborted === true);
}

/** SIGTERM every running node at once, SIGKILL any still there after `graceMs`; resolves when all have exited. */
export function stopNodes(nodes: readonly LocalNode[], graceMs = 10_000): Promise<ExitStatus[]> {
  return Promise.all(nodes.map((node) => node.stop(graceMs)));
}

export interface MeshStatus {
  /** Every node sees every other node as "up" in GET /cluster. */
  readonly ok: boolean;
  /** What was still missing at the last look, e.g. `n1 sees n3 down`; empty when ok. */
  readonly missing: readonly string[];
}

export interface WaitForMeshOptions {
  readonly intervalMs?: number;
  /** Stops the wait early (the answer is then the last look). */
  readonly signal?: AbortSignal;
}

/**
 * Poll GET /cluster on every node until each lists every other node (by id)
 * with `state: "up"`, or until `timeoutMs` has passed. Never throws for an
 * unreachable node: it is reported in `missing`.
 */
export async function waitForMesh(nodes: readonly LocalNode[], timeoutMs: number, options: WaitForMeshOptions = {}): Promise<MeshStatus> {
  const deadline = Date.now() + timeoutMs;
  const intervalMs = options.intervalMs ?? 100;
  for (;;) {
    const missing = (await Promise.all(nodes.map((node) => missingPeers(node, nodes)))).flat();
    if (missing.length === 0) return { ok: true, missing };
    if (Date.now() >= deadline || options.signal?.aborted === true) return { ok: false, missing };
    await sleep(Math.min(intervalMs, Math.max(deadline - Date.now(), 1)), options.signal);
  }
}

/** What `node` does not (yet) see as up, as `n1 sees n2 suspect` / `n1 does not know n2` / `n1: <error>`. */
async function missingPeers(node: LocalNode, nodes: readonly LocalNode[]): Promise<string[]> {
  let peers: { id?: unknown; state?: unknown }[];
  try {
    const res = await fetch(`${node.url}/cluster`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { peers?: unknown };
    if (!res.ok || !Array.isArray(body.peers)) return [`${node.id}: GET /cluster answered ${res.status}`];
    peers = body.peers as { id?: unknown; state?: unknown }[];
  } catch (error) {
    return [`${node.id}: ${error instanceof Error ? error.message : String(error)}`];
  }
  const missing: string[] = [];
  for (const other of nodes) {
    if (other === node) continue;
    const seen = peers.filter((p) => p.id === other.id);
    if (seen.some((p) => p.state === 'up')) continue;
    missing.push(seen.length === 0 ? `${node.id} does not know ${other.id}` : `${node.id} sees ${other.id} ${seen.map((p) => String(p.state)).join('/')}`);
  }
  return missing;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal?.aborted === true) {
      done();
      return;
    }
    const timer = setTimeout(finish, ms);
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}
