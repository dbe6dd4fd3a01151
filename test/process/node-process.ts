/**
 * Process-level test helpers: run a real hitmesh node the way a user does
 * (`npm run node -- <flags>`), in its own process group, and stop it by PID.
 *
 * The process tree is npm → node (the script is `exec node --import tsx …`,
 * so the shell npm starts becomes the node). The child is spawned with
 * `detached: true`, so npm leads a new process group whose id is npm's PID;
 * `process.kill(-pgid, sig)` reaches every process of the tree.
 * Every group started here is remembered until it is known to be gone, so a
 * failing test can still stop everything with `killAllNodes()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where `npm run node` is run. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const HOST = '127.0.0.1';
/** Output kept per stream for diagnostics (the tail, if there is more). */
const MAX_CAPTURE_CHARS = 256 * 1024;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A free TCP port on 127.0.0.1: listen on port 0, read the port, close. */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port from the probe listener'));
        return;
      }
      const { port } = address;
      server.close((error) => (error === undefined ? resolve(port) : reject(error)));
    });
  });
}

// ---------------------------------------------------------------------------
// Temp dirs

const tempDirs = new Set<string>();

/** A new temp dir, removed by `removeTempDirs()`. */
export async function makeTempDir(prefix = 'hitmesh-proc-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  const dirs = [...tempDirs];
  tempDirs.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}

// ---------------------------------------------------------------------------
// Process groups

/** Whether any process of group `pgid` still exists (zombies not yet reaped count). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    // EPERM: a process of that group exists but is not ours; still alive.
    if (code === 'EPERM') return true;
    throw error;
  }
}

/** Signal the whole group; false if it was already gone. */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Resolves once no process of the group is left; throws after `deadlineMs`. */
export async function waitForGroupGone(pgid: number, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (groupAlive(pgid)) {
    if (Date.now() > until) {
      const left = await groupMembers(pgid).catch(() => []);
      throw new Error(`process group ${pgid} still has processes ${deadlineMs} ms after it was stopped: ${JSON.stringify(left)}`);
    }
    await sleep(25);
  }
}

export interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly state: string;
  readonly cmdline: string;
}

/** The processes of group `pgid`, from /proc (Linux). */
export async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  const found: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [state = '?', ppid = '0', pgrp = '0'] = rest;
      if (Number(pgrp) !== pgid) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      found.push({ pid: Number(entry), ppid: Number(ppid), pgid, state, cmdline });
    } catch {
      // The process went away while we looked.
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// Nodes

export interface NodeOptions {
  readonly id: string;
  readonly dataDir: string;
  /** A port to bind; a free one is picked when omitted. */
  readonly port?: number;
  readonly logLevel?: string;
  /** Overall deadline for /readyz to answer 200. */
  readonly readyDeadlineMs?: number;
  readonly extraArgs?: readonly string[];
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const liveGroups = new Map<number, NodeProcess>();

/** One `npm run node -- ...` process group. */
export class NodeProcess {
  private out = '';
  private err = '';
  private exitStatus: ExitStatus | undefined;
  /** Resolves when npm (the group leader) has exited. */
  readonly exited: Promise<ExitStatus>;

  private constructor(
    readonly child: ChildProcess,
    /** npm's PID, which is also the process group id. */
    readonly pid: number,
    readonly id: string,
    readonly port: number,
    readonly dataDir: string,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.out = capped(this.out + chunk);
    });
    child.stderr?.on('data', (chunk: string) => {
      this.err = capped(this.err + chunk);
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  get url(): string {
    return `http://${HOST}:${this.port}`;
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  get hasExited(): boolean {
    return this.exitStatus !== undefined;
  }

  /** What the process said, for failure messages. */
  diagnostics(): string {
    const status = this.exitStatus === undefined ? 'running' : `exited code=${String(this.exitStatus.code)} signal=${String(this.exitStatus.signal)}`;
    return `node ${this.id} (pgid ${this.pid}, port ${this.port}, ${status})\n--- stderr ---\n${this.err.trimEnd()}\n--- stdout ---\n${this.out.trimEnd()}`;
  }

  /** Spawn `npm run node -- ...` in a new process group (does not wait for readiness). */
  static spawn(options: NodeOptions & { readonly port: number }): NodeProcess {
    const args = [
      'run',
      'node',
      '--',
      '--id',
      options.id,
      '--port',
      String(options.port),
      '--data',
      options.dataDir,
      '--log-level',
      options.logLevel ?? 'warn',
      ...(options.extraArgs ?? []),
    ];
    const child = spawn('npm', args, {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
    });
    if (child.pid === undefined) throw new Error(`could not spawn npm for node ${options.id}`);
    const node = new NodeProcess(child, child.pid, options.id, options.port, options.dataDir);
    liveGroups.set(node.pid, node);
    // An 'error' event (e.g. npm missing) must not crash the worker; exit still follows or pid was undefined.
    child.on('error', (error) => {
      node.err = capped(`${node.err}\n[spawn error] ${error.message}\n`);
    });
    return node;
  }

  /** Poll GET /readyz until 200; throws with the node's output if the deadline passes or the node exits. */
  async waitReady(deadlineMs = 30_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    let last = 'no answer yet';
    for (;;) {
      if (this.hasExited) throw new Error(`node exited before it was ready (last /readyz: ${last})\n${this.diagnostics()}`);
      try {
        const res = await httpRequest('GET', `${this.url}/readyz`, { timeoutMs: 2_000 });
        if (res.status === 200) return;
        last = `${res.status} ${res.body}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > until) throw new Error(`node not ready within ${deadlineMs} ms (last /readyz: ${last})\n${this.diagnostics()}`);
      await sleep(100);
    }
  }

  /** kill -9 the whole group now (synchronous, so it can be called mid-load). */
  killNow(): void {
    signalGroup(this.pid, 'SIGKILL');
  }

  /** kill -9 the whole group, then wait until npm has exited and no process of the group is left. */
  async kill(deadlineMs = 10_000): Promise<ExitStatus> {
    this.killNow();
    return this.waitGone(deadlineMs);
  }

  /** Send `signal` to every process of the group (what Ctrl-C in a terminal does, with SIGINT). */
  signalGroup(signal: NodeJS.Signals): void {
    signalGroup(this.pid, signal);
  }

  /** The PID of the node process proper: the deepest process of the group running node/main.ts. */
  async nodePid(): Promise<number> {
    const members = (await groupMembers(this.pid)).filter((p) => p.cmdline.includes('node/main.ts'));
    const leaf = members.find((p) => !members.some((q) => q.ppid === p.pid));
    if (leaf === undefined) throw new Error(`no node/main.ts process in group ${this.pid}\n${this.diagnostics()}`);
    return leaf.pid;
  }

  /** Wait until npm exited and the group is empty; throws (after SIGKILLing what is left) past the deadline. */
  async waitGone(deadlineMs = 10_000): Promise<ExitStatus> {
    const until = Date.now() + deadlineMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), deadlineMs);
    });
    const status = await Promise.race([this.exited, deadline]).finally(() => clearTimeout(timer));
    try {
      if (status === undefined) throw new Error(`npm (pid ${this.pid}) did not exit within ${deadlineMs} ms\n${this.diagnostics()}`);
      await waitForGroupGone(this.pid, Math.max(until - Date.now(), 1_000));
      liveGroups.delete(this.pid);
      return status;
    } catch (error) {
      signalGroup(this.pid, 'SIGKILL');
      throw error;
    }
  }
}

function capped(text: string): string {
  return text.length > MAX_CAPTURE_CHARS ? text.slice(text.length - MAX_CAPTURE_CHARS) : text;
}

/**
 * Start a node and wait until it is ready. With no `port`, a free one is
 * picked, and a start that loses the port to someone else is retried.
 */
export async function spawnNode(options: NodeOptions): Promise<NodeProcess> {
  const attempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const node = NodeProcess.spawn({ ...options, port });
    try {
      await node.waitReady(options.readyDeadlineMs ?? 30_000);
      return node;
    } catch (error) {
      await node.kill().catch(() => undefined);
      if (attempt < attempts && node.stderr.includes('EADDRINUSE')) continue;
      throw error;
    }
  }
}

/** SIGKILL every group still known here and wait for each to be gone; for afterEach/afterAll. */
export async function killAllNodes(): Promise<void> {
  const nodes = [...liveGroups.values()];
  const results = await Promise.allSettled(nodes.map((node) => node.kill()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw new AggregateError(failed.map((r): unknown => r.reason), 'some node process groups could not be stopped');
}

/** Groups started here and not yet seen gone. */
export function liveNodeCount(): number {
  return liveGroups.size;
}

// Last resort if the worker exits with groups still running (e.g. a hook timed out).
process.once('exit', () => {
  for (const pgid of liveGroups.keys()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

// ---------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface RequestOptions {
  readonly agent?: http.Agent;
  readonly timeoutMs?: number;
}

/**
 * One HTTP request; resolves with the full answer, rejects with the socket
 * error (code ECONNREFUSED, ECONNRESET, ...) if there is no complete answer.
 */
export function httpRequest(method: string, url: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = http.request(url, { method, agent: options.agent ?? false, timeout: options.timeoutMs ?? 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

export async function getJson(url: string, options: RequestOptions = {}): Promise<unknown> {
  const res = await httpRequest('GET', url, options);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as unknown;
}

export interface Health {
  readonly status: string;
  readonly node: string;
  readonly incarnation: string;
}

export async function health(node: NodeProcess): Promise<Health> {
  const value = await getJson(`${node.url}/healthz`);
  const { status, node: id, incarnation } = (value ?? {}) as Record<string, unknown>;
  if (typeof status !== 'string' || typeof id !== 'string' || typeof incarnation !== 'string') {
    throw new Error(`unexpected /healthz answer: ${JSON.stringify(value)}`);
  }
  return { status, node: id, incarnation };
}

/** GET /count/<key>?window=all */
export async function lifetimeCount(node: NodeProcess, key: string): Promise<number> {
  const value = await getJson(`${node.url}/count/${encodeURIComponent(key)}?window=all`);
  const count = (value as { count?: unknown } | null)?.count;
  if (typeof count !== 'number' || !Number.isInteger(count)) throw new Error(`unexpected /count answer: ${JSON.stringify(value)}`);
  return count;
}
