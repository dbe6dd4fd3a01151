/**
 * `npm run soak` end to end: npm, the script, a proxied cluster of real node
 * processes, a calibration burst, 40 s of load with faults (seed 2 deals
 * kill and cut first, so both come whatever the machine's speed), and the
 * JSON report it writes. The process group is stopped by its PID whatever
 * happens. Memory flatness is judged and reported, but not required: 40 s
 * is mostly warm-up (see README, "Soak").
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_FAKETIME_LIBRARY } from '../../scripts/soak/faketime.ts';
import type { SoakReport } from '../../scripts/soak/report.ts';
import { groupAlive, makeTempDir, REPO_ROOT, removeTempDirs, waitForGroupGone } from './node-process.ts';

const groups = new Set<number>();

afterEach(async () => {
  for (const pgid of groups) {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    await waitForGroupGone(pgid);
  }
  groups.clear();
});

afterAll(removeTempDirs);

async function soak(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; out: string }> {
  const out = await makeTempDir('hitmesh-soak-');
  const env = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  const child = spawn('npm', ['run', 'soak', '--', ...args, '--out', out], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  if (child.pid !== undefined) groups.add(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr, out };
}

const present = (series: readonly (number | null)[] | undefined): number[] => (series ?? []).filter((v): v is number => v !== null);

describe('npm run soak', () => {
  it('40 s of load with faults: nothing lost or doubled, every closed range converged, RSS and lag recorded', { timeout: 120_000 }, async () => {
    const run = await soak('--duration', '40s', '--nodes', '3', '--seed', '2', '--converge-limit', '10', '--quiet');
    const files = await readdir(run.out);
    const json = files.find((f) => f.endsWith('.json'));
    const html = files.find((f) => f.endsWith('.html'));
    if (json === undefined || html === undefined) throw new Error(`no report (exit ${run.code}): ${run.stderr}`);
    const report = JSON.parse(await readFile(join(run.out, json), 'utf8')) as SoakReport;
    const page = await readFile(join(run.out, html), 'utf8');

    // The checks, on the report's own numbers: nothing out of bounds anywhere, every closed range agreed.
    expect(report.checks.violations).toEqual([]);
    const ranges = [...report.faults.map((f) => f.range), report.tailRange];
    for (const range of ranges) {
      expect(range?.violations, range?.label).toEqual([]);
      expect(range?.agreedAtMs, range?.label).not.toBeNull();
    }
    expect(report.settledMs).not.toBeNull();
    expect(report.verdict).toMatchObject({ exact: true, converged: true, faultsApplied: true });
    // Memory over 40 s is still warming up, so flatness is reported, not required here; the exit status follows the verdict.
    expect(report.ok).toBe(report.verdict.memoryFlat);
    expect(run.code, run.stdout + run.stderr).toBe(report.ok ? 0 : 1);
    expect(run.stdout).toContain(report.ok ? 'PASS: no acknowledged hit lost' : 'FAIL: memory not flat');

    // The load: calibrated, at half the peak, and every hit accounted for; every node ends with every acked hit.
    expect(report.rateSource).toBe('calibration');
    expect(report.calibration?.peakPerS).toBeGreaterThan(0);
    expect(report.rate).toBe(Math.round((report.calibration?.peakPerS ?? 0) / 2));
    const { sent, acked, failed, unknown } = report.hits;
    expect(acked + failed + unknown).toBe(sent);
    expect(acked).toBeGreaterThan(report.rate * 20);
    expect(new Set(report.nodes.map((n) => n.finalCount)).size).toBe(1);
    for (const node of report.nodes) {
      expect(node.finalCount).toBeGreaterThanOrEqual(acked);
      expect(node.finalCount).toBeLessThanOrEqual(acked + unknown);
    }

    // Faults were really applied, one at a time, and each converged after its heal.
    const kinds = report.faults.map((f) => f.kind);
    expect(kinds).toContain('kill');
    expect(kinds).toContain('cut');
    for (const [i, f] of report.faults.entries()) {
      expect(f.error).toBeUndefined();
      expect(f.convergedMs).not.toBeNull();
      expect(f.toMs).toBeGreaterThan(f.fromMs);
      if (i > 0) expect(f.fromMs).toBeGreaterThan(report.faults[i - 1]?.toMs ?? Infinity);
    }
    const kill = report.faults.find((f) => f.kind === 'kill');
    const victim = report.nodes.find((n) => n.id === kill?.nodes[0]);
    expect(victim?.id).not.toBe(report.steadyNode);
    expect(victim?.starts).toBeGreaterThanOrEqual(2);
    expect(victim?.failed).toBeGreaterThan(0);
    expect(report.events.some((e) => e.label === `kill -9 ${victim?.id}`)).toBe(true);

    // The skewed clock: applied under libfaketime, or skipped and said so.
    if (existsSync(DEFAULT_FAKETIME_LIBRARY)) {
      expect(report.skipped).toEqual([]);
      const skew = report.faults.find((f) => f.kind === 'skew');
      if (skew !== undefined) {
        // Some node measured a peer's clock off by more than 500 ms while it held.
        const during = report.timeline.atMs.flatMap((t, i) => (t > skew.fromMs + 1_500 && t < skew.toMs ? [i] : []));
        const offsets = during.flatMap((i) => Object.values(report.timeline.clockOffsetMs).map((s) => s[i] ?? 0));
        expect(Math.max(0, ...offsets)).toBeGreaterThan(500);
      }
    } else {
      expect(report.skipped.map((s) => s.kind)).toEqual(['skew']);
      expect(report.skipped[0]?.reason).toContain('not installed');
      expect(kinds).not.toContain('skew');
    }

    // RSS and lag over time, for every node; memory judged on the steady node at least.
    const samples = report.timeline.atMs.length;
    expect(samples).toBeGreaterThanOrEqual(20);
    for (const node of report.nodes) {
      const rss = present(report.timeline.rssBytes[node.id]);
      expect(rss.length, node.id).toBeGreaterThanOrEqual(samples / 2);
      for (const bytes of rss) expect(bytes).toBeGreaterThan(20 * 2 ** 20);
      expect(present(report.timeline.lagMs[node.id]).length, node.id).toBeGreaterThanOrEqual(samples / 2);
    }
    expect(report.memory.basis).toBe('sixths');
    const steady = report.memory.nodes.find((n) => n.id === report.steadyNode);
    expect(steady?.judged).toBe(true);
    expect(steady?.ratio).toBeCloseTo((steady?.lateBytes ?? NaN) / (steady?.earlyBytes ?? NaN));
    expect(report.verdict.memoryFlat).toBe(report.memory.nodes.every((n) => !n.judged || (n.ratio ?? Infinity) <= 1.1));
    expect(report.markers.filter((m) => m.ms !== null).length).toBeGreaterThan(10);

    expect(page).toContain('<svg');
    expect(page).not.toMatch(/https?:\/\//);
  });

  it('refuses bad flags with exit 2 and one line', async () => {
    const run = await soak('--duration', 'forever');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--duration must be a duration');
    expect(await readdir(run.out)).toEqual([]);
  });
});
