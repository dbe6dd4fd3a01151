/**
 * A local cluster whose every link runs through a TCP fault proxy: node i
 * dials node j at proxies[i][j], and nodes run with --static so they never
 * learn a direct address. Cutting the two proxies of a pair cuts that link
 * (the protocol keeps one connection per pair, dialed by either side).
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FaultProxy, type FlapSchedule } from '../lib/fault-proxy.ts';
import { waitForMesh } from '../lib/local-cluster.ts';
import { LocalNode } from '../lib/local-node.ts';
import type { CutMode } from './report.ts';

export interface SlowLink {
  readonly delayMs: number;
  readonly bytesPerSecond: number;
}

export interface ProxiedClusterOptions {
  readonly ids: readonly string[];
  readonly dataRoot: string;
  readonly logLevel?: string;
  /** CPU to pin each node to (benchmarks); unpinned when omitted. */
  readonly cpuOf?: (index: number) => number;
  readonly onLine?: (id: string, line: string, stream: 'stdout' | 'stderr') => void;
  /** Path of libfaketime: every node runs under it, its clock offset in `<dataRoot>/<id>.faketime` (LocalNode.setClockOffset). */
  readonly fakeClockLibrary?: string;
  /** Node.js flags for every node, before its main script (LocalNode's nodeArgs). */
  readonly nodeArgs?: readonly string[];
}

export class ProxiedCluster {
  readonly nodes: readonly LocalNode[];
  /** proxies.get(a).get(b): the proxy a dials to reach b. */
  private readonly proxies: ReadonlyMap<string, ReadonlyMap<string, FaultProxy>>;

  private constructor(nodes: LocalNode[], proxies: Map<string, Map<string, FaultProxy>>) {
    this.nodes = nodes;
    this.proxies = proxies;
  }

  /** Start the proxies, then every node, and wait until each sees all the others up. */
  static async start(options: ProxiedClusterOptions): Promise<ProxiedCluster> {
    const { ids } = options;
    const proxies = new Map<string, Map<string, FaultProxy>>();
    const nodes: LocalNode[] = [];
    const cluster = new ProxiedCluster(nodes, proxies);
    // The nodes' ports stay bound until the proxies have theirs, or a proxy could be given a node's port.
    const reserved = await Promise.all(ids.map(() => reservePort()));
    const ports = reserved.map((r) => r.port);
    try {
      for (const [i, a] of ids.entries()) {
        const row = new Map<string, FaultProxy>();
        proxies.set(a, row);
        for (const [j, b] of ids.entries()) {
          if (i !== j) row.set(b, await FaultProxy.start({ target: { host: '127.0.0.1', port: portAt(ports, j) } }));
        }
      }
      await Promise.all(reserved.map((r) => r.release()));
      for (const [i, id] of ids.entries()) {
        const peers = [...(proxies.get(id)?.values() ?? [])].map((p) => p.address);
        nodes.push(
          new LocalNode({
            id,
            port: portAt(ports, i),
            dataDir: join(options.dataRoot, id),
            peers,
            logLevel: options.logLevel ?? 'warn',
            extraArgs: ['--static'],
            ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
            ...(options.cpuOf === undefined ? {} : { cpu: options.cpuOf(i) }),
            // Beside the data directory, not in it: a wipe must not take the clock back.
            ...(options.fakeClockLibrary === undefined ? {} : { fakeClock: { library: options.fakeClockLibrary, file: join(options.dataRoot, `${id}.faketime`) } }),
            onLine: (line, stream) => options.onLine?.(id, line, stream),
          }),
        );
      }
      await Promise.all(nodes.map((node) => node.start()));
      const mesh = await waitForMesh(nodes, 60_000);
      if (!mesh.ok) throw new Error(`the cluster did not connect within 60 s: ${mesh.missing.join('; ')}`);
      return cluster;
    } catch (error) {
      await Promise.all(reserved.map((r) => r.release()));
      await cluster.stop();
      throw error;
    }
  }

  node(id: string): LocalNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Cut every link between a node of `a` and a node of `b`, both directions. */
  cut(a: readonly string[], b: readonly string[], mode: CutMode): void {
    for (const proxy of this.between(a, b)) {
      if (mode === 'cut') proxy.cut();
      else proxy.blackhole();
    }
  }

  /** Every link between `a` and `b` comes and goes on `schedule`. */
  flap(a: readonly string[], b: readonly string[], schedule: FlapSchedule): void {
    for (const proxy of this.between(a, b)) proxy.flap(schedule);
  }

  /** Every link between `a` and `b` delays each chunk by `delayMs` and carries at most `bytesPerSecond`. */
  slow(a: readonly string[], b: readonly string[], link: SlowLink): void {
    for (const proxy of this.between(a, b)) {
      proxy.delay(link.delayMs);
      proxy.throttle(link.bytesPerSecond);
    }
  }

  /** Every link back to clean pass-through. */
  healAll(): void {
    for (const row of this.proxies.values()) for (const proxy of row.values()) proxy.heal();
  }

  /** kill -9, then delete the node's data directory: it comes back as a new incarnation. */
  async wipe(id: string): Promise<void> {
    const node = this.node(id);
    await node.kill();
    await rm(node.options.dataDir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    await Promise.all([...this.proxies.values()].flatMap((row) => [...row.values()].map((proxy) => proxy.stop())));
  }

  private *between(a: readonly string[], b: readonly string[]): Generator<FaultProxy> {
    for (const x of a) {
      for (const y of b) {
        const there = this.proxies.get(x)?.get(y);
        const back = this.proxies.get(y)?.get(x);
        if (there === undefined || back === undefined) throw new Error(`no link between ${x} and ${y}`);
        yield there;
        yield back;
      }
    }
  }
}

function portAt(ports: readonly number[], i: number): number {
  const port = ports[i];
  if (port === undefined) throw new Error(`no port for node ${i}`);
  return port;
}

/** A free port on 127.0.0.1, held by a listener until release(). */
function reservePort(): Promise<{ port: number; release(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      let released: Promise<void> | undefined;
      resolve({ port: address.port, release: () => (released ??= new Promise<void>((done) => server.close(() => done()))) });
    });
  });
}
