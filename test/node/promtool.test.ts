/**
 * SPEC section 5: /metrics follows Prometheus conventions. `promtool check
 * metrics` (Debian `prometheus`; .ci/run installs it) lints a live node's
 * page: names, units, _total on counters, HELP on every family. A cluster of
 * two takes hits first so the gossip, peer and store families have samples.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../node/start-node.ts';
import { peersOf, startInProcess } from './in-process-node.ts';

let dir: string;
const running: RunningNode[] = [];

const start = (id: string, peers: readonly RunningNode[] = []): Promise<RunningNode> =>
  startInProcess(running, dir, id, ['--secret', 'promtool-secret', '--sync-interval', '100ms', ...peersOf(peers)]);

/** promtool's verdict on a page: its exit code and what it printed. */
function promtoolCheck(page: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error('promtool is not installed: apt-get install prometheus (.ci/run does)', { cause: error }) : error),
    );
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(page);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hitmesh-promtool-'));
});

afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('promtool check metrics', () => {
  it('finds nothing to complain about on a live node that gossips', async () => {
    const n1 = await start('n1');
    const n2 = await start('n2', [n1]);
    for (const key of ['a', 'b', 'c']) await fetch(`${n2.url}/hit/${key}?n=2`, { method: 'POST' });
    const end = Date.now() + 15_000;
    for (;;) {
      const res = (await (await fetch(`${n1.url}/count/a?window=all`)).json()) as { count: number };
      if (res.count === 2) break;
      if (Date.now() > end) throw new Error('n1 never counted the hit n2 took');
      await new Promise((r) => setTimeout(r, 100));
    }
    await fetch(`${n1.url}/nope`);
    const page = await (await fetch(`${n1.url}/metrics`)).text();
    // The standard names: a stock dashboard or alert looks for these.
    expect(page).toMatch(/^process_cpu_seconds_total\{/m);
    expect(page).toMatch(/^process_resident_memory_bytes\{/m);
    expect(page).toMatch(/^nodejs_eventloop_lag_p99_seconds\{/m);
    expect(page).not.toMatch(/^hitmesh_(process|nodejs)_/m);
    const verdict = await promtoolCheck(page);
    expect(verdict.output.trim()).toBe('');
    expect(verdict.code).toBe(0);
  });

  it('does complain about a page that breaks the conventions, so the check above can fail', async () => {
    const page = '# HELP hitmesh_hits A counter without _total.\n# TYPE hitmesh_hits counter\nhitmesh_hits 3\n';
    const verdict = await promtoolCheck(page);
    expect(verdict.output).toMatch(/hitmesh_hits/);
  });
});
