import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { Packr } from 'msgpackr';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { isAddress } from '../crdt/names.ts';
import { LIMITS } from './limits.ts';
import { ProtocolError, parseMessage, type Message } from './messages.ts';
import type { ConnId, GossipCore, Output } from './protocol.ts';

/** What the transport reports, for metrics and logs (all optional). */
export interface TransportEvents {
  frameIn?(peer: string, type: string, bytes: number): void;
  frameOut?(peer: string, type: string, bytes: number): void;
  rejected?(kind: 'handshake' | 'frame', reason: string, peer: string): void;
  connected?(peer: string, outbound: boolean): void;
  disconnected?(peer: string, reason: string): void;
  /** A dial of ours failed before the WebSocket opened (refused, timed out, a certificate refused). */
  dialFailed?(address: string, reason: string): void;
  /** Something threw where nothing should: logged and counted; the connection involved (if any) is closed. */
  fault?(where: string, error: unknown): void;
}

export interface TransportOptions {
  /** Largest frame accepted after the handshake; a larger one closes the connection. */
  readonly maxPayloadBytes: number;
  /** How often the core's timers run. */
  readonly tickMs: number;
  readonly now: () => number;
  readonly events: TransportEvents;
  /** wss instead of ws; undefined: plain WebSockets. */
  readonly tls?: GossipTls | undefined;
}

/**
 * TLS for gossip (--tls-cert, --tls-key, --tls-ca). The node dials wss and
 * shows its certificate. With a CA, a peer's certificate must chain to it both
 * ways: the one we dial, and the one dialing in (asked for on the TLS
 * handshake, checked on the upgrade). Host names are not checked then: peers
 * are dialed by the addresses they advertise or DNS gives (pod IPs), and the
 * private CA, not a name, says who is a member. Without a CA, dials check the
 * system's CAs and the host name, as any HTTPS client does.
 */
export interface GossipTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

export const GOSSIP_PATH = '/gossip';
// Plain maps and arrays only: no msgpackr record extensions on the wire.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

interface Socket {
  readonly ws: WebSocket;
  peer: string;
  /** Big frames (and what came after them) waiting for their own turn of the event loop, in order. */
  readonly deferred: { data: RawData; isBinary: boolean }[];
}

/**
 * A frame at least this big is applied in a turn of the event loop of its
 * own: ws hands over every message of a read burst at once, and a burst of
 * repair chunks applied back to back held the loop for most of a second.
 * Small frames (pushes) go at once unless big ones are waiting before them.
 */
const OWN_TURN_BYTES = 16 * 1024;

/**
 * Carries the gossip core over WebSockets: the /gossip endpoint on the node's
 * HTTP server for peers that dial us, ws clients for the peers we dial,
 * msgpack frames both ways. It owns the sockets and the timer; every decision
 * is the core's. A frame that is not binary msgpack of a valid message closes
 * its connection, is reported, and the node goes on; so does anything thrown
 * on the way: no error in a socket or timer callback escapes.
 */
export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<ConnId, Socket>();
  private nextConn = 1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly core: GossipCore,
    private readonly server: Server,
    private readonly options: TransportOptions,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });
    core.backlog = (conn) => this.sockets.get(conn)?.ws.bufferedAmount ?? 0;
  }

  start(): void {
    this.server.on('upgrade', this.onUpgrade);
    this.timer = setInterval(() => this.guard('tick', undefined, () => this.perform(this.core.tick(this.options.now()))), this.options.tickMs);
    this.timer.unref();
    this.guard('tick', undefined, () => this.perform(this.core.tick(this.options.now())));
  }

  /** Carry out outputs the core produced outside a frame or tick (forgetting a member, a new incarnation). */
  apply(outputs: readonly Output[]): void {
    this.guard('apply', undefined, () => this.perform(outputs));
  }

  /** Close every connection and stop the timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.server.off('upgrade', this.onUpgrade);
    const closing = [...this.sockets.values()].map(
      ({ ws }) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(1001, 'node shutting down');
          setTimeout(() => {
            ws.terminate();
            resolve();
          }, 1_000).unref();
        }),
    );
    await Promise.all(closing);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== GOSSIP_PATH || this.stopped) {
      socket.destroy();
      return;
    }
    if (this.core.pendingHandshakes >= LIMITS.maxPendingHandshakes) {
      // Strangers cannot hold more than this many half-open connections.
      this.core.stats.limited.handshakes++;
      this.options.events.rejected?.('handshake', 'too many handshakes in progress', 'unauthenticated');
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    const tlsSocket = request.socket as Partial<TLSSocket>;
    if (this.options.tls?.ca !== undefined && tlsSocket.authorized !== true) {
      // The certificate request is optional on the TLS handshake (browsers and curl have none): gossip is where it is required.
      const reason = `peer certificate refused: ${String(tlsSocket.authorizationError ?? 'none shown')}`;
      this.options.events.rejected?.('handshake', reason, 'unauthenticated');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    this.guard('upgrade', undefined, () => this.wss.handleUpgrade(request, socket, head, (ws) => this.guard('adopt', undefined, () => this.adopt(ws, undefined, socket))));
  };

  private dial(address: string): void {
    if (!isAddress(address)) {
      // The core only dials validated addresses; a bad one must still not throw inside the tick.
      this.core.dialFailed(address, this.options.now());
      return;
    }
    let ws: WebSocket;
    try {
      const tls = this.options.tls;
      const scheme = tls === undefined ? 'ws' : 'wss';
      // tls.connect's options, handed to tls as they are; with a CA the chain is checked, host names are not.
      const secure: ConnectionOptions = tls === undefined ? {} : { cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca, checkServerIdentity: () => undefined }) };
      ws = new WebSocket(`${scheme}://${address}${GOSSIP_PATH}`, { maxPayload: this.options.maxPayloadBytes, handshakeTimeout: 2_000, ...secure });
    } catch (error) {
      this.options.events.fault?.(`dial ${address}`, error);
      this.core.dialFailed(address, this.options.now());
      return;
    }
    let settled = false;
    let raw: Duplex | undefined;
    ws.once('upgrade', (response: IncomingMessage) => (raw = response.socket));
    ws.once('open', () => {
      settled = true;
      this.guard('open', undefined, () => this.adopt(ws, address, raw));
    });
    // 'error' and then 'close' both come for one failed dial: report it once.
    const failed = (error?: Error & { code?: string }): void => {
      if (settled) return;
      settled = true;
      this.options.events.dialFailed?.(address, error?.code ?? error?.message ?? 'closed before it opened');
      this.guard('dial', undefined, () => this.core.dialFailed(address, this.options.now()));
    };
    ws.once('error', failed);
    ws.once('close', () => failed());
    // An unopened socket's error must not become an uncaught exception.
    ws.on('error', () => undefined);
  }

  private adopt(ws: WebSocket, dialAddress: string | undefined, raw: Duplex | undefined): void {
    const conn = this.nextConn++;
    // Labelled by address until the peer proves who it is: a stranger must not pick metric labels.
    const socket: Socket = { ws, peer: dialAddress ?? 'unauthenticated', deferred: [] };
    this.sockets.set(conn, socket);
    // Any bytes count as life: a big frame crawling over a slow link is not silence.
    raw?.on('data', () => this.core.heard(conn, this.options.now()));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      if (socket.deferred.length === 0 && bytes < OWN_TURN_BYTES) return this.guard('frame', conn, () => this.onFrame(conn, socket, data, isBinary));
      socket.deferred.push({ data, isBinary });
      if (socket.deferred.length === 1) setImmediate(() => this.drainDeferred(conn, socket));
    });
    ws.on('error', (error: Error & { code?: string }) => {
      // ws reports oversized and malformed WebSocket frames here, then closes.
      this.options.events.rejected?.('frame', error.code ?? error.message, socket.peer);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.sockets.delete(conn);
      this.options.events.disconnected?.(socket.peer, `${code} ${reason.toString()}`);
      this.guard('close', undefined, () => this.core.disconnected(conn, this.options.now()));
    });
    this.options.events.connected?.(socket.peer, dialAddress !== undefined);
    this.perform(this.core.connected(conn, this.options.now(), dialAddress));
  }

  /** Apply the oldest deferred frame, and come back next turn for the rest. */
  private drainDeferred(conn: ConnId, socket: Socket): void {
    const next = socket.deferred[0];
    if (next === undefined || this.stopped || !this.sockets.has(conn)) return;
    this.guard('frame', conn, () => this.onFrame(conn, socket, next.data, next.isBinary));
    socket.deferred.shift();
    if (socket.deferred.length > 0) setImmediate(() => this.drainDeferred(conn, socket));
  }

  private onFrame(conn: ConnId, socket: Socket, data: RawData, isBinary: boolean): void {
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    let message: Message;
    try {
      if (!isBinary) throw new ProtocolError('text frame');
      if (this.core.peerOf(conn) === undefined && bytes > LIMITS.maxHandshakeFrameBytes) throw new ProtocolError(`handshake frame of ${bytes} bytes (at most ${LIMITS.maxHandshakeFrameBytes})`);
      const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      message = parseMessage(packr.unpack(buffer), this.options.now());
    } catch (error) {
      const reason = error instanceof ProtocolError ? error.message : `undecodable frame: ${error instanceof Error ? error.message : String(error)}`;
      this.options.events.rejected?.(this.core.peerOf(conn) === undefined ? 'handshake' : 'frame', reason, socket.peer);
      closeSoon(socket.ws, 1008, reason);
      return;
    }
    this.options.events.frameIn?.(socket.peer, message.type, bytes);
    this.perform(this.core.received(conn, message, this.options.now(), bytes));
    socket.peer = this.core.peerOf(conn) ?? socket.peer;
  }

  private perform(outputs: readonly Output[]): void {
    if (this.stopped) return;
    const packed = new Map<Message, Buffer>();
    for (const out of outputs) {
      if (out.kind === 'dial') {
        this.dial(out.address);
        continue;
      }
      const socket = this.sockets.get(out.conn);
      if (socket === undefined) continue;
      if (out.kind === 'close') {
        if (out.rejected !== undefined) this.options.events.rejected?.(out.rejected, out.reason, socket.peer);
        closeSoon(socket.ws, out.rejected === undefined ? 1000 : 1008, out.reason);
        continue;
      }
      if (socket.ws.readyState !== WebSocket.OPEN) continue;
      // A push goes to every peer as the same message: pack it once.
      let frame = packed.get(out.message);
      if (frame === undefined) {
        frame = packr.pack(out.message);
        packed.set(out.message, frame);
      }
      if (frame.length > this.options.maxPayloadBytes) {
        // Chunking keeps frames far below the limit; one that is not would be refused by the peer, so it is not sent.
        this.options.events.fault?.('send', new Error(`a ${out.message.type} frame of ${frame.length} bytes is over the frame limit`));
        continue;
      }
      this.options.events.frameOut?.(socket.peer, out.message.type, frame.length);
      socket.ws.send(frame);
      this.core.wrote(out.conn, out.message.type, frame.length);
    }
  }

  /** Run `work`; whatever it throws is reported, and closes connection `conn` if one is involved. */
  private guard(where: string, conn: ConnId | undefined, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.options.events.fault?.(where, error);
      const socket = conn === undefined ? undefined : this.sockets.get(conn);
      if (socket !== undefined) closeSoon(socket.ws, 1011, 'internal error');
    }
  }
}

/**
 * How long a closing handshake may take before the socket is dropped. ws
 * waits 30 s for the peer's close frame by default, and until 'close' fires
 * the core still counts the connection and will not redial: a peer behind a
 * black-holed link (it never answers) kept a healed pair apart for 30 s.
 */
const CLOSE_GRACE_MS = 1_000;

function closeSoon(ws: WebSocket, code: number, reason: string): void {
  // A close reason is at most 123 bytes of UTF-8, or ws throws.
  let text = reason.slice(0, 120);
  while (Buffer.byteLength(text) > 120) text = text.slice(0, -1);
  try {
    ws.close(code, text);
  } catch {
    ws.terminate();
  }
  setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
}
