/**
 * A TCP fault proxy for one link (SPEC §6): clients dial `proxy.address`, the proxy dials `target`, and
 * bytes pass through unchanged until a fault is set. Faults apply to the whole link, both directions alike,
 * to open connections and to new ones.
 *
 * - cut: every open connection is reset (RST) on both sides; new connections are accepted and reset at once.
 *   The listener stays open so the port stays ours and heal() is synchronous. A dialer sees ECONNRESET (or a
 *   close, sometimes right after 'connect', because the kernel finishes the handshake before we can refuse)
 *   within milliseconds, so reconnection attempts fail fast.
 * - blackhole: connections stay open and new ones are accepted, but nothing crosses in either direction: data
 *   is read and discarded (so no buffer grows, and no back-pressure tells the sender), a FIN or a reset from
 *   one side is held back until the link leaves blackhole, and a connection accepted while black-holed is
 *   dialed upstream only then. Swallowed bytes are gone: after heal an old connection's stream has a gap in
 *   it, which breaks any framing in flight. That is the point: it exercises timeouts and liveness checks.
 * - delay / throttle: each chunk waits for the link to be free at `bytesPerSecond`, then `delayMs` more;
 *   order is kept. New settings apply to chunks read from then on. When more than HIGH_WATER bytes are
 *   waiting, the sender is paused, as a slow link would push back through TCP.
 * - drop: each chunk read is discarded with probability `dropFraction`. TCP chunk boundaries are not message
 *   boundaries, so the receiver sees a corrupted byte stream (garbage, truncated or broken frames), not lost
 *   messages: this is meant to exercise frame validation, not to model packet loss (TCP never loses bytes).
 * - flap: cut for `downMs`, then pass for `upMs`, repeated until heal(), cut(), blackhole(), another flap()
 *   or stop(). Delay, throttle and drop settings stay in force during the up phases.
 * - heal: back to clean pass-through: mode pass, no delay, no throttle, no drop, no flapping.
 *
 * Binds 127.0.0.1 only. Timers are cleared when their connection closes and by stop(), which is final.
 */
import { createServer, Socket, type Server } from 'node:net';

export type LinkMode = 'pass' | 'cut' | 'blackhole';

export interface FlapSchedule {
  readonly upMs: number;
  readonly downMs: number;
}

export interface LinkFaults {
  readonly mode: LinkMode;
  readonly delayMs: number;
  /** undefined: not throttled. */
  readonly bytesPerSecond: number | undefined;
  readonly dropFraction: number;
  /** undefined: not flapping. While flapping, `mode` alternates between 'cut' and 'pass'. */
  readonly flap: FlapSchedule | undefined;
}

export interface FaultProxyStats {
  /** Client connections open now, each with its upstream connection. */
  readonly connections: number;
  /** Client connections accepted and served, ever. */
  readonly accepted: number;
  /** Client connections reset on arrival because the link was cut. */
  readonly refused: number;
  /** Bytes delivered, both directions. */
  readonly bytesForwarded: number;
  readonly chunksDropped: number;
  /** Bytes read and never delivered: dropped, black-holed, or in flight when a connection was torn down. */
  readonly bytesDiscarded: number;
}

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  /** 0 (the default) picks a free port. */
  readonly listenPort?: number;
  /** Source of numbers in [0, 1) for drop decisions; inject one for deterministic tests. */
  readonly random?: () => number;
}

const LISTEN_HOST = '127.0.0.1';
/** Bytes waiting in one direction beyond which the sender is paused. */
const HIGH_WATER = 256 * 1024;
/** A throttled link sends slices of this much link time, so it trickles rather than bursts. */
const SLICE_MS = 50;

/** Link-wide settings and counters, shared by the proxy and its connections. */
interface LinkState {
  mode: LinkMode;
  delayMs: number;
  bytesPerSecond: number | undefined;
  dropFraction: number;
  readonly random: () => number;
  readonly counters: { bytesForwarded: number; chunksDropped: number; bytesDiscarded: number };
}

/** A queued FIN: it travels behind the data, with the same delay. */
const FIN = Symbol('fin');

interface Pending {
  readonly at: number;
  readonly data: Buffer | typeof FIN;
}

/** RST rather than FIN, so the peer learns at once that the link broke rather than that it was closed. */
/** How long stop() waits for its connections' sockets to close. */
const STOP_WAIT_MS = 3_000;

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  // resetAndDestroy on a socket still connecting waits for the connection, which may never come.
  if (socket.pending) socket.destroy();
  else socket.resetAndDestroy();
}

/** One direction of one connection: reads src, applies the link's faults, writes dst in order. */
class Direction {
  private readonly queue: Pending[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** When the throttled link is done sending what is queued. */
  private busyUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  /** dst.write returned false: src stays paused until 'drain'. */
  private blocked = false;
  /** src sent FIN while black-holed; it crosses when the link leaves blackhole. */
  private finHeld = false;

  constructor(
    private readonly link: LinkState,
    private readonly src: Socket,
    private readonly dst: Socket,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => this.onEnd());
    dst.on('drain', () => {
      this.blocked = false;
      this.updateFlow();
    });
  }

  enteredBlackhole(): void {
    // Bytes in flight are lost along with everything after them.
    if (this.discardQueue()) this.finHeld = true;
    this.updateFlow();
  }

  leftBlackhole(): void {
    if (!this.finHeld) return;
    this.finHeld = false;
    this.push(FIN);
  }

  close(): void {
    this.discardQueue();
  }

  /** The link is clean again: what is still queued by a delay or throttle goes now, in order. */
  release(): void {
    const now = performance.now();
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i]!;
      if (item.at > now) this.queue[i] = { at: now, data: item.data };
    }
    this.busyUntil = 0;
    clearTimeout(this.timer);
    this.pump();
  }

  private onData(chunk: Buffer): void {
    const link = this.link;
    if (link.mode !== 'pass') {
      link.counters.bytesDiscarded += chunk.length;
      return;
    }
    if (link.dropFraction > 0 && link.random() < link.dropFraction) {
      link.counters.chunksDropped++;
      link.counters.bytesDiscarded += chunk.length;
      return;
    }
    this.push(chunk);
  }

  private onEnd(): void {
    if (this.link.mode === 'blackhole') this.finHeld = true;
    else this.push(FIN);
  }

  private push(data: Buffer | typeof FIN): void {
    const now = performance.now();
    const rate = this.link.bytesPerSecond;
    if (data === FIN || rate === undefined) {
      this.enqueue(data, Math.max(now, this.busyUntil));
    } else {
      const slice = Math.max(1, Math.floor((rate * SLICE_MS) / 1000));
      for (let offset = 0; offset < data.length; offset += slice) {
        const part = data.subarray(offset, offset + slice);
        this.busyUntil = Math.max(this.busyUntil, now) + (part.length * 1000) / rate;
        this.enqueue(part, this.busyUntil);
      }
    }
    // The queue is FIFO: with a timer pending for the head, nothing behind it can go sooner.
    if (this.timer === undefined) this.pump();
    else this.updateFlow();
  }

  private enqueue(data: Buffer | typeof FIN, sentAt: number): void {
    // Delivered in queue order, so a delay shortened mid-flight cannot let new bytes overtake queued ones.
    this.queue.push({ at: sentAt + this.link.delayMs, data });
    if (data !== FIN) this.queuedBytes += data.length;
  }

  private pump(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.queue.length) {
      const next = this.queue[this.head]!;
      if (next.at > now) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(next.at - now));
        break;
      }
      this.head++;
      this.deliver(next.data);
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.updateFlow();
  }

  private deliver(data: Buffer | typeof FIN): void {
    if (data === FIN) {
      if (!this.dst.destroyed) this.dst.end();
      return;
    }
    this.queuedBytes -= data.length;
    if (this.dst.destroyed || this.dst.writableEnded) {
      this.link.counters.bytesDiscarded += data.length;
      return;
    }
    this.link.counters.bytesForwarded += data.length;
    if (!this.dst.write(data)) this.blocked = true;
  }

  /** Empties the queue; returns whether a FIN was in it. */
  private discardQueue(): boolean {
    clearTimeout(this.timer);
    this.timer = undefined;
    let hadFin = false;
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i]!;
      if (item.data === FIN) hadFin = true;
      else this.link.counters.bytesDiscarded += item.data.length;
    }
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    this.busyUntil = 0;
    return hadFin;
  }

  private updateFlow(): void {
    if (this.src.destroyed) return;
    // Black-holed bytes are read and discarded, never left to pile up in kernel buffers.
    const hold = this.link.mode === 'pass' && (this.blocked || this.queuedBytes > HIGH_WATER);
    if (hold) this.src.pause();
    else this.src.resume();
  }
}

/** A client connection and its upstream connection. */
class Connection {
  readonly upstream = new Socket({ allowHalfOpen: true });
  /** Resolves when both sockets have closed. */
  readonly closed: Promise<void>;
  private readonly directions: readonly [Direction, Direction];
  private dialed = false;
  private tornDown = false;
  /** A side failed while black-holed; the other side learns of it when the link leaves blackhole. */
  private brokenWhileBlackholed = false;

  constructor(
    private readonly link: LinkState,
    readonly client: Socket,
    private readonly target: FaultProxyOptions['target'],
  ) {
    this.directions = [new Direction(link, client, this.upstream), new Direction(link, this.upstream, client)];
    for (const socket of [client, this.upstream]) {
      socket.on('error', () => this.onFailure());
      socket.on('close', (hadError: boolean) => {
        if (hadError) this.onFailure();
      });
    }
    const closeOf = (socket: Socket): Promise<void> => new Promise((resolve) => socket.once('close', () => resolve()));
    this.closed = Promise.all([closeOf(client), closeOf(this.upstream)]).then(() => undefined);
    client.setNoDelay(true);
    if (link.mode === 'pass') this.dial();
  }

  get open(): boolean {
    return !this.tornDown;
  }

  enteredBlackhole(): void {
    for (const direction of this.directions) direction.enteredBlackhole();
  }

  /** A heal: data held back by a delay or throttle is delivered now. */
  released(): void {
    for (const direction of this.directions) direction.release();
  }

  leftBlackhole(): void {
    if (this.brokenWhileBlackholed) return this.tearDown();
    if (!this.dialed) this.dial();
    for (const direction of this.directions) direction.leftBlackhole();
  }

  tearDown(): void {
    this.tornDown = true;
    for (const direction of this.directions) direction.close();
    reset(this.client);
    if (this.dialed) reset(this.upstream);
    else this.upstream.destroy();
  }

  /** Destroy both sockets without ceremony (stop()'s last resort; a no-op on closed ones). */
  destroyNow(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private dial(): void {
    this.dialed = true;
    this.upstream.setNoDelay(true);
    this.upstream.connect(this.target.port, this.target.host);
  }

  private onFailure(): void {
    if (this.tornDown) return;
    // The failed side is gone already; while black-holed the other side must not hear of it.
    if (this.link.mode === 'blackhole') this.brokenWhileBlackholed = true;
    else this.tearDown();
  }
}

export class FaultProxy {
  /** Where clients connect. */
  readonly port: number;
  /** "127.0.0.1:port". */
  readonly address: string;
  private readonly link: LinkState;
  /** Until both of their sockets have closed, so stop() can wait for them. */
  private readonly connections = new Set<Connection>();
  private accepted = 0;
  private refused = 0;
  private flapSchedule: FlapSchedule | undefined;
  private flapTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly target: FaultProxyOptions['target'],
    random: () => number,
  ) {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy: not listening on TCP');
    this.port = address.port;
    this.address = `${LISTEN_HOST}:${address.port}`;
    this.link = { mode: 'pass', delayMs: 0, bytesPerSecond: undefined, dropFraction: 0, random, counters: { bytesForwarded: 0, chunksDropped: 0, bytesDiscarded: 0 } };
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    // Accept failures (EMFILE and the like) only cost the dialer its connection.
    server.on('error', () => undefined);
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, LISTEN_HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, options.target, options.random ?? Math.random);
  }

  /** Resets every connection and refuses new ones until heal(). Ends flapping. */
  cut(): void {
    this.stopFlapping();
    this.setMode('cut');
  }

  /** Keeps connections open and accepts new ones, but nothing crosses until heal(). Ends flapping. */
  blackhole(): void {
    this.stopFlapping();
    this.setMode('blackhole');
  }

  /**
   * Back to clean pass-through: clears every fault and ends flapping. Bytes
   * still queued by a delay or throttle are delivered at once, as a link that
   * recovers drains what waited in it; they would otherwise trickle out at the
   * old rate and hold everything behind them.
   */
  heal(): void {
    this.stopFlapping();
    this.link.delayMs = 0;
    this.link.bytesPerSecond = undefined;
    this.link.dropFraction = 0;
    this.setMode('pass');
    for (const connection of this.connections) if (connection.open) connection.released();
  }

  /** Latency added to every chunk, each direction; 0 for none. */
  delay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`fault proxy: delay must be a finite number >= 0, got ${ms}`);
    this.link.delayMs = ms;
  }

  /** Bandwidth of each direction; undefined for unlimited. */
  throttle(bytesPerSecond: number | undefined): void {
    if (bytesPerSecond !== undefined && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
      throw new RangeError(`fault proxy: throttle must be a finite number > 0 or undefined, got ${bytesPerSecond}`);
    }
    this.link.bytesPerSecond = bytesPerSecond;
  }

  /** Probability of discarding each chunk read; 0 for none, 1 for all. Corrupts the stream (see above). */
  drop(fraction: number): void {
    if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fault proxy: drop fraction must be in [0, 1], got ${fraction}`);
    this.link.dropFraction = fraction;
  }

  /** Cut now for downMs, then pass for upMs, and so on until heal(), cut(), blackhole(), flap() or stop(). */
  flap(schedule: FlapSchedule): void {
    const { upMs, downMs } = schedule;
    if (!(Number.isFinite(upMs) && upMs > 0 && Number.isFinite(downMs) && downMs > 0)) {
      throw new RangeError(`fault proxy: flap upMs and downMs must be finite numbers > 0, got ${upMs} and ${downMs}`);
    }
    // A timer started after stop() would keep the process alive with nothing left to stop it.
    if (this.stopping) throw new Error('fault proxy: stopped');
    this.stopFlapping();
    this.flapSchedule = { upMs, downMs };
    const down = (): void => {
      this.setMode('cut');
      this.flapTimer = setTimeout(up, downMs);
    };
    const up = (): void => {
      this.setMode('pass');
      this.flapTimer = setTimeout(down, upMs);
    };
    down();
  }

  faults(): LinkFaults {
    const { mode, delayMs, bytesPerSecond, dropFraction } = this.link;
    return { mode, delayMs, bytesPerSecond, dropFraction, flap: this.flapSchedule };
  }

  stats(): FaultProxyStats {
    let open = 0;
    for (const connection of this.connections) if (connection.open) open++;
    return { connections: open, accepted: this.accepted, refused: this.refused, ...this.link.counters };
  }

  /** Closes the listener and every connection, clears every timer. Idempotent; the proxy cannot restart. */
  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  private async close(): Promise<void> {
    this.stopFlapping();
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const connections = [...this.connections];
    for (const connection of connections) connection.tearDown();
    // A torn-down socket has always closed within milliseconds; once in a CI run one did not, and stop() hung a
    // test's afterEach for a minute. Wait a bounded time, then give up on the stragglers (they are destroyed).
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    await Promise.race([Promise.all([listenerClosed, ...connections.map((connection) => connection.closed)]), bound]);
    clearTimeout(timer);
    for (const connection of connections) connection.destroyNow();
  }

  private onConnection(socket: Socket): void {
    if (this.link.mode === 'cut' || this.stopping) {
      this.refused++;
      socket.on('error', () => undefined);
      reset(socket);
      return;
    }
    this.accepted++;
    const connection = new Connection(this.link, socket, this.target);
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  private setMode(next: LinkMode): void {
    const previous = this.link.mode;
    if (previous === next) return;
    this.link.mode = next;
    for (const connection of this.connections) {
      if (!connection.open) continue;
      if (next === 'cut') connection.tearDown();
      else if (next === 'blackhole') connection.enteredBlackhole();
      else if (previous === 'blackhole') connection.leftBlackhole();
    }
  }

  private stopFlapping(): void {
    clearTimeout(this.flapTimer);
    this.flapTimer = undefined;
    this.flapSchedule = undefined;
  }
}
