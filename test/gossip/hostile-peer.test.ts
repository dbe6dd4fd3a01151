/**
 * A peer that passed the handshake (no secret here) sends crafted frames over
 * a real WebSocket (finding 1 of "Counts you can trust"). Before, a delta
 * whose origin held a NUL byte, or whose hit row lay 2^53 ms ahead, was
 * accepted, checkpointed and relayed, and then no node of the cluster could
 * restart; a sync naming a member at host:99999 killed the process. Now each
 * such frame closes its connection (1008) and is counted; the node goes on,
 * its peer still converges with it, and both restart on their data.
 */
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../gossip/messages.ts';
import { converge, getJson, hit, packr, peersUp, rawGossip, rejected, restart, start, useLiveNodes } from './live-nodes.ts';

useLiveNodes();

const DAY = 86_400_000;

describe('a hostile but authenticated peer', () => {
  it('each crafted frame closes only its connection; the nodes go on, converge, and restart on their data', async () => {
    const n1 = await start('n1', '--static', '--checkpoint-interval', '50ms');
    const n2 = await start('n2', '--static', '--checkpoint-interval', '50ms', '--peers', n1.address);
    await peersUp(n1, [n2]);
    await hit(n1, 'honest', 2);
    await hit(n2, 'honest', 3);
    await converge([n1, n2], { honest: 5 });

    const now = Date.now();
    const base = now - (now % 1000);
    const delta = (over: Record<string, unknown>): Record<string, unknown> => ({ type: 'delta', origin: 'raw#1', from: 0, to: 1, at: now, base, hits: [], slots: [], ...over });
    const sync = (over: Record<string, unknown>): Record<string, unknown> => ({ type: 'sync', vv: {}, members: {}, links: [], sent: now, echo: 0, held: 0, ...over });
    const poison: [string, Record<string, unknown>][] = [
      ['a delta whose origin holds a NUL byte', delta({ origin: 'raw#1\u0000x', hits: ['k', 0, 1, 1, 1, 1, 1] })],
      ['a hit row 2^53 ms ahead', delta({ hits: ['k', Math.floor((2 ** 53 - base) / 1000), 1, 1, 1, 1, 1] })],
      ['a hit row two days ahead', delta({ hits: ['k', (2 * DAY) / 1000, 1, 1, 1, 1, 1] })],
      ['a day slot beyond safe integers', delta({ slots: ['k', 1, 3, Math.ceil(Number.MAX_SAFE_INTEGER / DAY), 1] })],
      ['a count past 2^53', delta({ hits: ['k', 0, 1, 1, 1, 1, 2 ** 53] })],
      ['a key with a control character', delta({ hits: ['k\u0007', 0, 1, 1, 1, 1, 1] })],
      ['a sync naming a member at host:99999', sync({ members: { n9: 'host:99999' } })],
      ['a sync naming a member with a space in its address', sync({ members: { n9: 'a host:7001' } })],
      ['a sync with a vector time 2^53', sync({ vv: { 'raw#1': [1, 2 ** 53, 0, 1] } })],
    ];
    for (const [name, frame] of poison) {
      const before = await rejected(n1);
      const closed = await rawGossip(n1.address, async (ws, next) => {
        ws.send(packr.pack({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'raw', origin: 'raw#1', address: '127.0.0.1:1', nonce: new Uint8Array(16) }));
        ws.send(packr.pack({ type: 'auth', proof: new Uint8Array(0) }));
        await next('sync');
        ws.send(packr.pack(frame));
      });
      expect(closed.code, name).toBe(1008);
      expect((await rejected(n1)).frame - before.frame, name).toBe(1);
    }
    // A hello that names a bad address is refused before anything else.
    for (const address of ['host:99999', 'a host:7001', 'host:0']) {
      const closed = await rawGossip(n1.address, async (ws) => ws.send(packr.pack({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'raw', origin: 'raw#1', address, nonce: new Uint8Array(16) })));
      expect(closed.code, address).toBe(1008);
    }

    // The node goes on: it takes hits and its peer still converges with it; nothing of the poison counts.
    await hit(n1, 'honest', 10);
    await converge([n1, n2], { honest: 15, k: 0 });
    // Both restart on their data (nothing bad was stored), with every count.
    const again1 = await restart(n1);
    const again2 = await restart(n2);
    for (const node of [again1, again2]) {
      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      expect(metrics).not.toMatch(/^hitmesh_store_corrupt_records_total\{/m);
      expect((await getJson<{ count: number }>(`${node.url}/count/honest?window=all`)).count).toBe(15);
    }
  });
});
