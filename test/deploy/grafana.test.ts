/**
 * deploy/grafana/hitmesh.json names only metrics a node really exposes: every
 * metric in every panel's PromQL is looked up in the /metrics scrape of a real
 * 2-node cluster (in-process, on loopback) that has taken hits and synced.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../../node/start-node.ts';
import { peersOf, startInProcess } from '../node/in-process-node.ts';

interface Target {
  readonly refId?: string;
  readonly expr?: string;
  readonly datasource?: { readonly uid?: string };
}
interface Panel {
  readonly type: string;
  readonly title?: string;
  readonly datasource?: { readonly uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
}
interface Dashboard {
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly type: string; readonly query?: unknown; readonly definition?: string }[] };
}

const DASHBOARD_FILE = new URL('../../deploy/grafana/hitmesh.json', import.meta.url);
/** A bound on a few 100 ms sync rounds on 2 busy cores, not a speed claim. */
const SETTLE_MS = 20_000;

/** Panels, including those nested in collapsed rows. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const NOT_METRICS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan']);

/** The metric (series) names a PromQL expression selects: functions, label matchers, ranges, label lists and keywords taken out. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  // Not inside a number (0.5, 1e3), a duration (5m) or a $variable.
  for (const m of bare.matchAll(/(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const followedBy = bare.slice(m.index + m[0].length);
    if (/^\s*\(/.test(followedBy) || NOT_METRICS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/**
 * Names not in a text exposition: each must be a `# TYPE` family, or
 * family_bucket / _sum / _count of a histogram (or _sum / _count of a summary),
 * and have at least one sample.
 */
function missingFrom(exposition: string, names: readonly string[]): string[] {
  const types = new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? ''] as const));
  return names.filter((name) => {
    const part = /^(.*)_(bucket|sum|count)$/.exec(name);
    const familyType = part === null ? undefined : types.get(part[1] ?? '');
    const known = types.has(name) || familyType === 'histogram' || (familyType === 'summary' && part?.[2] !== 'bucket');
    const sampled = new RegExp(`^${name}[{ ]`, 'm').test(exposition);
    return !known || !sampled;
  });
}

describe('the PromQL metric extractor', () => {
  it('keeps metric names and drops functions, labels, ranges, keywords and numbers', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, route) (rate(made_up_seconds_bucket{node=~"$node", route!="/x"}[$__rate_interval])))')).toEqual(['made_up_seconds_bucket']);
    expect(metricNames('sum(rate(a_total[5m] offset 1h)) by (node) / on (node) group_left(peer) b_gauge > bool 1e3')).toEqual(['a_total', 'b_gauge']);
  });

  it('reports a name the exposition lacks, a histogram named without a suffix, and a family with no sample', () => {
    const text = ['# TYPE h histogram', 'h_bucket{le="1"} 1', 'h_sum 1', 'h_count 1', '# TYPE c_total counter', 'c_total 3', '# TYPE g gauge'].join('\n');
    expect(missingFrom(text, ['h_bucket', 'h_sum', 'h_count', 'c_total'])).toEqual([]);
    expect(missingFrom(text, ['made_up_metric_total', 'h', 'g', 'c_total_bucket'])).toEqual(['made_up_metric_total', 'h', 'g', 'c_total_bucket']);
  });
});

describe('deploy/grafana/hitmesh.json', () => {
  let dashboard: Dashboard;
  let dir: string;
  const running: RunningNode[] = [];

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as Dashboard;
    dir = await mkdtemp(join(tmpdir(), 'hitmesh-grafana-'));
  });

  afterAll(async () => {
    await Promise.all(running.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  const start = (id: string, peers: readonly RunningNode[]): Promise<RunningNode> =>
    startInProcess(running, dir, id, ['--host', '127.0.0.1', '--secret', 'grafana-test-secret', '--sync-interval', '100ms', ...peersOf(peers)]);

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    const end = Date.now() + SETTLE_MS;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`not within ${SETTLE_MS} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const text = async (url: string, init?: RequestInit): Promise<string> => (await fetch(url, init)).text();

  it('has a title on every panel, schemaVersion 39, the DS_PROMETHEUS datasource variable and a node variable', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const panels = allPanels(dashboard.panels);
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) expect(panel.title?.trim(), JSON.stringify(panel).slice(0, 120)).toBeTruthy();
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('node')?.definition).toMatch(/^label_values\(\w+, node\)$/);
    // Every query goes to the chosen datasource.
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid ?? panel.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
    }
  });

  it('names only metrics that a node of a running cluster exposes, with samples, labelled by node', async () => {
    const n1 = await start('n1', []);
    const n2 = await start('n2', [n1]);
    const upPeers = async (node: RunningNode): Promise<number> =>
      (JSON.parse(await text(`${node.url}/cluster`)) as { peers: { state: string }[] }).peers.filter((p) => p.state === 'up').length;
    await until('both nodes see each other up', async () => (await upPeers(n1)) === 1 && (await upPeers(n2)) === 1);
    for (const node of [n1, n2]) {
      for (let i = 0; i < 3; i += 1) expect(JSON.parse(await text(`${node.url}/hit/dash?n=2`, { method: 'POST' }))).toMatchObject({ n: 2 });
    }
    // An error answer, for the errors-by-status panel.
    expect((await fetch(`${n1.url}/count/dash?window=not-a-window`)).status).toBe(400);
    await until('n1 counts n2\'s hits and has a clock sample from it', async () => {
      const count = (JSON.parse(await text(`${n1.url}/count/dash?window=all`)) as { count: number }).count;
      return count === 12 && /^hitmesh_gossip_clock_offset_seconds\{/m.test(await text(`${n1.url}/metrics`));
    });
    const exposition = await text(`${n1.url}/metrics`);

    const exprs = allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    const names = [...new Set(exprs.flatMap(metricNames))].sort();
    expect(names).toContain('hitmesh_hits_accepted_total');
    expect(names).toContain('process_cpu_seconds_total');
    expect(names.length).toBeGreaterThanOrEqual(12);
    expect(missingFrom(exposition, names)).toEqual([]);
    // The $node filter needs the node label on every series the dashboard reads.
    for (const name of names) expect(exposition, name).toMatch(new RegExp(`^${name}\\{[^}]*node="n1"`, 'm'));
    // And the check bites on this very scrape.
    expect(missingFrom(exposition, [...names, 'hitmesh_made_up_total'])).toEqual(['hitmesh_made_up_total']);
  });
});
