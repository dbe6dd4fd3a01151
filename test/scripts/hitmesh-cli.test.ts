/**
 * The `hitmesh` command line as a user runs it: a child process
 * (`node --import tsx scripts/cli/main.ts ...`) against real nodes on
 * 127.0.0.1, every process stopped by its PID afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort, getJson, killAllNodes, lifetimeCount, makeTempDir, removeTempDirs, sleep, spawnNode, type NodeProcess } from '../process/node-process.ts';


interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<ChildProcess>();

/** Environment without the variables the CLI reads, so only what a test sets counts. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ['HITMESH_URL', 'HITMESH_API_TOKEN']) if (!(name in extra)) delete env[name];
  return env;
}

interface CliProcess {
  readonly child: ChildProcess;
  readonly done: Promise<CliRun>;
  /** stdout so far. */
  output(): string;
}

function startCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cli/main.ts', ...args], { cwd: REPO_ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, output: () => stdout };
}

function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  return startCli(args, env).done;
}

/** SIGKILL every CLI process still running, by its PID; for afterEach. */
function killRunningClis(): void {
  for (const child of running) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
}

/** The lines of a --json run, each parsed. */
function jsonLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
}

function oneLine(text: string): string {
  const lines = text.split('\n').filter((l) => l !== '');
  expect(lines, text).toHaveLength(1);
  return lines[0] ?? '';
}

afterEach(() => killRunningClis());

describe('hitmesh command line: usage', () => {
  it.each([
    [[], 'no command'],
    [['bogus'], 'unknown command'],
    [['count'], 'needs KEY'],
    [['hit', 'home', '-n', '0'], '-n must be an integer'],
    [['hit', 'home', '--nope'], 'Unknown option'],
    [['count', 'home', 'extra'], 'unexpected argument'],
    [['count', 'home', '--window', '500ms'], '--window'],
    [['top', '-k', '1001'], '-k must be'],
    [['load', '--duration', '1s'], 'load needs --rate'],
    [['watch', 'home', '--interval', 'soon'], '--interval'],
    [['count', 'home', '--url', 'ftp://x'], '--url'],
  ])('%j exits 2 with one line naming the problem and --help', async (args, problem) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    const line = oneLine(run.stderr);
    expect(line).toContain(problem);
    expect(line).toMatch(/^hitmesh: .*\(see hitmesh .*--help\)$/);
  });

  it('--help overall and per command exit 0 and say the exit codes; --version is package.json\'s', async () => {
    const overall = await runCli(['--help']);
    expect(overall.code).toBe(0);
    for (const name of ['hit', 'count', 'top', 'cluster', 'watch', 'load']) expect(overall.stdout).toContain(`  ${name} `);
    const watch = await runCli(['watch', '--help']);
    expect(watch.code).toBe(0);
    expect(watch.stdout).toContain('usage: hitmesh watch KEY');
    expect(watch.stdout).toMatch(/SIGINT.*exit status 0/);
    const version = await runCli(['--version']);
    const pkg = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(`hitmesh ${pkg.version}`);
  });

  it('an unreachable --url exits 1 with one line naming it', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await runCli(['count', 'home', '--url', url, '--timeout', '2s']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const line = oneLine(run.stderr);
    expect(line).toMatch(/^hitmesh: cannot reach /);
    expect(line).toContain(url);
    expect(line).toContain('ECONNREFUSED');
  });
});

describe('hitmesh command line: one node', () => {
  let node: NodeProcess;

  beforeAll(async () => {
    node = await spawnNode({ id: 'c1', dataDir: `${await makeTempDir('hitmesh-cli-')}/c1` });
  });
  afterAll(async () => {
    await killAllNodes();
    await removeTempDirs();
  });

  it('hit, then count and top show it, as tables and as --json', async () => {
    const hit = await runCli(['hit', 'page/a', '-n', '3', '--url', node.url]);
    expect(hit.code, hit.stderr).toBe(0);
    expect(hit.stdout).toMatch(/^page\/a \+3 on c1 at \d{4}-/);
    const hitJson = await runCli(['hit', 'page/a', '--json', '--url', node.url]);
    expect(JSON.parse(hitJson.stdout)).toMatchObject({ key: 'page/a', n: 1, node: 'c1' });

    const count = await runCli(['count', 'page/a', '--window', 'all', '--url', node.url]);
    expect(count.code, count.stderr).toBe(0);
    expect(count.stdout.split('\n')[1]).toMatch(/^page\/a\s+all\s+4\s+c1\s+synced 0\/0/);
    const countJson = await runCli(['count', 'page/a', '--window', '5m', '--json', '--url', node.url]);
    expect(JSON.parse(countJson.stdout)).toMatchObject({ key: 'page/a', count: 4, window: '5m', node: 'c1' });

    await runCli(['hit', 'page/b', '--url', node.url]);
    const top = await runCli(['top', '--prefix', 'page/', '--url', node.url]);
    expect(top.code, top.stderr).toBe(0);
    const rows = top.stdout.split('\n');
    expect(rows[1]).toMatch(/^1\s+page\/a\s+4$/);
    expect(rows[2]).toMatch(/^2\s+page\/b\s+1$/);
    expect(top.stdout).toContain('exact');
    const topJson = await runCli(['top', '-k', '1', '--prefix', 'page/', '--window', 'all', '--json', '--url', node.url]);
    expect(JSON.parse(topJson.stdout)).toMatchObject({ top: [{ key: 'page/a', count: 4 }], k: 1, exact: true });
  });

  it('takes the node from HITMESH_URL, and an --idempotency-key counts once', async () => {
    const env = { HITMESH_URL: node.url };
    const answers: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await runCli(['hit', 'once', '-n', '2', '--idempotency-key', 'tok-1', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      answers.push(run.stdout.trim());
    }
    expect(JSON.parse(answers[1] ?? '')).toMatchObject({ duplicate: true });
    const count = await runCli(['count', 'once', '--window', 'all', '--json'], env);
    expect(JSON.parse(count.stdout), answers.join('\n')).toMatchObject({ count: 2 });
  });

  it('an error answer exits 1 with the node\'s reason', async () => {
    // The CLI does not check --prefix itself, so the node's 400 for one over 256 bytes is what it reports.
    const run = await runCli(['top', '--prefix', 'x'.repeat(300), '--url', node.url]);
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toMatch(/^hitmesh: .*answered 400: /);
  });

  it('load --json: a progress line per second, and a summary whose acked is what the node counted', async () => {
    const run = await runCli(['load', '--rate', '200', '--duration', '2s', '--keys', '7', '--prefix', 'ld-', '--json', '--url', node.url]);
    expect(run.code, run.stderr).toBe(0);
    const lines = jsonLines(run.stdout) as Record<string, Record<string, unknown>>[];
    expect(lines.slice(0, -1).every((l) => 'progress' in l)).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const summary = lines.at(-1)?.summary as { planned: number; sent: number; acked: number; failed: number; unknown: number; latency: { p50Ms: number; p99Ms: number }; ackedByKey: Record<string, number> };
    expect(summary.planned).toBe(400);
    expect(summary.sent).toBe(400);
    expect(summary.acked + summary.failed + summary.unknown).toBe(summary.sent);
    expect(summary.acked).toBeGreaterThan(0);
    expect(summary.latency.p99Ms).toBeGreaterThanOrEqual(summary.latency.p50Ms);
    let total = 0;
    for (let i = 0; i < 7; i++) {
      const count = await lifetimeCount(node, `ld-${i}`);
      expect(count).toBe(summary.ackedByKey[`ld-${i}`] ?? 0);
      total += count;
    }
    expect(total).toBe(summary.acked);
  });

  it('watch prints an update per interval for every node and stops with exit 0 on SIGINT', async () => {
    await runCli(['hit', 'watched', '-n', '5', '--url', node.url]);
    const down = `http://127.0.0.1:${await freePort()}`;
    const watch = startCli(['watch', 'watched', '--interval', '200ms', '--json', '--url', node.url, '--url', down, '--timeout', '1s']);
    const until = Date.now() + 20_000;
    while (jsonLines(watch.output()).length < 2 && Date.now() < until) await sleep(50);
    const pid = watch.child.pid;
    if (pid === undefined) throw new Error('no pid for watch');
    process.kill(pid, 'SIGINT');
    const run = await watch.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const lines = jsonLines(run.stdout) as Record<string, unknown>[];
    const updates = lines.slice(0, -1) as { nodes: { url: string; answer?: { count: number }; error?: string }[] }[];
    expect(updates.length).toBeGreaterThanOrEqual(2);
    for (const update of updates) {
      expect(update.nodes.map((n) => n.url)).toEqual([node.url, down]);
      expect(update.nodes[0]?.answer?.count).toBe(5);
      expect(update.nodes[1]?.error).toContain('ECONNREFUSED');
    }
    expect(lines.at(-1)).toMatchObject({ summary: { key: 'watched', updates: updates.length, stoppedBy: 'SIGINT' } });
  });
});

describe('hitmesh command line: a 2-node cluster', () => {
  afterAll(async () => {
    await killAllNodes();
    await removeTempDirs();
  });

  it('cluster lists both members, as a table and as --json', async () => {
    const dir = await makeTempDir('hitmesh-cli-');
    const a = await spawnNode({ id: 'm1', dataDir: `${dir}/m1` });
    const b = await spawnNode({ id: 'm2', dataDir: `${dir}/m2`, extraArgs: ['--peers', `127.0.0.1:${a.port}`] });
    // Wait until m1 sees m2 up, as gossip makes it.
    const until = Date.now() + 20_000;
    for (;;) {
      const cluster = (await getJson(`${a.url}/cluster`)) as { peers: { id: string; state: string }[] };
      if (cluster.peers.some((p) => p.id === 'm2' && p.state === 'up')) break;
      if (Date.now() > until) throw new Error(`m2 never up on m1: ${JSON.stringify(cluster)}`);
      await sleep(100);
    }
    const table = await runCli(['cluster', '--url', a.url]);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.split('\n');
    expect(rows[0]).toMatch(/^id\s+state\s+address\s+last contact\s+replication lag\s+clock offset$/);
    expect(rows[1]).toMatch(new RegExp(`^m1\\s+self\\s+127\\.0\\.0\\.1:${a.port}\\s`));
    expect(rows[2]).toMatch(new RegExp(`^m2\\s+up\\s+127\\.0\\.0\\.1:${b.port}\\s+\\S+ ago\\s`));
    expect(table.stdout).toContain('2 members, majority 2');
    const json = await runCli(['cluster', '--json', '--url', b.url]);
    const answer = JSON.parse(json.stdout) as { node: { id: string }; members: { ids: string[] } };
    expect(answer.node.id).toBe('m2');
    expect(answer.members.ids).toEqual(['m1', 'm2']);
  });
});
