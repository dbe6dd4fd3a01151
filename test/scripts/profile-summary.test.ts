import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mainProfile, summarizeProfile } from '../../scripts/bench/profile.ts';

const dir = mkdtempSync(join(tmpdir(), 'hitmesh-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (id: number, functionName: string, url = '') => ({ id, callFrame: { functionName, url, lineNumber: 0 } });

/** A profile of 1 ms samples: 4 in start-up (load), then 3 in sum and 1 idle, then 2 in shutdown (close). */
function write(name: string): string {
  const path = join(dir, name);
  const nodes = [frame(1, '(root)'), frame(2, 'load', `file://${process.cwd()}/node/replica-load.ts`), frame(3, 'sum', `file://${process.cwd()}/crdt/key-buckets.ts`), frame(4, '(idle)'), frame(5, 'close', 'node:net')];
  const samples = [2, 2, 2, 2, 3, 3, 4, 3, 5, 5];
  writeFileSync(path, JSON.stringify({ nodes, samples, timeDeltas: samples.map(() => 1000), startTime: 0, endTime: 10_000 }));
  return path;
}

describe('CPU profile summary', () => {
  it('shares self time over busy samples, idle left out, grouped by where the code lives', () => {
    const summary = summarizeProfile(write('all.cpuprofile'));
    const share = new Map(summary.frames.map((f) => [f.name.split(' ')[0], f.share]));
    // 9 busy samples; the last one is followed by no delta and counts nothing: load 4, sum 3, close 1.
    expect(summary.busyMs).toBe(8);
    expect(share.get('load')).toBeCloseTo(4 / 8);
    expect(share.get('sum')).toBeCloseTo(3 / 8);
    expect(summary.groups.map((g) => g.name)).toEqual(['ours: node/', 'ours: crdt/', 'node internals']);
  });

  it('keeps only the samples of the window before the end', () => {
    // From 6 ms before the end to 2 ms before it: the sum samples and the idle one, not start-up or shutdown.
    const summary = summarizeProfile(write('window.cpuprofile'), 12, { fromEndMs: 5.5, toEndMs: 2 });
    expect(summary.frames.map((f) => f.name.split(' ')[0])).toEqual(['sum']);
    expect(summary.busyMs).toBe(3);
  });

  it('picks the biggest profile of a directory (the main thread’s)', () => {
    const small = join(dir, 'small.cpuprofile');
    writeFileSync(small, JSON.stringify({ nodes: [frame(1, '(root)')], samples: [], timeDeltas: [] }));
    expect(mainProfile(dir)).not.toBe(small);
  });
});
