/**
 * Connection limits and timeouts on a real node process (SPEC section 2,
 * issue 9): --max-connections holds that many connections and closes the
 * rest as they come; silent and dribbling clients are cut at the header
 * timeout (with a 408 where a request had begun); and an open-files limit
 * too small for --max-connections lowers the effective limit, so sockets
 * can no longer take the descriptors the store needs, or stops the start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, httpRequest, makeTempDir, removeTempDirs, REPO_ROOT, sleep, type HttpAnswer } from './node-process.ts';

const HOST = '127.0.0.1';
/** The defaults under test (README, Limits): headers within 10 s, enforced every second. */
const HEADERS_TIMEOUT_MS = 10_000;
const CHECK_INTERVAL_MS = 1_000;

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  readonly base: string;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}

const children: ChildProcess[] = [];
const sockets: Socket[] = [];

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await removeTempDirs();
});

/** `node node/main.ts <flags>` on a free port, under prlimit with `limits` if any; the PID is the node's. */
async function startProcess(limits: readonly string[], flags: readonly string[]): Promise<Started> {
  const dir = await makeTempDir('hitmesh-limits-');
  const port = await freePort();
  const node = [process.execPath, '--import', 'tsx', 'node/main.ts', '--id', 'lim', '--port', String(port), '--data', join(dir, 'data'), '--log-level', 'info', ...flags];
  const [command, args] = limits.length === 0 ? [process.execPath, node.slice(1)] : ['prlimit', [...limits, ...node]];
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, port, base: `http://${HOST}:${port}`, output: () => output, exited };
}

async function waitReady(node: Started): Promise<void> {
  let gone = false;
  void node.exited.then(() => (gone = true));
  for (const until = Date.now() + 30_000; ; await sleep(100)) {
    if (gone) throw new Error(`the node exited before it was ready:\n${node.output()}`);
    if (Date.now() > until) throw new Error(`the node was not ready within 30 s:\n${node.output()}`);
    if ((await get(`${node.base}/readyz`))?.status === 200) return settle();
  }
}

/**
 * One request on a connection of its own, closed after the answer; undefined if there is none.
 * (A pooled client such as fetch would keep an idle connection open and take one of the few slots.)
 */
const get = (url: string, method = 'GET'): Promise<HttpAnswer | undefined> => httpRequest(method, url, { timeoutMs: 2_000 }).catch(() => undefined);

/** Let the node see our last connection close, so that every slot is free. */
const settle = (): Promise<void> => sleep(500);

interface Watched {
  readonly socket: Socket;
  readonly connectedAt: Promise<number>;
  /** When the other side closed it, and what it sent first. */
  readonly closed: Promise<{ at: number; data: string }>;
  isClosed(): boolean;
}

function open(port: number): Watched {
  const socket = connect(port, HOST);
  sockets.push(socket);
  let data = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (data += chunk));
  socket.on('error', () => undefined);
  const connectedAt = new Promise<number>((resolve) => socket.once('connect', () => resolve(Date.now())));
  const closedAt = new Promise<{ at: number; data: string }>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve({ at: Date.now(), data });
    }),
  );
  return { socket, connectedAt, closed: closedAt, isClosed: () => closed };
}

/** `promise`, or undefined if it has not settled within `ms`. */
const within = <T>(ms: number, promise: Promise<T>): Promise<T | undefined> => Promise.race([promise, sleep(ms).then(() => undefined)]);

function sample(metrics: string, name: string, labels = ''): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (const until = Date.now() + 15_000; ; await sleep(100)) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
  }
}

describe('--max-connections and the HTTP timeouts', () => {
  let node: Started;
  beforeAll(async () => {
    node = await startProcess([], ['--max-connections', '3']);
    await waitReady(node);
  });

  it('holds 3 idle connections, closes a 4th as it comes, and takes a client again once they go', async () => {
    const held = [open(node.port), open(node.port), open(node.port)];
    await Promise.all(held.map((h) => h.connectedAt));
    await sleep(300); // let the node accept all three
    const fourth = open(node.port);
    fourth.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const refused = await within(5_000, fourth.closed);
    expect(refused, 'the 4th connection was not closed').toBeDefined();
    expect(refused?.data).toBe(''); // closed, not answered
    expect(held.map((h) => h.isClosed())).toEqual([false, false, false]);

    for (const h of held) h.socket.destroy();
    const health = await eventually('a request to get through', async () => {
      const res = await get(`${node.base}/healthz`);
      return res?.status === 200 ? res : undefined;
    });
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    const metrics = (await get(`${node.base}/metrics`))?.body ?? '';
    await settle();
    expect(sample(metrics, 'hitmesh_http_limit', 'limit="max_connections"'), metrics).toBe(3);
    expect(sample(metrics, 'hitmesh_http_connections_refused_total')).toBeGreaterThanOrEqual(1);
  });

  it('closes a silent socket and one dribbling its headers within the header timeout (+ the check interval), the dribbler with a 408', { timeout: 40_000 }, async () => {
    const silent = open(node.port);
    const dribbler = open(node.port);
    const [silentFrom, dribblerFrom] = await Promise.all([silent.connectedAt, dribbler.connectedAt]);
    dribbler.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => dribbler.socket.write('X-Drip: 1\r\n'), 500);
    const bound = HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 2_000; // 2 s for a loaded machine
    try {
      const [s, d] = await Promise.all([within(bound + 10_000, silent.closed), within(bound + 10_000, dribbler.closed)]);
      expect(s, 'the silent socket was never closed').toBeDefined();
      expect(d, 'the dribbling socket was never closed').toBeDefined();
      expect((s?.at ?? Infinity) - silentFrom).toBeLessThan(bound);
      expect((d?.at ?? Infinity) - dribblerFrom).toBeLessThan(bound);
      expect(d?.data).toMatch(/^HTTP\/1\.1 408 /);
      const body = JSON.parse(d?.data.slice(d.data.indexOf('\r\n\r\n') + 4) ?? '') as { error: string };
      expect(body.error).toMatch(/in time/);
    } finally {
      clearInterval(drip);
    }
  });
});

describe('the open-files limit', () => {
  it('lowers --max-connections to leave descriptors for the store, says so, and a full node keeps that reserve', { timeout: 60_000 }, async () => {
    const LIMIT = 400;
    const node = await startProcess([`--nofile=${LIMIT}:${LIMIT}`], []);
    await waitReady(node);
    const pid = node.child.pid ?? 0;

    // Far more connections than the node may take, all at once.
    const all = Array.from({ length: LIMIT }, () => open(node.port));
    await within(10_000, Promise.all(all.map((h) => Promise.race([h.connectedAt, h.closed]))));
    await sleep(1_000);
    const held = all.filter((h) => !h.isClosed()).length;
    const free = LIMIT - readdirSync(`/proc/${pid}/fd`).length;
    for (const h of all) h.socket.destroy();

    expect(free, `only ${free} of ${LIMIT} descriptors left with ${held} connections held`).toBeGreaterThanOrEqual(64);
    const metrics = await eventually('/metrics', async () => {
      const res = await get(`${node.base}/metrics`);
      return res?.status === 200 ? res.body : undefined;
    });
    const effective = sample(metrics, 'hitmesh_http_limit', 'limit="max_connections"');
    const reserve = sample(metrics, 'hitmesh_http_limit', 'limit="fd_reserve"') ?? NaN;
    expect(sample(metrics, 'hitmesh_http_limit', 'limit="open_files"'), metrics).toBe(LIMIT);
    expect(sample(metrics, 'hitmesh_http_limit', 'limit="max_connections_asked"')).toBe(10_000);
    expect(effective).toBe(LIMIT - reserve);
    expect(held).toBe(effective);
    expect(sample(metrics, 'hitmesh_http_connections_refused_total')).toBe(LIMIT - held);
    const warning = node.output().split('\n').find((line) => line.includes('"level":40') && line.includes('max-connections'));
    expect(warning, node.output()).toMatch(new RegExp(`${effective}`));

    const hit = await get(`${node.base}/hit/after-the-flood`, 'POST');
    expect(hit?.status, hit?.body).toBe(200);
    node.child.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to start when the limit leaves almost no room for connections, and says why', async () => {
    const node = await startProcess(['--nofile=100:100'], []);
    const status = await within(30_000, node.exited);
    expect(status, node.output()).toEqual({ code: 1, signal: null });
    expect(node.output()).toMatch(/open files.*100/i);
    expect(node.output()).toMatch(/ulimit -n|--max-connections/);
  });
});
