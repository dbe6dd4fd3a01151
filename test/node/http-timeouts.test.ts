/**
 * The HTTP timeouts cut idle HTTP connections but never the gossip
 * WebSockets upgraded on the same server (issue 9): two in-process nodes run
 * with every HTTP timeout far shorter than the wait below, and their gossip
 * connection must outlive all of them while an idle keep-alive socket does not.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';
import { clusterOf, countOf, eventually, hit, sleep } from '../gossip/live-nodes.ts';

const SHORT = { headersMs: 400, requestMs: 800, keepAliveMs: 300, socketIdleMs: 1_000, checkIntervalMs: 100 } as const;
/** Well past every timeout above, several times over. */
const WAIT_MS = 5_000;
/** Heartbeats further apart than the socket idle timeout: the gossip socket is silent for longer than that. */
const SYNC = ['--sync-interval', '3s'];

const nodes: RunningNode[] = [];
let root: string | undefined;

afterAll(async () => {
  await Promise.allSettled(nodes.map((node) => node.stop()));
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

/** A node whose debug log lines (gossip connections come and go there) are kept in `lines`. */
async function start(id: string, lines: string[], ...flags: string[]): Promise<RunningNode> {
  root ??= await mkdtemp(join(tmpdir(), 'hitmesh-timeouts-'));
  const parsed = parseCli(['--id', id, '--host', '127.0.0.1', '--port', '0', '--data', join(root, id), ...flags], {});
  if (parsed.kind !== 'run') throw new Error('expected a run config');
  const logger = pino({ level: 'debug', base: { node: id } }, { write: (line: string) => void lines.push(line) });
  const node = await startNode(parsed.config, { logger, shutdownGraceMs: 2_000, httpTimeouts: SHORT });
  nodes.push(node);
  return node;
}

const messages = (lines: readonly string[]): string[] => lines.map((line) => (JSON.parse(line) as { msg: string }).msg);

describe('HTTP timeouts and gossip', () => {
  it('a gossip connection outlives every HTTP timeout; an idle keep-alive socket does not', { timeout: 30_000 }, async () => {
    const log1: string[] = [];
    const log2: string[] = [];
    const n1 = await start('n1', log1, ...SYNC);
    const n2 = await start('n2', log2, ...SYNC, '--peers', n1.address);
    for (const [node, other] of [[n1, n2], [n2, n1]] as const) {
      await eventually(`${node.replica.identity.id} to see its peer up`, () => clusterOf(node), (c) => c.peers.some((p) => p.id === other.replica.identity.id && p.state === 'up'));
    }
    const opened = (lines: readonly string[]): number => messages(lines).filter((m) => m === 'gossip connection').length;
    const before = [opened(log1), opened(log2)];
    expect(Math.min(...before), 'each side logged its gossip connection').toBeGreaterThanOrEqual(1);

    // An idle HTTP keep-alive connection next to it is closed by the short timeouts.
    const [host, port] = n1.address.split(':');
    const socket = connect(Number(port), host);
    socket.on('error', () => undefined);
    const idleClosed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    const answeredAt = await new Promise<number>((resolve) => socket.once('data', () => resolve(Date.now())));

    await sleep(WAIT_MS);
    const closedAt = await Promise.race([idleClosed, sleep(1).then(() => undefined)]);
    socket.destroy();
    expect(closedAt, 'the idle keep-alive socket was still open').toBeDefined();
    expect((closedAt ?? Infinity) - answeredAt).toBeLessThan(WAIT_MS);

    // Not one gossip connection closed or reopened on either side.
    expect(messages(log1).filter((m) => m === 'gossip connection closed')).toEqual([]);
    expect(messages(log2).filter((m) => m === 'gossip connection closed')).toEqual([]);
    expect([opened(log1), opened(log2)]).toEqual(before);
    await hit(n1, 'after-the-wait', 3);
    await eventually('the hit to reach n2', () => countOf(n2, 'after-the-wait'), (a) => a.count === 3);
  });
});
