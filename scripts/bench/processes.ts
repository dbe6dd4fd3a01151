import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

/** A server process pinned to one core, stopped by its PID. */
export interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Every server started and not yet stopped, so a failing run still stops them all. */
const running = new Set<Server>();

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

/** Start `node [nodeFlags] --import tsx <script> args` on core `cpu` and wait until GET /readyz answers 200. */
export async function startPinned(cpu: number, script: string, args: readonly string[], port: number, nodeFlags: readonly string[] = []): Promise<Server> {
  const server = await launch(cpu, script, args, port, nodeFlags);
  running.add(server);
  return server;
}

async function launch(cpu: number, script: string, args: readonly string[], port: number, nodeFlags: readonly string[]): Promise<Server> {
  const child = spawn('taskset', ['-c', String(cpu), process.execPath, ...nodeFlags, '--import', 'tsx', script, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      running.delete(server);
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
  const server: Server = { url, child, stop };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited early: ${stderr}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${script} not ready in time: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return server;
}

/**
 * Set the nice value of every thread of process `pid` (renice of a PID alone
 * reaches only its main thread on Linux). Raising priority needs root; where
 * it is refused the bench goes on and says so.
 */
export function setNice(pid: number, nice: number): boolean {
  try {
    const threads = readdirSync(`/proc/${pid}/task`);
    execFileSync('renice', ['-n', String(nice), '-p', ...threads], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** Resident set size in MB. The node process is the taskset child's exec'd image, so the PID is the same. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
  return kb / 1024;
}

/** What a bench row that starts its own servers is given: where their data goes, the cores, and the shape of a measurement. */
export interface RowOptions {
  /** Where the nodes' data directories go. */
  readonly work: string;
  readonly serverCpu: number;
  readonly loadCpu: number;
  readonly durationS: number;
  readonly connections: number;
  readonly rounds: number;
  readonly say: (line: string) => void;
}

/**
 * Wait until process `pid` is idle (under a tenth of a core over half a
 * second), at most `maxMs`: a node started on a big seeded directory goes
 * on compacting LevelDB (the expired buckets it deleted) for a while after it
 * is ready, on its own core, and that must not be billed to the first load.
 * Returns how long it waited.
 */
export async function waitForIdle(pid: number, maxMs = 60_000): Promise<number> {
  const started = Date.now();
  let last = cpuSeconds(pid);
  while (Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = cpuSeconds(pid);
    if (now - last < 0.05) break;
    last = now;
  }
  return Date.now() - started;
}
