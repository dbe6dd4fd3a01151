import { join } from 'node:path';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode, type StartOptions } from '../../node/start-node.ts';

/**
 * A node in this process, from command-line flags as a user would give them,
 * on 127.0.0.1 and a free port unless the flags say otherwise, its store in
 * `dir/<id>`. Stops fast (1 s grace) and is added to `running` for afterAll.
 */
export async function startInProcess(running: RunningNode[], dir: string, id: string, flags: readonly string[], options: StartOptions = {}): Promise<RunningNode> {
  const cli = parseCli(['--id', id, '--port', '0', '--data', join(dir, id), '--log-level', 'silent', ...flags], {});
  if (cli.kind !== 'run') throw new Error('expected a run config');
  const node = await startNode(cli.config, { shutdownGraceMs: 1_000, ...options });
  running.push(node);
  return node;
}

/** `--peers` naming these nodes, or nothing. */
export const peersOf = (peers: readonly RunningNode[]): string[] => (peers.length === 0 ? [] : ['--peers', peers.map((p) => p.address).join(',')]);
