/**
 * One hitmesh node as a child process of a script (`npm run cluster`, the
 * partition experiments): `node --import tsx node/main.ts <flags>`, with no
 * npm or tsx process in between, so the PID is the node itself and SIGKILL
 * reaches exactly it. The same node can be started again after it stopped or
 * was killed (same id, port and data dir), which is how experiments restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = 'node/main.ts';
const HOST = '127.0.0.1';

export interface LocalNodeOptions {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  /** Addresses (host:port) to dial: the --peers flag. */
  readonly peers: readonly string[];
  /** Passed in the environment (HITMESH_SECRET), not on the command line where `ps` shows it. */
  readonly secret?: string;
  readonly logLevel?: string;
  readonly extraArgs?: readonly string[];
  /**
   * Node.js flags before the main script, after `--import tsx` (so a TypeScript module given to `--import` here
   * loads through tsx, as one URL with the node's own imports): how a test preloads a module into a node.
   */
  readonly nodeArgs?: readonly string[];
  /** Every output line of the node, as it comes. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How long /readyz may take to answer 200 after a start. */
  readonly readyTimeoutMs?: number;
  /** Pin the process to this CPU (taskset, which execs the node: the PID stays the node's). For benchmarks. */
  readonly cpu?: number;
  /**
   * Run the node under libfaketime, its wall clock offset read live from `file` (setClockOffset writes it);
   * the monotonic clock is left alone, so timers and timeouts are not skewed.
   */
  readonly fakeClock?: FakeClock;
}

export interface FakeClock {
  /** Path of libfaketime.so.1 (Debian package faketime: /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1). */
  readonly library: string;
  /** A file this process owns; it holds the offset, e.g. "+2.000s". */
  readonly file: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Lines of stderr kept to explain a failed start. */
const STDERR_LINES_KEPT = 20;

export class LocalNode {
  private child: ChildProcess | undefined;
  private exit: Promise<ExitStatus> | undefined;
  /** Set when the current child has exited (or could not be spawned at all). */
  private exitStatus: ExitStatus | undefined;
  private stderrTail: string[] = [];
  private offsetMs = 0;

  constructor(readonly options: LocalNodeOptions) {}

  /** The wall-clock offset set by setClockOffset (0 without a fake clock). */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  /**
   * Move the node's wall clock to the machine's plus `ms`, live (it reads the file on every clock read).
   * Kept across restarts. Only with the fakeClock option.
   */
  async setClockOffset(ms: number): Promise<void> {
    const { fakeClock } = this.options;
    if (fakeClock === undefined) throw new Error(`${this.id} runs without a fake clock`);
    // Seconds with a '.' fraction: libfaketime reads "+250ms" as 250 minutes.
    await writeFile(fakeClock.file, `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(3)}s\n`);
    this.offsetMs = ms;
  }

  get id(): string {
    return this.options.id;
  }

  get url(): string {
    return `http://${HOST}:${this.options.port}`;
  }

  /** The PID of the running process, undefined when it is not running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitStatus === undefined;
  }

  /** Resolves when the current process exits; immediately if none runs. */
  exited(): Promise<ExitStatus> {
    return this.exit ?? Promise.resolve({ code: null, signal: null });
  }

  /** Spawn the node and wait until it answers /readyz with 200. Throws, with its stderr, if it exits or times out first. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.id} is already running`);
    const { options } = this;
    // Otherwise /readyz could be answered by whatever holds the port while our child fails to bind.
    if (!(await portIsFree(options.port))) throw new Error(`${this.id}: port ${options.port} on ${HOST} is already in use (another hitmesh still running?)`);
    const args = [
      '--import',
      'tsx',
      ...(options.nodeArgs ?? []),
      MAIN,
      '--id',
      options.id,
      '--host',
      HOST,
      '--port',
      String(options.port),
      '--data',
      options.dataDir,
      '--log-level',
      options.logLevel ?? 'info',
      ...(options.peers.length > 0 ? ['--peers', options.peers.join(',')] : []),
      ...(options.extraArgs ?? []),
    ];
    // Every node setting comes from the options: a HITMESH_* variable of the caller's shell (HITMESH_ADVERTISE,
    // HITMESH_PEERS, HITMESH_STATIC, …) would otherwise apply to every node alike, under the flags.
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('HITMESH_')) env[name] = value;
    if (options.secret !== undefined) env.HITMESH_SECRET = options.secret;
    if (options.fakeClock !== undefined) {
      await this.setClockOffset(this.offsetMs);
      Object.assign(env, {
        LD_PRELOAD: options.fakeClock.library,
        FAKETIME_TIMESTAMP_FILE: options.fakeClock.file,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        // The offset's decimal point, whatever the caller's locale.
        LC_NUMERIC: 'C',
      });
    }
    const [command, argv] = options.cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', String(options.cpu), process.execPath, ...args]];
    const child = spawn(command, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exitStatus = undefined;
    this.stderrTail = [];
    this.exit = new Promise<ExitStatus>((resolve) => {
      let settled = false;
      const settle = (status: ExitStatus): void => {
        if (settled) return;
        settled = true;
        if (this.child === child) this.exitStatus = status;
        resolve(status);
      };
      child.once('exit', (code, signal) => settle({ code, signal }));
      // Without a listener a failed spawn (EAGAIN, ENOMEM, …) would be thrown in the caller's process, and 'exit' never comes.
      child.on('error', (error) => {
        this.stderrTail.push(`[${error.message}]`);
        if (child.pid === undefined) settle({ code: null, signal: null });
      });
    });
    const lines = (stream: 'stdout' | 'stderr'): void => {
      const source = stream === 'stdout' ? child.stdout : child.stderr;
      if (source === null) return;
      createInterface({ input: source, crlfDelay: Infinity }).on('line', (line) => {
        if (stream === 'stderr') {
          this.stderrTail.push(line);
          if (this.stderrTail.length > STDERR_LINES_KEPT) this.stderrTail.shift();
        }
        options.onLine?.(line, stream);
      });
    };
    lines('stdout');
    lines('stderr');
    await this.waitReady(child, options.readyTimeoutMs ?? 60_000);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    const child = this.child;
    if (child === undefined || !this.running) return this.exited();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const status = await this.exited();
    clearTimeout(timer);
    return status;
  }

  /** kill -9: no shutdown of any kind. Resolves once the process is gone. */
  async kill(): Promise<ExitStatus> {
    if (this.child === undefined || !this.running) return this.exited();
    this.child.kill('SIGKILL');
    return this.exited();
  }

  private async waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: ExitStatus | undefined;
    void this.exited().then((status) => (exited = status));
    for (;;) {
      if (exited !== undefined) {
        throw new Error(`${this.id} exited (${exited.signal ?? `code ${exited.code}`}) before it was ready:\n${this.stderrTail.join('\n')}`);
      }
      if (await isReady(this.url)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${this.id} was not ready at ${this.url} within ${timeoutMs} ms:\n${this.stderrTail.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function isReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}
