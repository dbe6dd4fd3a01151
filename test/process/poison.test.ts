/**
 * One crafted frame must not poison a cluster (finding 1 of "Counts you can
 * trust"), with real node processes: a peer that passes the handshake sends
 * the frames that used to be accepted, checkpointed and relayed (an origin
 * holding a NUL byte, a hit row 2^53 ms ahead) or that killed the process (a
 * member at host:99999). Each closes only its connection; then both nodes are
 * killed with SIGKILL and restarted on their data: they open, nothing was
 * skipped, every count is there, and they converge again.
 */
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { PROTOCOL_VERSION } from '../../gossip/messages.ts';
import { getJson, httpRequest, killAllNodes, lifetimeCount, makeTempDir, removeTempDirs, sleep, spawnNode, type NodeProcess } from './node-process.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

afterAll(async () => {
  await killAllNodes();
  await removeTempDirs();
});

/** Authenticate as a peer (no secret), send `frame`, and resolve with the close code the node answers with. */
function sendAfterHandshake(port: number, frame: Record<string, unknown>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/gossip`);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('the node never closed the connection'));
    }, 10_000);
    ws.on('error', () => undefined);
    ws.on('open', () => {
      ws.send(packr.pack({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'raw', origin: 'raw#1', address: '127.0.0.1:1', nonce: new Uint8Array(16) }));
      ws.send(packr.pack({ type: 'auth', proof: new Uint8Array(0) }));
    });
    ws.on('message', (data: RawData) => {
      const message = packr.unpack(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer)) as { type?: string };
      if (message.type === 'sync') ws.send(packr.pack(frame));
    });
    ws.on('close', (code: number) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function hit(node: NodeProcess, key: string, n: number): Promise<void> {
  const res = await httpRequest('POST', `${node.url}/hit/${key}?n=${n}`, { timeoutMs: 5_000 });
  expect(res.status, res.body).toBe(200);
}

async function bothCount(nodes: readonly NodeProcess[], key: string, expected: number): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    const counts = await Promise.all(nodes.map((n) => lifetimeCount(n, key)));
    if (counts.every((c) => c === expected)) return;
    if (Date.now() > until) throw new Error(`counts of ${key}: ${JSON.stringify(counts)}, expected ${expected}`);
    await sleep(100);
  }
}

describe('crafted gossip frames against real node processes', () => {
  it('close only their connection; after kill -9 both nodes reopen their stores whole and converge', async () => {
    const [d1, d2] = [await makeTempDir(), await makeTempDir()];
    const flags = ['--static', '--checkpoint-interval', '100ms'];
    let n1 = await spawnNode({ id: 'n1', dataDir: d1, extraArgs: flags });
    let n2 = await spawnNode({ id: 'n2', dataDir: d2, extraArgs: [...flags, '--peers', `127.0.0.1:${n1.port}`] });
    await hit(n1, 'honest', 2);
    await hit(n2, 'honest', 3);
    await bothCount([n1, n2], 'honest', 5);

    const now = Date.now();
    const base = now - (now % 1000);
    const frames: [string, Record<string, unknown>][] = [
      ['origin with a NUL byte', { type: 'delta', origin: 'raw#1\u0000', from: 0, to: 1, at: now, base, hits: ['k', 0, 1, 1, 1, 1, 1], slots: [] }],
      ['hit row 2^53 ms ahead', { type: 'delta', origin: 'raw#1', from: 0, to: 1, at: now, base, hits: ['k', Math.floor((2 ** 53 - base) / 1000), 1, 1, 1, 1, 1], slots: [] }],
      ['member at host:99999', { type: 'sync', vv: {}, members: { n9: 'host:99999' }, links: [], sent: now, echo: 0, held: 0 }],
      ['member with a space', { type: 'sync', vv: {}, members: { n9: 'a b:7001' }, links: [], sent: now, echo: 0, held: 0 }],
    ];
    for (const [name, frame] of frames) expect(await sendAfterHandshake(n1.port, frame), name).toBe(1008);
    expect(n1.hasExited, n1.diagnostics()).toBe(false);
    await hit(n1, 'honest', 10);
    await bothCount([n1, n2], 'honest', 15);
    await sleep(300); // a checkpoint or two: whatever was accepted would be on disk now

    await Promise.all([n1.kill(), n2.kill()]);
    n1 = await spawnNode({ id: 'n1', dataDir: d1, port: n1.port, extraArgs: flags });
    n2 = await spawnNode({ id: 'n2', dataDir: d2, port: n2.port, extraArgs: [...flags, '--peers', `127.0.0.1:${n1.port}`] });
    for (const node of [n1, n2]) {
      const metrics = (await httpRequest('GET', `${node.url}/metrics`)).body;
      expect(metrics, 'nothing skipped at reopen').not.toMatch(/^hitmesh_store_corrupt_records_total\{/m);
      expect(await lifetimeCount(node, 'k')).toBe(0);
    }
    await bothCount([n1, n2], 'honest', 15);
    const cluster = (await getJson(`${n1.url}/cluster`)) as { peers: { id: string }[] };
    expect(cluster.peers.map((p) => p.id), 'no member learned from the crafted syncs').toEqual(['n2']);
  });
});
