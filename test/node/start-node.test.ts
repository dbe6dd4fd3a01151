import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../../node/cli.ts';
import { startNode } from '../../node/start-node.ts';

describe('startNode', () => {
  it('a stop finishes even while a client holds a half-sent request open', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-start-'));
    const parsed = parseCli(['--id', 'n1', '--port', '0', '--data', dir, '--log-level', 'silent'], {});
    if (parsed.kind !== 'run') throw new Error('expected a config');
    const node = await startNode(parsed.config, { shutdownGraceMs: 200 });
    const [host, port] = node.address.split(':');
    const socket = connect(Number(port), host);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('POST /hit/k HTTP/1.1\r\nHost: x\r\n'); // headers never finished
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await node.stop();
    await closed; // the server cut the stuck connection
    expect(node.replica.isAccepting).toBe(false);
    socket.destroy();
    await rm(dir, { recursive: true, force: true });
  });
});
