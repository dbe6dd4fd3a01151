/**
 * `scripts/cluster.ts` as a real program: it is spawned (in its own process
 * group, so cleanup can kill everything it started), its table of nodes is
 * read from stdout, and the nodes are reached over HTTP on 127.0.0.1. Every
 * process is stopped by PID or process group after each test, even when it
 * fails, and every temp dir is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST = '127.0.0.1';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Cleanup: process groups, node PIDs, listeners, temp dirs

const groups = new Set<number>();
const nodePids = new Set<number>();
const servers = new Set<Server>();
const tempDirs = new Set<string>();

afterEach(async () => {
  for (const pgid of groups) signal(-pgid, 'SIGKILL');
  // A node that somehow left our group (it should not) is still ours by PID; check it is a node before killing.
  for (const pid of nodePids) if (await isNodeProcess(pid)) signal(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  for (const pid of [...groups].map((g) => -g).concat([...nodePids])) {
    while (pid < 0 ? groupAlive(-pid) : await alive(pid)) {
      if (Date.now() > deadline) throw new Error(`process ${pid} still there after cleanup`);
      await sleep(20);
    }
  }
  groups.clear();
  nodePids.clear();
  await Promise.all([...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  servers.clear();
  await Promise.all([...tempDirs].map((dir) => rm(dir, { recursive: true, force: true })));
  tempDirs.clear();
});

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process exists and is not a zombie (Linux /proc). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function isNodeProcess(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('node/main.ts');
  } catch {
    return false;
  }
}

/** node/main.ts processes in a process group, from /proc. */
async function nodesInGroup(pgid: number): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && (await isNodeProcess(Number(entry)))) found.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return found;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-cluster-'));
  tempDirs.add(dir);
  return dir;
}

// ---------------------------------------------------------------------------
// Ports

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, HOST, () => resolve(server));
  });
}

/** A random base in 20000-60000 whose `count` consecutive ports are all free on 127.0.0.1 right now. */
async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768-60999): a port free now must not become the local end of some
    // other test's outgoing connection before the script binds it (that made this test flaky).
    const base = 10_000 + Math.floor(Math.random() * (22_000 - count));
    const probes = await Promise.all(Array.from({ length: count }, (_, i) => listen(base + i)));
    await Promise.all(probes.map((s) => new Promise<void>((resolve) => (s === undefined ? resolve() : s.close(() => resolve())))));
    if (probes.every((s) => s !== undefined)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** Hold a port with a listener until the test ends. */
async function holdPort(port: number): Promise<void> {
  const server = await listen(port);
  if (server === undefined) throw new Error(`could not listen on ${port}`);
  servers.add(server);
}

// ---------------------------------------------------------------------------
// The script as a process

interface Row {
  readonly id: string;
  readonly url: string;
  readonly data: string;
  readonly pid: number;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

class Run {
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    child.on('error', (error) => (this.stderr += `\n[spawn error] ${error.message}`));
    this.exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve((this.exit = { code, signal: sig }))));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('not spawned');
    return this.child.pid;
  }

  diagnostics(): string {
    return `exit: ${JSON.stringify(this.exit ?? 'running')}\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  /** Wait for the table of nodes (printed once all are ready) and parse it. */
  async table(deadlineMs = 30_000): Promise<Row[]> {
    const deadline = Date.now() + deadlineMs;
    while (!this.stdout.includes('Ctrl-C stops every node.')) {
      if (this.exit !== undefined) throw new Error(`the script exited before printing its table\n${this.diagnostics()}`);
      if (Date.now() > deadline) throw new Error(`no table within ${deadlineMs} ms\n${this.diagnostics()}`);
      await sleep(25);
    }
    const rows = [...this.stdout.matchAll(/^\s+(n\d+)\s+(http:\/\/127\.0\.0\.1:\d+)\s+(\S+)\s+(\d+)\s*$/gm)].map((m) => ({
      id: m[1] ?? '',
      url: m[2] ?? '',
      data: m[3] ?? '',
      pid: Number(m[4]),
    }));
    for (const row of rows) nodePids.add(row.pid);
    return rows;
  }

  async waitExit(deadlineMs = 20_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deadlineMs)));
    const exit = await Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
    if (exit === undefined) throw new Error(`did not exit within ${deadlineMs} ms\n${this.diagnostics()}`);
    return exit;
  }
}

const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HITMESH_')) env[k] = v;
  return env;
};

/** `node --import tsx scripts/cluster.ts <args>` in a new process group (the group id is its PID). */
function startScript(args: readonly string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', ...args], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(),
  });
  if (child.pid !== undefined) groups.add(child.pid);
  return new Run(child);
}

/** `npm run cluster -- <args>`, the way a user runs it, in a new process group led by npm. */
function startNpm(args: readonly string[]): Run {
  const child = spawn('npm', ['run', 'cluster', '--', ...args], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  if (child.pid !== undefined) groups.add(child.pid);
  return new Run(child);
}

/** Resolves once none of the PIDs is alive; throws with the survivors past the deadline. */
async function allGone(pids: readonly number[], deadlineMs = 15_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const left: number[] = [];
    for (const pid of pids) if (await alive(pid)) left.push(pid);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running: ${left.join(', ')}`);
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------
// HTTP (no keep-alive: an idle connection must not be what a node waits for when it stops)

function request(method: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

async function hit(url: string, key: string, n: number): Promise<void> {
  const res = await request('POST', `${url}/hit/${key}?n=${n}`);
  expect(res.status, res.body).toBe(200);
}

async function count(url: string, key: string): Promise<number> {
  const res = await request('GET', `${url}/count/${key}?window=all`);
  expect(res.status, res.body).toBe(200);
  return (JSON.parse(res.body) as { count: number }).count;
}

/** Poll until every URL answers `expected` for the key. */
async function countsReach(urls: readonly string[], key: string, expected: number, deadlineMs = 5_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const counts = await Promise.all(urls.map((u) => count(u, key)));
    if (counts.every((c) => c === expected)) return;
    if (Date.now() > deadline) throw new Error(`counts of ${key} are ${JSON.stringify(counts)}, expected ${expected} everywhere`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------

describe('npm run cluster (scripts/cluster.ts)', () => {
  it('starts a meshed cluster, stops it on SIGTERM, keeps counts across restarts and drops them with --fresh', async () => {
    const base = await freeBasePort(3);
    const data = await tempDir();
    const args = ['--nodes', '3', '--base-port', String(base), '--data', data, '--log-level', 'warn'];

    const first = startScript(args);
    const rows = await first.table();
    expect(rows.map((r) => r.id)).toEqual(['n1', 'n2', 'n3']);
    expect(rows.map((r) => r.url)).toEqual([0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`));
    expect(rows.map((r) => r.data)).toEqual(['n1', 'n2', 'n3'].map((id) => join(data, id)));
    expect(first.stdout).toContain(`curl -X POST http://127.0.0.1:${base}/hit/home`);
    expect(first.stdout).toContain(`curl 'http://127.0.0.1:${base + 1}/count/home?window=all'`);
    expect(first.stderr).not.toContain('warning');
    // The PIDs are the nodes themselves, in the script's group (so Ctrl-C in a terminal reaches them).
    expect((await nodesInGroup(first.pid)).sort()).toEqual(rows.map((r) => r.pid).sort());
    const urls = rows.map((r) => r.url);

    await hit(urls[0] ?? '', 'home', 1);
    await hit(urls[0] ?? '', 'home', 4);
    await countsReach(urls, 'home', 5);

    process.kill(first.pid, 'SIGTERM');
    // Repeats while it stops are the same request, not a second shutdown or an error.
    await sleep(20);
    process.kill(first.pid, 'SIGTERM');
    process.kill(first.pid, 'SIGINT');
    expect(await first.waitExit(), first.diagnostics()).toEqual({ code: 0, signal: null });
    await allGone(rows.map((r) => r.pid));
    expect(first.stdout.match(/cluster: stopped/g)).toHaveLength(1);
    expect(first.stderr).toBe('');

    const second = startScript(args);
    const again = await second.table();
    expect(again.map((r) => r.url)).toEqual(urls);
    for (const url of urls) expect(await count(url, 'home')).toBe(5);
    process.kill(second.pid, 'SIGTERM');
    expect(await second.waitExit(), second.diagnostics()).toEqual({ code: 0, signal: null });
    await allGone(again.map((r) => r.pid));

    const fresh = startScript([...args, '--fresh']);
    const wiped = await fresh.table();
    for (const url of urls) expect(await count(url, 'home')).toBe(0);
    process.kill(fresh.pid, 'SIGTERM');
    expect(await fresh.waitExit(), fresh.diagnostics()).toEqual({ code: 0, signal: null });
    await allGone(wiped.map((r) => r.pid));
  });

  it('exits 2 with one line on stderr for a bad flag', async () => {
    for (const bad of [['--nodes', 'three'], ['--colour'], ['--base-port', '70000'], ['--log-level', 'loud']]) {
      const run = startScript(bad);
      expect(await run.waitExit(), run.diagnostics()).toEqual({ code: 2, signal: null });
      expect(run.stderr.trimEnd().split('\n'), run.diagnostics()).toHaveLength(1);
      expect(run.stderr).toMatch(/^cluster: .*--help/);
      expect(run.stdout).toBe('');
    }
  });

  it('exits 1 naming the port when one is taken, and leaves no node running', async () => {
    const base = await freeBasePort(3);
    await holdPort(base + 1);
    const run = startScript(['--nodes', '3', '--base-port', String(base), '--data', await tempDir(), '--log-level', 'warn']);
    expect(await run.waitExit(), run.diagnostics()).toEqual({ code: 1, signal: null });
    expect(run.stderr).toContain(`port ${base + 1}`);
    expect(run.stderr).toContain('in use');
    expect(run.stdout).not.toContain('Ctrl-C stops every node.');
    expect(await nodesInGroup(run.pid)).toEqual([]);
    expect(groupAlive(run.pid)).toBe(false);
  });

  it('through npm: SIGTERM to npm alone stops every node and npm exits', async () => {
    const base = await freeBasePort(2);
    const run = startNpm(['--nodes', '2', '--base-port', String(base), '--data', await tempDir(), '--log-level', 'warn']);
    const rows = await run.table();
    expect(rows.map((r) => r.id)).toEqual(['n1', 'n2']);
    process.kill(run.pid, 'SIGTERM');
    expect(await run.waitExit(), run.diagnostics()).toEqual({ code: 0, signal: null });
    await allGone(rows.map((r) => r.pid));
    // Nothing of the tree is left: not the script, not a shell.
    const deadline = Date.now() + 5_000;
    while (groupAlive(run.pid)) {
      if (Date.now() > deadline) throw new Error(`npm's process group still has processes\n${run.diagnostics()}`);
      await sleep(25);
    }
    expect(run.stdout).toContain('cluster: stopped');
  });
});
