/**
 * `npm run partition` end to end: the real script, a real cluster of node
 * processes behind TCP fault proxies, real kill -9, and the JSON report it
 * writes. Short runs (a few seconds of load each) to fit the CI budget.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ExperimentReport } from '../../scripts/partition/report.ts';
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

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly out: string;
}

/** Run the partition script in its own process group (so cleanup reaches the nodes it starts too). */
async function partition(...args: string[]): Promise<Run> {
  const out = await makeTempDir('hitmesh-reports-');
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/partition.ts', ...args, '--out', out], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) groups.add(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr, out };
}

async function reportFiles(dir: string): Promise<{ json: ExperimentReport; html: string }> {
  const files = await readdir(dir);
  const json = files.find((f) => f.endsWith('.json'));
  const html = files.find((f) => f.endsWith('.html'));
  if (json === undefined || html === undefined) throw new Error(`no report in ${dir}: ${files.join(', ')}`);
  return { json: JSON.parse(await readFile(join(dir, json), 'utf8')) as ExperimentReport, html: await readFile(join(dir, html), 'utf8') };
}

/** The guarantees, asserted on the report's own numbers rather than on its verdict alone. */
function expectGuaranteesHeld(report: ExperimentReport): void {
  expect(report.checks.violations).toEqual([]);
  expect(report.checks.total).toBe(report.settings.nodes * report.settings.keys * 2);
  expect(report.convergence.converged).toBe(true);
  expect(report.convergence.ms).not.toBeNull();
  expect(report.ok).toBe(true);
  const { acked, unknown, failed, sent } = report.hits;
  expect(acked + unknown + failed).toBe(sent);
  expect(acked).toBeGreaterThan(0);
  // Converged: every node ends with the same total, every acked hit in it, at most the unknown ones more.
  const finals = new Set(report.nodes.map((n) => n.finalCount));
  expect(finals.size).toBe(1);
  for (const node of report.nodes) {
    expect(node.finalCount).toBeGreaterThanOrEqual(acked);
    expect(node.finalCount).toBeLessThanOrEqual(acked + unknown);
  }
}

describe('npm run partition', () => {
  it('split: both sides take hits through the cut; after the heal no acked hit is lost, none double counted, converged', async () => {
    const run = await partition('split', '--nodes', '3', '--duration', '4', '--rate', '150', '--keys', '10', '--quiet');
    expect(run.code, run.stderr).toBe(0);
    const { json: report, html } = await reportFiles(run.out);
    expectGuaranteesHeld(report);
    expect(report.experiment).toBe('split');
    // The cut was real: one span covering the fault phase, and during it the two sides' counts diverged.
    expect(report.faults).toHaveLength(1);
    const fault = report.faults[0];
    expect(fault?.label).toMatch(/^cut \{.+\} \| \{.+\}$/);
    const during = report.timeline.atMs.flatMap((t, i) => (fault !== undefined && t > fault.fromMs + 500 && t < fault.toMs ? [i] : []));
    expect(during.length).toBeGreaterThan(0);
    const diverged = during.some((i) => new Set(Object.values(report.timeline.counts).map((series) => series[i])).size > 1);
    expect(diverged).toBe(true);
    // Every node took hits on its own side.
    for (const node of report.nodes) expect(node.acked).toBeGreaterThan(0);
    // The summary on stdout, and an HTML page that needs no network.
    expect(run.stdout).toContain('PASS: no acknowledged hit lost, none counted twice');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('crash: a node killed with -9 under load and restarted loses nothing it acknowledged', async () => {
    const run = await partition('crash', '--nodes', '3', '--duration', '5', '--rate', '150', '--keys', '10', '--quiet');
    expect(run.code, run.stderr).toBe(0);
    const { json: report } = await reportFiles(run.out);
    expectGuaranteesHeld(report);
    const killed = report.events.find((e) => e.label.startsWith('kill -9'));
    expect(killed?.node).toBeDefined();
    const victim = report.nodes.find((n) => n.id === killed?.node);
    // While it was down its clients were refused, and it took hits again once restarted.
    expect(victim?.failed).toBeGreaterThan(0);
    expect(report.events.some((e) => e.label === `${killed?.node} ready`)).toBe(true);
    expect(report.nodes.filter((n) => n.id !== victim?.id).every((n) => n.failed === 0)).toBe(true);
  });

  it('split --continuous: the load runs through the heal; every node agrees on the closed ranges while it runs, none out of bounds', async () => {
    const run = await partition('split', '--continuous', '--nodes', '3', '--duration', '4', '--rate', '150', '--keys', '10', '--quiet');
    expect(run.code, run.stderr).toBe(0);
    const { json: report, html } = await reportFiles(run.out);
    expectGuaranteesHeld(report);
    expect(report.settings.continuous).toBe(true);
    const continuous = report.continuous;
    if (continuous === undefined) throw new Error('no continuous checks in the report');
    const { healAtMs } = report.convergence;
    // The load went on through the heal and the tail: hits were acknowledged well after the heal.
    expect(report.loadEndMs).toBeGreaterThanOrEqual(healAtMs + (report.convergence.ms ?? 0) + continuous.tailMs);
    const ackedAt = (ms: number): number => report.timeline.acked[report.timeline.atMs.findIndex((t) => t >= ms)] ?? 0;
    expect(ackedAt(healAtMs + 2_000)).toBeGreaterThan(ackedAt(healAtMs) + 100);
    // Convergence was measured on [fault start, heal second + 1 s), and only once that range was closed.
    const fault = report.faults[0];
    expect(continuous.convergeRange.fromMs).toBeLessThanOrEqual(fault?.fromMs ?? NaN);
    expect(continuous.convergeRange.toMs).toBeGreaterThan(healAtMs);
    expect(continuous.convergeRange.toMs).toBeLessThanOrEqual(healAtMs + 1_000);
    expect(continuous.ranges).toHaveLength(3);
    for (const range of continuous.ranges) {
      expect(range.agreedAtMs, range.label).not.toBeNull();
      expect(range.agreedAtMs ?? 0).toBeGreaterThanOrEqual(range.closedAtMs);
      expect(range.closedAtMs).toBeGreaterThanOrEqual(range.toMs);
      expect(range.violations).toEqual([]);
    }
    expect(healAtMs + (report.convergence.ms ?? NaN)).toBe(continuous.ranges[0]?.agreedAtMs);
    // The later ranges run past the heal into the load that followed it.
    expect(continuous.ranges[1]?.toMs).toBeGreaterThan(healAtMs + 2_000);
    expect(continuous.ranges[2]?.fromMs).toBeLessThanOrEqual(0);
    expect(continuous.settledMs).not.toBeNull();
    // The cut still diverged the sides while it held.
    const during = report.timeline.atMs.flatMap((t, i) => (fault !== undefined && t > fault.fromMs + 500 && t < fault.toMs ? [i] : []));
    expect(during.some((i) => new Set(Object.values(report.timeline.counts).map((series) => series[i])).size > 1)).toBe(true);
    expect(run.stdout).toContain(', continuous load');
    expect(run.stdout).toContain('PASS: no acknowledged hit lost, none counted twice, converged in');
    expect(html).toContain('continuous through the heal');
  });

  it('refuses bad flags with exit 2 and one clear line', async () => {
    const run = await partition('bridge', '--nodes', '2');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('bridge needs at least 3 nodes');
    const unknown = await partition('teleport');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown experiment "teleport"');
  });
});
