/**
 * The TCP fault proxy on real loopback sockets, in front of a tiny echo server. Timing assertions are
 * lower bounds only: the machine is shared, so anything may be slower, nothing may be faster. Deadlines
 * are generous and only bound how long a failing test hangs.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../scripts/lib/fault-proxy.ts';

const HOST = '127.0.0.1';
const DEADLINE_MS = 5_000;
/** How long "nothing arrives" is watched for. */
const QUIET_MS = 300;

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(what: string, predicate: () => boolean, deadlineMs = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

interface Echo {
  readonly port: number;
  /** Connections the echo server has open now. */
  readonly open: () => number;
  /** Connections the echo server has accepted, ever. */
  readonly accepted: () => number;
}

/** An echo server, closed with all its sockets after the test. */
async function startEcho(): Promise<Echo> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  const port = await listen(server);
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port, open: () => sockets.size, accepted: () => accepted };
}

async function startProxy(targetPort: number, random?: () => number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target: { host: HOST, port: targetPort }, ...(random ? { random } : {}) });
  cleanups.push(() => proxy.stop());
  return proxy;
}

/** A client socket that records what it receives and how it ended; destroyed after the test. */
class Client {
  readonly socket: Socket;
  received = Buffer.alloc(0);
  connected = false;
  closed = false;
  errorCode: string | undefined;

  constructor(port: number) {
    this.socket = connect(port, HOST);
    this.socket.on('connect', () => (this.connected = true));
    this.socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    this.socket.on('error', (error: NodeJS.ErrnoException) => (this.errorCode ??= error.code));
    this.socket.on('close', () => (this.closed = true));
    cleanups.push(() => void this.socket.destroy());
  }

  async whenConnected(): Promise<void> {
    await waitUntil('connect', () => this.connected || this.closed);
    if (!this.connected) throw new Error(`connection failed: ${this.errorCode}`);
  }

  /** Waits for `count` more bytes than `from` and returns them. */
  async receive(count: number, from = 0): Promise<Buffer> {
    await waitUntil(`${count} bytes`, () => this.received.length >= from + count || this.closed);
    if (this.received.length < from + count) throw new Error(`closed after ${this.received.length - from} of ${count} bytes`);
    return this.received.subarray(from, from + count);
  }

  async whenClosed(): Promise<void> {
    await waitUntil('close', () => this.closed);
  }
}

async function dial(port: number): Promise<Client> {
  const client = new Client(port);
  await client.whenConnected();
  return client;
}

/** Writes `text` and expects it echoed back, after whatever the client has received so far. */
async function roundTrip(client: Client, text: string): Promise<void> {
  const from = client.received.length;
  client.socket.write(text);
  expect((await client.receive(text.length, from)).toString()).toBe(text);
}

type Outcome = 'echoed' | 'closed' | 'silent';

/** A fresh connection that sends a ping: echoed, closed without an echo, or silent for a second. */
async function probe(port: number): Promise<Outcome> {
  const client = new Client(port);
  client.socket.on('connect', () => client.socket.write('ping'));
  const deadline = Date.now() + 1_000;
  while (Date.now() < deadline) {
    if (client.received.length >= 4) break;
    if (client.closed) return 'closed';
    await sleep(5);
  }
  client.socket.destroy();
  return client.received.length >= 4 ? 'echoed' : 'silent';
}

describe('FaultProxy', () => {
  it('passes bytes through both ways, intact and in order, on 127.0.0.1', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.faults()).toEqual({ mode: 'pass', delayMs: 0, bytesPerSecond: undefined, dropFraction: 0, flap: undefined });

    const client = await dial(proxy.port);
    await roundTrip(client, 'hello');
    const big = randomBytes(512 * 1024);
    client.socket.write(big);
    expect((await client.receive(big.length, 5)).equals(big)).toBe(true);

    await waitUntil('forwarded count', () => proxy.stats().bytesForwarded === 2 * (5 + big.length));
    expect(proxy.stats()).toEqual({ connections: 1, accepted: 1, refused: 0, bytesForwarded: 2 * (5 + big.length), chunksDropped: 0, bytesDiscarded: 0 });
  });

  it('carries a FIN each way: a half-closed client still gets its echo, then both sides close cleanly', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    client.socket.end('last words');
    await client.whenClosed();
    expect(client.received.toString()).toBe('last words');
    expect(client.errorCode).toBeUndefined();
    await waitUntil('proxy connection gone', () => proxy.stats().connections === 0);
    await waitUntil('echo connection gone', () => echo.open() === 0);
  });

  it('resets the dialer when the target is down', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    // Point a second proxy at a port that was free a moment ago.
    const gone = createServer();
    const deadPort = await listen(gone);
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const dead = await startProxy(deadPort);
    expect(await probe(dead.port)).toBe('closed');
    expect(await probe(proxy.port)).toBe('echoed');
  });

  it('cut resets open connections and new ones fast; heal accepts again', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const open = await dial(proxy.port);
    await roundTrip(open, 'before');

    proxy.cut();
    expect(proxy.faults().mode).toBe('cut');
    expect(proxy.stats().connections).toBe(0);
    await open.whenClosed();
    await waitUntil('upstream side closed', () => echo.open() === 0);

    const refused = new Client(proxy.port);
    await refused.whenClosed();
    expect(refused.received.length).toBe(0);
    expect(await probe(proxy.port)).toBe('closed');
    expect(proxy.stats().refused).toBeGreaterThanOrEqual(2);
    expect(proxy.stats().accepted).toBe(1);

    proxy.heal();
    expect(proxy.faults().mode).toBe('pass');
    const after = await dial(proxy.port);
    await roundTrip(after, 'after');
  });

  it('blackhole swallows data both ways while connections stay open; heal forwards new data only', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const old = await dial(proxy.port);
    await roundTrip(old, 'before');

    proxy.blackhole();
    expect(proxy.faults().mode).toBe('blackhole');
    old.socket.write('lost');
    const fresh = new Client(proxy.port);
    await fresh.whenConnected();
    fresh.socket.write('also lost');
    await sleep(QUIET_MS);
    expect(old.received.toString()).toBe('before');
    expect(fresh.received.length).toBe(0);
    expect(old.closed || fresh.closed).toBe(false);
    // The new connection was not dialed through: the target saw nothing of it.
    expect(echo.accepted()).toBe(1);
    expect(proxy.stats()).toMatchObject({ connections: 2, bytesDiscarded: 'lost'.length + 'also lost'.length });

    proxy.heal();
    await roundTrip(old, 'after');
    expect(old.received.toString()).toBe('beforeafter');
    await roundTrip(fresh, 'fresh');
    expect(fresh.received.toString()).toBe('fresh');
    expect(echo.accepted()).toBe(2);
  });

  it('blackhole also swallows bytes coming back from the target, and they stay gone after heal', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    await roundTrip(client, 'warm');
    // Enough delay that the echo is on its way back when the link goes dark.
    proxy.delay(200);
    client.socket.write('in flight');
    await sleep(300);
    proxy.blackhole();
    await sleep(QUIET_MS);
    proxy.heal();
    await roundTrip(client, 'next');
    expect(client.received.toString()).toBe('warmnext');
  });

  it('a close during blackhole crosses only when the link heals', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    await roundTrip(client, 'hi');
    expect(echo.open()).toBe(1);

    proxy.blackhole();
    client.socket.destroy();
    await client.whenClosed();
    await sleep(QUIET_MS);
    expect(echo.open()).toBe(1);

    proxy.heal();
    await waitUntil('target side closed', () => echo.open() === 0);
    await waitUntil('proxy connection gone', () => proxy.stats().connections === 0);
  });

  it('delay adds latency each way and keeps order', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    const delayMs = 150;
    proxy.delay(delayMs);
    expect(proxy.faults().delayMs).toBe(delayMs);

    const started = performance.now();
    await roundTrip(client, 'x');
    // Timers may fire up to a millisecond early against performance.now(); allow a little.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * delayMs - 5);

    // Many small writes, some after a shorter delay was set: still echoed in the order sent.
    const from = client.received.length;
    const parts = Array.from({ length: 50 }, (_, i) => `<${i}>`);
    for (const [i, part] of parts.entries()) {
      if (i === 25) proxy.delay(10);
      client.socket.write(part);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const expected = parts.join('');
    expect((await client.receive(expected.length, from)).toString()).toBe(expected);
  });

  it('throttle holds each direction to the given bytes per second', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    const rate = 20_000;
    proxy.throttle(rate);
    expect(proxy.faults().bytesPerSecond).toBe(rate);

    const payload = randomBytes(10_000);
    const started = performance.now();
    client.socket.write(payload);
    const echoed = await client.receive(payload.length);
    expect(echoed.equals(payload)).toBe(true);
    // The two directions overlap, so the floor is one pass over the link, not two.
    expect(performance.now() - started).toBeGreaterThanOrEqual((payload.length / rate) * 1000 - 5);

    proxy.throttle(undefined);
    expect(proxy.faults().bytesPerSecond).toBeUndefined();
    await roundTrip(client, 'unthrottled');
  });

  it('a throttled link carrying several times its buffer limit keeps the rate and loses nothing', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    const rate = 4 * 1024 * 1024;
    proxy.throttle(rate);
    // Several times the proxy's high-water mark, so its reading pauses and resumes many times.
    const payload = randomBytes(2 * 1024 * 1024);
    const started = performance.now();
    client.socket.write(payload);
    const echoed = await client.receive(payload.length, 0);
    expect(echoed.equals(payload)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual((payload.length / rate) * 1000 - 5);
  });

  it('heal() delivers what a throttle and a delay still hold, at once and in order', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    // 50 KB at 1 KB/s would take 50 s to trickle through; the test's wait gives up long before that.
    proxy.throttle(1_024);
    proxy.delay(5_000);
    const payload = randomBytes(50_000);
    client.socket.write(payload);
    await sleep(200);
    expect(client.received.length).toBe(0);
    proxy.heal();
    const echoed = await client.receive(payload.length);
    expect(echoed.equals(payload)).toBe(true);
    await roundTrip(client, 'after heal');
  });

  it('drop(1) forwards nothing but keeps the connection; drop(0) forwards everything', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    await roundTrip(client, 'a');

    proxy.drop(1);
    client.socket.write('gone');
    await sleep(QUIET_MS);
    expect(client.received.toString()).toBe('a');
    expect(client.closed).toBe(false);
    expect(proxy.stats().chunksDropped).toBeGreaterThanOrEqual(1);
    expect(proxy.stats().connections).toBe(1);

    proxy.drop(0);
    await roundTrip(client, 'b');
    expect(client.received.toString()).toBe('ab');
  });

  it('drop decisions come from the injected random source', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port, () => 0.3);
    const client = await dial(proxy.port);
    proxy.drop(0.2);
    await roundTrip(client, 'kept');
    proxy.drop(0.5);
    client.socket.write('dropped');
    await sleep(QUIET_MS);
    expect(client.received.toString()).toBe('kept');
    expect(proxy.stats().chunksDropped).toBeGreaterThanOrEqual(1);
  });

  it('flap alternates cut and pass until heal()', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const schedule = { upMs: 400, downMs: 400 };
    proxy.flap(schedule);
    expect(proxy.faults()).toMatchObject({ mode: 'cut', flap: schedule });

    // Flapping starts down: probe until a refusal has been followed by an echo and another refusal.
    const seen: Outcome[] = [];
    const deadline = Date.now() + 20_000;
    const pattern = (): boolean => /closed.*echoed.*closed/.test(seen.join(' '));
    while (!pattern() && Date.now() < deadline) {
      seen.push(await probe(proxy.port));
      await sleep(50);
    }
    expect(seen.join(' ')).toMatch(/closed.*echoed.*closed/);
    expect(seen).not.toContain('silent');

    proxy.heal();
    expect(proxy.faults()).toMatchObject({ mode: 'pass', flap: undefined });
    // Longer than a whole cycle: no further cut comes.
    for (let i = 0; i < 4; i++) {
      expect(await probe(proxy.port)).toBe('echoed');
      await sleep(250);
    }
  });

  it('heal() clears every fault; bad settings are rejected', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    proxy.delay(50);
    proxy.throttle(1_000);
    proxy.drop(0.5);
    proxy.blackhole();
    expect(proxy.faults()).toEqual({ mode: 'blackhole', delayMs: 50, bytesPerSecond: 1_000, dropFraction: 0.5, flap: undefined });
    proxy.heal();
    expect(proxy.faults()).toEqual({ mode: 'pass', delayMs: 0, bytesPerSecond: undefined, dropFraction: 0, flap: undefined });

    expect(() => proxy.delay(-1)).toThrow(RangeError);
    expect(() => proxy.delay(Number.NaN)).toThrow(RangeError);
    expect(() => proxy.throttle(0)).toThrow(RangeError);
    expect(() => proxy.throttle(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => proxy.drop(1.5)).toThrow(RangeError);
    expect(() => proxy.drop(Number.NaN)).toThrow(RangeError);
    expect(() => proxy.flap({ upMs: 0, downMs: 100 })).toThrow(RangeError);
    expect(proxy.faults().mode).toBe('pass');
  });

  it('stop() closes the listener and every connection, and is idempotent', async () => {
    const echo = await startEcho();
    const proxy = await startProxy(echo.port);
    const a = await dial(proxy.port);
    const b = await dial(proxy.port);
    await roundTrip(a, 'a');
    proxy.delay(10_000);
    b.socket.write('pending behind a long delay');

    await Promise.all([proxy.stop(), proxy.stop()]);
    await a.whenClosed();
    await b.whenClosed();
    await waitUntil('target side closed', () => echo.open() === 0);
    expect(proxy.stats().connections).toBe(0);

    const late = new Client(proxy.port);
    await late.whenClosed();
    expect(late.connected).toBe(false);
    expect(late.errorCode).toBe('ECONNREFUSED');
    expect(() => proxy.flap({ upMs: 100, downMs: 100 })).toThrow(/stopped/);
  });

  it('stop() leaves no handles or timers behind: a process using the proxy exits by itself', async () => {
    const moduleUrl = new URL('../../scripts/lib/fault-proxy.ts', import.meta.url).href;
    // Plain JS, loaded through tsx so it can import the TypeScript module.
    const script = `
      import { connect, createServer } from 'node:net';
      import { FaultProxy } from ${JSON.stringify(moduleUrl)};
      const echo = createServer((s) => { s.on('error', () => {}); s.pipe(s); });
      await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
      const target = { host: '127.0.0.1', port: echo.address().port };
      const slow = await FaultProxy.start({ target });
      const flapping = await FaultProxy.start({ target });
      const dark = await FaultProxy.start({ target });
      slow.delay(200);
      slow.throttle(1000);
      const client = connect(slow.port, '127.0.0.1');
      client.on('error', () => {});
      await new Promise((resolve) => client.once('connect', resolve));
      client.write(Buffer.alloc(5000));
      await new Promise((resolve) => setTimeout(resolve, 100));
      flapping.flap({ upMs: 60000, downMs: 60000 });
      dark.blackhole();
      const unseen = connect(dark.port, '127.0.0.1');
      unseen.on('error', () => {});
      await new Promise((resolve) => unseen.once('connect', resolve));
      unseen.write('swallowed');
      const closed = [client, unseen].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
      await Promise.all([slow.stop(), flapping.stop(), dark.stop()]);
      await Promise.all(closed);
      await new Promise((resolve) => echo.close(resolve));
      // A closed server's handle stays listed until libuv's close phase, just after its 'close' callback.
      await new Promise((resolve) => setTimeout(resolve, 20));
      console.log(JSON.stringify(process.getActiveResourcesInfo()));
    `;
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Only bounds a hang: a leaked socket or timer would keep the child alive until this kills it.
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    cleanups.push(() => {
      clearTimeout(killer);
      child.kill('SIGKILL');
    });
    const code = await exited;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const resources = JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
    expect(resources.filter((resource) => /TCP|Timeout/.test(resource))).toEqual([]);
  });
});
