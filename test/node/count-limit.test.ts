// Counts past 2^53 (SPEC section 3): a hit that would take a key's count past
// 2^53 − 1 is refused with a 4xx and counts nothing, however the hits arrive
// (one request, a batch repeating the key, many requests in one group commit),
// and the node restarts on what it kept.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { Tier } from '../../crdt/tiers.ts';
import { parseCli } from '../../node/cli.ts';
import { ManualClock } from '../../node/clock.ts';
import { CountLimitError, MAX_COUNT } from '../../node/count-limit.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { Replica } from '../../node/replica.ts';
import { startNode } from '../../node/start-node.ts';

const logger = pino({ level: 'silent' });
const ALL = { kind: 'all' } as const;
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A replica whose key `k` another origin has already counted up to `held`. */
async function nearTheLimit(held: number): Promise<Replica> {
  const replica = await Replica.open({ store: new MemoryStore(), id: 'n1', retention: DEFAULT_RETENTION, clock: new ManualClock(Date.UTC(2026, 10, 28, 12)), logger });
  replica.state.merge({ origin: 'n2#beef', key: 'k', tier: Tier.lifetime, start: 0, count: held }, 1);
  return replica;
}

describe('the 2^53 bound', () => {
  it('takes a key exactly up to 2^53 − 1 and refuses the hit that would pass it, counting nothing of it', async () => {
    const replica = await nearTheLimit(MAX_COUNT - 10);
    await replica.hit('k', 10);
    expect(replica.count('k', replica.plan(ALL))).toBe(MAX_COUNT);
    await expect(replica.hit('k', 1)).rejects.toThrow(CountLimitError);
    await expect(replica.hits([{ key: 'other', n: 1 }, { key: 'k', n: 1 }])).rejects.toThrow(/past 2\^53/);
    expect(replica.count('other', replica.plan(ALL)), 'a batch is all or nothing').toBe(0);
    await replica.close();
  });

  it('counts hits still in the group commit: of many concurrent hits, exactly those that fit are taken', async () => {
    const replica = await nearTheLimit(MAX_COUNT - 7);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => replica.hit('k', 1)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof CountLimitError)).toHaveLength(5);
    expect(replica.count('k', replica.plan(ALL))).toBe(MAX_COUNT);
    await replica.close();
  });

  it('a batch repeating a key is summed before it is checked', async () => {
    const replica = await nearTheLimit(MAX_COUNT - 1_500_000);
    await expect(replica.hits([{ key: 'k', n: 1_000_000 }, { key: 'k', n: 1_000_000 }])).rejects.toThrow(CountLimitError);
    await replica.hits([{ key: 'k', n: 1_000_000 }, { key: 'k', n: 500_000 }]);
    expect(replica.count('k', replica.plan(ALL))).toBe(MAX_COUNT);
    await replica.close();
  });

  it('over HTTP: 422 with the reason, the count unchanged, and the node restarts on what it kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-limit-'));
    dirs.push(dir);
    const config = parseCli(['--id', 'n1', '--port', '0', '--data', dir, '--log-level', 'silent'], {});
    if (config.kind !== 'run') throw new Error('config');
    let node = await startNode(config.config, { logger });
    // Bring the key near the limit the way the review did, only faster: big batches of n = 1,000,000.
    node.replica.state.merge({ origin: 'n2#beef', key: 'k', tier: Tier.lifetime, start: 0, count: MAX_COUNT - 15_000_000_000 }, 1);
    const batch = JSON.stringify(Array.from({ length: 10_000 }, () => ({ key: 'k', n: 1_000_000 })));
    const post = (): Promise<Response> => fetch(`${node.url}/hits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch });
    expect((await post()).status).toBe(200);
    const refused = await post();
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { error: string }).error).toMatch(/past 2\^53 − 1.*not counted/);
    const one = await fetch(`${node.url}/hit/k?n=1000000`, { method: 'POST' });
    expect(one.status).toBe(200);
    const count = async (): Promise<number> => ((await (await fetch(`${node.url}/count/k?window=all`)).json()) as { count: number }).count;
    expect(await count()).toBe(MAX_COUNT - 15_000_000_000 + 10_001_000_000);
    await node.stop();
    node = await startNode(config.config, { logger });
    // The other origin's slot was never checkpointed (it was planted, not gossiped); this node's own hits all are, and they decode.
    expect(await count()).toBe(10_001_000_000);
    await node.stop();
  });
});
