/**
 * `npm run partition` end to end: the real script, a real cluster of node
 * processes behind TCP fault proxies, real kill -9, and the JSON report it
 * writes. Short runs (a few seconds of load each) to fit the CI budget.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { findExperiment } from '../../scripts/partition/experiments.ts';
import type { ExperimentReport } from '../../scripts/partition/report.ts';
import { renderReportHtml } from '../../scripts/partition/report-html.ts';
import { renderReportText } from '../../scripts/partition/report-text.ts';
import { runExperiment } from '../../scripts/partition/run-experiment.ts';
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
  // Every key on every node over the lifetime, the checked window and one minute, hour and day bucket.
  expect(report.checks.total).toBe(report.settings.nodes * report.settings.keys * 5);
  expect(report.checks.ranges?.map((r) => r.window)).toEqual(['window', 'minute', 'hour', 'day']);
  // Every hit was checked by its id, on every node and range, and the keys against their ids.
  expect(report.checks.ids).toMatchObject({ sent: report.hits.sent, checked: report.hits.sent, complete: true, violations: 0, listed: 0 });
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

  it('fresh: over links delayed 300 ms, every write read at once at the level that must see it is seen, in the report and the HTML', async () => {
    const run = await partition('fresh', '--nodes', '3', '--duration', '8', '--rate', '100', '--keys', '10', '--quiet');
    expect(run.code, run.stderr).toBe(0);
    const { json: report, html } = await reportFiles(run.out);
    expectGuaranteesHeld(report);
    const fresh = report.fresh;
    if (fresh === undefined) throw new Error('no read-after-write probes in the report');
    expect(fresh.delayMs).toBe(300);
    for (const [pairing, tally] of Object.entries(fresh.byPairing)) {
      expect(tally.seen, pairing).toBeGreaterThan(0);
      expect(tally.missed, pairing).toBe(0);
      // Every probe waited for its quorum across a delayed link: a round trip at least.
      expect(tally.worstMs, pairing).toBeGreaterThanOrEqual(600);
    }
    expect(html).toContain('<h2>Read after write</h2>');
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

  // The mutation test of the check. Its control is the first test: the same experiment and flags, without the bug, passes.
  it('a planted bug confined to the hour tier (every hit counted twice there, gossiped so all nodes agree) fails the check on the hour range and nowhere else', async () => {
    const experiment = findExperiment('split');
    if (experiment === undefined) throw new Error('no split experiment');
    // Not imported here: importing it would patch this process's ReplicaState too.
    const fixture = fileURLToPath(new URL('../fixtures/double-hour-tier.ts', import.meta.url));
    const planted = new Set<string>();
    const report = await runExperiment(
      experiment,
      { nodes: 3, durationS: 4, rate: 150, keys: 10, seed: 1, cutMode: 'cut', convergeLimitS: 30, continuous: false },
      {
        nodeArgs: ['--import', fixture],
        nodeLine: (id, line) => {
          if (line.includes('planted bug: hour tier counts every hit twice')) planted.add(id);
        },
      },
    );
    // The patch ran inside every node process (same module instance as the node's own), not only in this one.
    expect([...planted].sort()).toEqual(['n1', 'n2', 'n3']);
    expect(report.ok).toBe(false);
    expect(report.convergence.converged).toBe(true);
    const { violations, ids } = report.checks;
    // Only the hour range is wrong: the lifetime, the window of seconds, the minute and the day all hold.
    expect(new Set(violations.map((v) => `${v.window} ${v.kind}`))).toEqual(new Set(['hour double-counted']));
    // On the experiment keys, every node counts twice what was acked in that hour.
    const keyViolations = violations.filter((v) => !v.key.startsWith('id-'));
    expect(keyViolations.length).toBeGreaterThan(0);
    for (const v of keyViolations) {
      expect(v.count).toBeGreaterThanOrEqual(2 * v.acked);
      expect(v.count).toBeLessThanOrEqual(2 * (v.acked + v.unknown));
    }
    const hourStart = report.checks.ranges?.find((r) => r.window === 'hour')?.epochFromMs ?? NaN;
    const wholeRunInOneHour = Date.parse(report.startedAt) >= hourStart && Date.parse(report.startedAt) + report.loadEndMs + 1_000 < hourStart + 3_600_000;
    if (wholeRunInOneHour && report.hits.unknown === 0) {
      for (const v of keyViolations) expect(v.count).toBe(2 * v.acked);
      expect(keyViolations).toHaveLength(3 * 10);
    }
    // And every id stamped in the hour counts 2 there, on every node.
    const idViolations = violations.filter((v) => v.key.startsWith('id-'));
    expect(idViolations.length).toBeGreaterThan(0);
    for (const v of idViolations) expect([v.count, v.acked, v.unknown]).toEqual([2, 1, 0]);
    expect(ids?.violations).toBeGreaterThanOrEqual(ids?.listed ?? Infinity);
    if (wholeRunInOneHour) expect(ids?.violations).toBe(3 * (ids?.acked ?? NaN));
    const text = renderReportText(report);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^FAIL: hits counted twice/);
    expect(text).toMatch(/^ {2}ids: (\d+) of \1 hits checked one by one on every node and range .*; \d+ id violations, 100 listed$/m);
    expect(text).toMatch(/double-counted +n\d {2}key "key-00\d" {2}window hour +count \d+, acked \d+, unknown \d+/);
    expect(renderReportHtml(report)).toMatch(/<td>double-counted<\/td><td>n\d<\/td><td><code>id-n\d-\d+<\/code><\/td><td>hour<\/td><td class="num">2<\/td>/);
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
