import { describe, expect, it } from 'vitest';
import { FreshProbes, PAIRINGS, freshHeld } from '../../scripts/partition/fresh-probes.ts';
import { serve, useLocalServers } from './local-servers.ts';

useLocalServers();

/** A fake node: `hit` answers the write, `count` the read. */
async function fakeNode(hit: number, count: number | 'fail'): Promise<string> {
  return serve((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'POST') {
      res.statusCode = hit;
      res.end(JSON.stringify(hit === 200 ? { at: Date.now() } : { error: 'timed out' }));
    } else if (count === 'fail') {
      res.statusCode = 504;
      res.end(JSON.stringify({ error: 'too few answered' }));
    } else res.end(JSON.stringify({ count }));
  });
}

describe('read-after-write probes', () => {
  it('a read that misses an acknowledged write is a miss; a write or read that is not a 200 proves nothing', async () => {
    const probes = new FreshProbes(300);
    const writer = { id: 'w', url: await fakeNode(200, 1) };
    const seeing = { id: 'r1', url: await fakeNode(200, 1) };
    const blind = { id: 'r2', url: await fakeNode(200, 0) };
    const refusing = { id: 'r3', url: await fakeNode(200, 'fail') };
    const slowWriter = { id: 'w2', url: await fakeNode(504, 1) };
    await probes.probe('ack=all, plain read', writer, seeing);
    await probes.probe('ack=majority, read=majority', writer, blind);
    await probes.probe('plain write, read=all', writer, refusing);
    await probes.probe('plain write, read=all', slowWriter, seeing);
    const summary = probes.summary();
    expect(summary.byPairing['ack=all, plain read']).toMatchObject({ seen: 1, missed: 0, inconclusive: 0 });
    expect(summary.byPairing['ack=majority, read=majority']).toMatchObject({ seen: 1, missed: 1 });
    expect(summary.byPairing['plain write, read=all']).toMatchObject({ seen: 0, missed: 0, inconclusive: 2 });
    expect(summary.misses).toEqual([{ pairing: 'ack=majority, read=majority', writer: 'w', reader: 'r2', key: 'fresh-1', count: 0 }]);
    expect(freshHeld(summary)).toBe(false);
  });

  it('holds only when every pairing saw a probe and none missed', async () => {
    const probes = new FreshProbes(300);
    const node = { id: 'n', url: await fakeNode(200, 1) };
    for (const pairing of PAIRINGS.slice(0, 2)) await probes.probe(pairing, node, node);
    expect(freshHeld(probes.summary())).toBe(false);
    await probes.probe(PAIRINGS[2], node, node);
    expect(freshHeld(probes.summary())).toBe(true);
  });
});
