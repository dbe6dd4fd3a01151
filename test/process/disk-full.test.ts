/**
 * A short disk-full spell on a real node (SPEC §4): the file-size limit of the
 * running process is lowered with prlimit so the next write to LevelDB's log
 * fails half-way (EFBIG leaves a torn record), then lifted again. The hit path
 * must stop at the failure (503, /readyz 503), the store be reopened on a
 * fresh log, and every hit acknowledged after it survive kill -9: LevelDB's
 * recovery drops everything written after a torn record, so a node that went
 * on writing to the torn log acknowledged hits that kill -9 then erased.
 */
import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countsOf, eventually, killStartedNodes, Ledger, logOf, metric, readyz, startNodes } from './durability-cluster.ts';
import { makeTempDir, removeTempDirs } from './node-process.ts';

const KEY = 'k';

afterAll(async () => {
  try {
    await killStartedNodes();
  } finally {
    await removeTempDirs();
  }
});

/** The size of LevelDB's current write-ahead log (the highest-numbered NNNNNN.log). */
async function currentLogSize(dataDir: string): Promise<number> {
  const logs = (await readdir(dataDir)).filter((name) => /^\d+\.log$/.test(name)).sort();
  const newest = logs.at(-1);
  if (newest === undefined) throw new Error(`no LevelDB log in ${dataDir}`);
  return (await stat(join(dataDir, newest))).size;
}

function setFileSizeLimit(pid: number, limit: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(pid), limit === 'unlimited' ? '--fsize=unlimited:unlimited' : `--fsize=${limit}:unlimited`]);
}

describe('a disk-full spell', () => {
  it('stops the hit path until the store is reopened, and every hit acknowledged after it survives kill -9', { timeout: 60_000 }, async () => {
    const root = await makeTempDir('hitmesh-disk-full-');
    const [node] = await startNodes(root, [{ id: 'n1' }]);
    if (node?.pid === undefined) throw new Error('node not running');
    const ledger = new Ledger();
    const before = await ledger.load(node, [KEY], 100, 4);
    expect(before.acked).toBe(100);

    // The log may grow by 40 bytes more: the next batch record or two tear at the limit.
    setFileSizeLimit(node.pid, (await currentLogSize(node.options.dataDir)) + 40);
    const spell = await ledger.load(node, [KEY], 30, 1);
    expect(spell.statuses['500'] ?? 0, `the write that failed is answered 500: ${JSON.stringify(spell.statuses)}`).toBeGreaterThanOrEqual(1);
    expect(spell.statuses['503'] ?? 0, 'then hits are refused until the store is sound').toBeGreaterThanOrEqual(1);
    const notReady = await readyz(node);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatch(/store failed a write/);
    expect(await metric(node, 'hitmesh_store_failed')).toBe(1);

    setFileSizeLimit(node.pid, 'unlimited');
    await eventually('the node to be ready again', () => readyz(node), (r) => r.status === 200, 30_000);
    expect(await metric(node, 'hitmesh_store_reopens_total')).toBe(1);
    const after = await ledger.load(node, [KEY], 200, 4);
    expect(after.acked).toBe(200);

    await node.kill();
    await node.start();
    const counts = await countsOf(node, [KEY]);
    const acked = ledger.tally(KEY).acked;
    // A 500 is a write that failed part-way: its hit may count (if it reached the disk) or not. Nothing acked is lost.
    const maybe = spell.statuses['500'] ?? 0;
    expect(counts[KEY], `acked ${acked}, failed writes ${maybe}; node log:\n${logOf(node).slice(-3000)}`).toBeGreaterThanOrEqual(acked);
    expect(counts[KEY]).toBeLessThanOrEqual(acked + maybe);
    expect(acked).toBe(300 + spell.acked);
    await node.kill();
  });
});
