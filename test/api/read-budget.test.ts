// Cheap requests that cost a lot (SPEC section 3): a count request's work is
// bounded (keys × buckets, a 400 naming the limit past it), and a long answer
// is computed in slices, so hits are served while it is under way.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_READ_BUCKETS } from '../../api/read-budget.ts';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

const KEYS = Array.from({ length: 1_000 }, (_, i) => `key-${i}`);
const running: { node: RunningNode; dir: string }[] = [];

afterEach(async () => {
  for (const { node, dir } of running.splice(0)) {
    await node.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

async function start(...flags: string[]): Promise<RunningNode> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-budget-'));
  const cli = parseCli(['--id', 'n1', '--port', '0', '--data', dir, '--log-level', 'silent', ...flags], {});
  if (cli.kind !== 'run') throw new Error('config');
  const node = await startNode(cli.config);
  running.push({ node, dir });
  await fetch(`${node.url}/hits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(KEYS.map((key) => ({ key, n: 2 }))) });
  return node;
}

describe('the read budget', () => {
  it('refuses a read over the budget with a 400 that names the limit, and answers one within it', async () => {
    // Twenty years of day buckets: 1,000 keys over all of them is ~7.3 M bucket reads.
    const node = await start('--retention-1d', '7300d');
    const over = await fetch(`${node.url}/counts?window=7300d&keys=${KEYS.join(',')}`);
    expect(over.status).toBe(400);
    const { error } = (await over.json()) as { error: string };
    expect(error).toContain(`limit of ${MAX_READ_BUCKETS}`);
    expect(error).toMatch(/1000 keys × \d+ buckets/);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/^hitmesh_reads_over_budget_total(\{[^}]*\})? 1$/m);
    expect(metrics).toMatch(new RegExp(`^hitmesh_read_budget_bucket_reads(\\{[^}]*\\})? ${MAX_READ_BUCKETS}$`, 'm'));
    const within = await fetch(`${node.url}/counts?window=7300d&keys=${KEYS.slice(0, 200).join(',')}`);
    expect(within.status).toBe(200);
    const { counts } = (await within.json()) as { counts: Record<string, number> };
    expect(Object.values(counts)).toHaveLength(200);
    expect(Object.values(counts).every((n) => n === 2)).toBe(true);
  });

  it('a hit sent while heavy reads are being answered is answered before them', { timeout: 30_000 }, async () => {
    const node = await start();
    const url = `${node.url}/counts?window=1825d&keys=${KEYS.join(',')}`;
    const done: string[] = [];
    // 64 answers of 1,000 keys over ~1,900 planned buckets each (a sum walks what a key holds, so a key costs
    // microseconds): in one turn each, they would hold the hit back until all were sent.
    const reads = Array.from({ length: 64 }, async (_, i) => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const { counts } = (await res.json()) as { counts: Record<string, number> };
      expect(counts['key-999']).toBe(2);
      done.push(`read ${i}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const hit = await fetch(`${node.url}/hit/key-1`, { method: 'POST' });
    expect(hit.status).toBe(200);
    done.push('hit');
    await Promise.all(reads);
    expect(done.indexOf('hit'), `order of answers: ${done.join(', ')}`).toBe(0);
  });
});
