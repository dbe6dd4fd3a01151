import { Packr } from 'msgpackr';
import { ReplicaState } from '../crdt/replica-state.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import type { GossipConfig } from './config.ts';
import { ProtocolError, parseMessage, type Message } from './messages.ts';
import { GossipCore, type ConnId, type Output } from './protocol.ts';
import type { HitRow } from './replica-view.ts';
import { mulberry32 } from './random.ts';
import { ReplicatedState } from './replicated-state.ts';

/** Faults the simulated network applies to frames after the handshake. */
export interface SimFaults {
  /** One-way latency: base plus uniform jitter (jitter reorders frames). */
  readonly latencyMs: number;
  readonly jitterMs: number;
  /** Chance a frame is lost, or delivered twice. */
  readonly dropRate: number;
  readonly duplicateRate: number;
  /** Each direction of a link carries at most this many bytes a second (a slow link); unlimited when absent. */
  readonly bytesPerSecond?: number;
}

export interface SimNode {
  readonly index: number;
  readonly id: string;
  readonly origin: string;
  readonly address: string;
  readonly core: GossipCore;
  readonly replicated: ReplicatedState;
  readonly state: ReplicaState;
  seq: number;
  /** Total hits this node took (for checks). */
  taken: number;
}

interface Link {
  readonly a: ConnId;
  readonly b: ConnId;
  readonly nodeA: number;
  readonly nodeB: number;
  closed: boolean;
  /** Per sending conn: when its direction's last queued byte is on the wire (bandwidth-limited links). */
  readonly busyUntil: Map<ConnId, number>;
}

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * A deterministic network in virtual time: N gossip cores, a seeded random
 * source, latency, loss, duplication, reordering and partitions. Every frame
 * goes through msgpack both ways, so bytes are counted as on the wire.
 */
export class SimNetwork {
  readonly nodes: SimNode[] = [];
  now = 0;
  bytesSent = 0;
  framesSent = 0;
  /** Bytes of delta frames only (the payload of replication). */
  deltaBytes = 0;
  /** The largest frame sent, and how many links broke (closed by a core or a partition). */
  largestFrame = 0;
  linksBroken = 0;
  private readonly events: Event[] = [];
  private eventSeq = 0;
  private nextConn = 1;
  private readonly links = new Map<ConnId, Link>();
  private readonly connNode = new Map<ConnId, number>();
  /** Node index → partition group; nodes in different groups cannot talk. */
  private groups: number[] | undefined;
  private readonly random: () => number;

  constructor(
    n: number,
    private readonly faults: SimFaults,
    config: GossipConfig,
    seed: number,
    options: { readonly seeds?: (index: number, n: number) => number[]; readonly start?: number } = {},
  ) {
    this.random = mulberry32(seed);
    this.now = options.start ?? Date.UTC(2026, 0, 1);
    for (let i = 0; i < n; i++) {
      const id = `n${i}`;
      const origin = `${id}#sim`;
      const state = new ReplicaState();
      const replicated = new ReplicatedState(origin, state);
      const seeds = (options.seeds?.(i, n) ?? (i === 0 ? [] : [0])).map(simAddress);
      const core = new GossipCore({ id, origin, address: simAddress(i) }, replicated, config, {
        seeds,
        secret: undefined,
        randomBytes: (k) => Uint8Array.from({ length: k }, () => Math.floor(this.random() * 256)),
        random: this.random,
      });
      // What a socket would still hold: the bytes of this direction not yet on the wire.
      core.backlog = (conn) => this.backlogOf(conn);
      this.nodes.push({ index: i, id, origin, address: simAddress(i), core, replicated, state, seq: 0, taken: 0 });
    }
  }

  /** `n` hits of `key` on node `index` now: committed locally, pushed on its next tick. */
  hit(index: number, key: string, n = 1): void {
    const node = this.node(index);
    node.seq++;
    node.taken += n;
    node.state.addHit(node.origin, key, this.now, n, node.seq);
    node.replicated.noteLocal(node.seq, this.now);
    const second = bucketStart(0, this.now);
    const counts = ALL_TIERS.map((tier) => node.state.get(node.origin, key, tier, bucketStart(tier, second)));
    const row: HitRow = { key, second, counts: counts as unknown as HitRow['counts'] };
    node.core.localCommit({ seq: node.seq, at: this.now, hits: [row] });
  }

  /**
   * `n` hits of `key` under an idempotency token on node `index`, as a node
   * takes them: counted (and the observation pushed with the hit) unless the
   * node already knows the token. Returns false for a repeat.
   */
  hitOnce(index: number, key: string, token: string, n = 1): boolean {
    const node = this.node(index);
    if (node.state.tokens.repeatOf(key, token, this.now) !== undefined) return false;
    node.seq++;
    node.taken += n;
    node.state.addHit(node.origin, key, this.now, n, node.seq);
    node.state.observe(key, token, { origin: node.origin, at: this.now, n });
    node.replicated.noteLocal(node.seq, this.now);
    const second = bucketStart(0, this.now);
    const counts = ALL_TIERS.map((tier) => node.state.get(node.origin, key, tier, bucketStart(tier, second)));
    const row: HitRow = { key, second, counts: counts as unknown as HitRow['counts'] };
    node.core.localCommit({ seq: node.seq, at: this.now, hits: [row], tokens: [{ key, token, at: this.now, n }] });
    return true;
  }

  /** Cut the network into groups (node index → group); open connections across groups break. */
  partition(groupOf: (index: number) => number): void {
    this.groups = this.nodes.map((n) => groupOf(n.index));
    for (const link of [...this.links.values()]) {
      if (!this.canTalk(link.nodeA, link.nodeB)) this.breakLink(link);
    }
  }

  heal(): void {
    this.groups = undefined;
  }

  /** Run virtual time forward by `ms`, ticking every node every `tickMs`. */
  run(ms: number, tickMs = 10): void {
    const end = this.now + ms;
    while (this.now < end) {
      const next = Math.min(end, this.now + tickMs);
      this.drainUntil(next);
      this.now = next;
      for (const node of this.nodes) this.handle(node.index, node.core.tick(this.now));
    }
  }

  /** Run until every node holds the same slots (or `limitMs` passes); returns the time taken, or undefined. */
  runUntilConverged(limitMs: number, tickMs = 10, checkEveryMs = 50): number | undefined {
    const start = this.now;
    while (this.now - start < limitMs) {
      this.run(checkEveryMs, tickMs);
      if (this.converged()) return this.now - start;
    }
    return undefined;
  }

  converged(): boolean {
    const first = this.nodes[0];
    if (first === undefined) return true;
    const reference = fingerprint(first.state);
    return this.nodes.every((n) => fingerprint(n.state) === reference);
  }

  node(index: number): SimNode {
    const node = this.nodes[index];
    if (node === undefined) throw new RangeError(`no node ${index}`);
    return node;
  }

  // ---- internals ----

  private canTalk(a: number, b: number): boolean {
    return this.groups === undefined || this.groups[a] === this.groups[b];
  }

  private handle(index: number, outputs: readonly Output[]): void {
    for (const out of outputs) {
      if (out.kind === 'dial') this.dial(index, out.address);
      else if (out.kind === 'close') {
        const link = this.links.get(out.conn);
        if (link !== undefined) this.breakLink(link);
      } else this.send(out.conn, out.message);
    }
  }

  private dial(from: number, address: string): void {
    const to = Number(/^sim-([0-9]+):/.exec(address)?.[1] ?? -1);
    const at = this.now + this.faults.latencyMs;
    if (!this.canTalk(from, to) || this.nodes[to] === undefined) {
      this.schedule(at, () => this.node(from).core.dialFailed(address, this.now));
      return;
    }
    const a = this.nextConn++;
    const b = this.nextConn++;
    const link: Link = { a, b, nodeA: from, nodeB: to, closed: false, busyUntil: new Map() };
    this.links.set(a, link);
    this.links.set(b, link);
    this.connNode.set(a, from);
    this.connNode.set(b, to);
    this.schedule(at, () => {
      if (link.closed) return this.node(from).core.dialFailed(address, this.now);
      this.handle(to, this.node(to).core.connected(b, this.now));
      this.handle(from, this.node(from).core.connected(a, this.now, address));
    });
  }

  private send(conn: ConnId, message: Parameters<typeof packr.pack>[0]): void {
    const link = this.links.get(conn);
    if (link === undefined || link.closed) return;
    const frame = packr.pack(message);
    this.bytesSent += frame.length;
    this.largestFrame = Math.max(this.largestFrame, frame.length);
    this.framesSent++;
    const type = (message as { type?: string }).type;
    if (type === 'delta') this.deltaBytes += frame.length;
    const peerConn = conn === link.a ? link.b : link.a;
    this.node(this.connNode.get(conn) ?? -1).core.wrote(conn, (message as { type: Message['type'] }).type, frame.length);
    const peer = this.connNode.get(peerConn) ?? -1;
    const handshake = type === 'hello' || type === 'auth';
    const copies = handshake ? 1 : this.random() < this.faults.dropRate ? 0 : this.random() < this.faults.duplicateRate ? 2 : 1;
    // On a slow link a frame takes its size over the bandwidth to cross, behind the frames before it; the receiver
    // hears its bytes arrive all along (as the WebSocket transport reports raw data), so it is not taken for dead.
    let transmitted = this.now;
    const bandwidth = this.faults.bytesPerSecond;
    if (bandwidth !== undefined) {
      const start = Math.max(this.now, link.busyUntil.get(conn) ?? 0);
      transmitted = start + Math.ceil((frame.length / bandwidth) * 1000);
      link.busyUntil.set(conn, transmitted);
      for (let t = start + 500; t < transmitted; t += 500) this.schedule(t + this.faults.latencyMs, () => (link.closed ? undefined : this.node(peer).core.heard(peerConn, this.now)));
    }
    for (let i = 0; i < copies; i++) {
      // Handshake frames keep their order; others may be reordered by jitter.
      // Whole milliseconds, as Date.now() gives the real transport.
      const jitter = handshake ? 0 : Math.floor(this.random() * (this.faults.jitterMs + 1));
      this.schedule(transmitted + this.faults.latencyMs + jitter, () => {
        if (link.closed) return;
        let decoded;
        try {
          decoded = parseMessage(packr.unpack(frame), this.now);
        } catch (error) {
          // As the WebSocket transport does: a bad frame closes its connection.
          if (!(error instanceof ProtocolError)) throw error;
          this.breakLink(link);
          return;
        }
        this.handle(peer, this.node(peer).core.received(peerConn, decoded, this.now, frame.length));
      });
    }
  }

  private backlogOf(conn: ConnId): number {
    const link = this.links.get(conn);
    const bandwidth = this.faults.bytesPerSecond;
    if (link === undefined || bandwidth === undefined) return 0;
    return Math.max(0, ((link.busyUntil.get(conn) ?? 0) - this.now) * bandwidth) / 1000;
  }

  private breakLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.linksBroken++;
    this.links.delete(link.a);
    this.links.delete(link.b);
    this.node(link.nodeA).core.disconnected(link.a, this.now);
    this.node(link.nodeB).core.disconnected(link.b, this.now);
  }

  private schedule(at: number, run: () => void): void {
    this.events.push({ at, seq: this.eventSeq++, run });
    let i = this.events.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(this.events[i] as Event, this.events[parent] as Event)) return;
      [this.events[i], this.events[parent]] = [this.events[parent] as Event, this.events[i] as Event];
      i = parent;
    }
  }

  private drainUntil(time: number): void {
    for (;;) {
      const first = this.events[0];
      if (first === undefined || first.at > time) return;
      this.popEvent();
      this.now = Math.max(this.now, first.at);
      first.run();
    }
  }

  // A binary min-heap on (at, seq): thousands of nodes make thousands of frames in flight.
  private popEvent(): void {
    const last = this.events.pop();
    if (last === undefined || this.events.length === 0) return;
    this.events[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.events.length && before(this.events[l] as Event, this.events[m] as Event)) m = l;
      if (r < this.events.length && before(this.events[r] as Event, this.events[m] as Event)) m = r;
      if (m === i) return;
      [this.events[i], this.events[m]] = [this.events[m] as Event, this.events[i] as Event];
      i = m;
    }
  }
}

/** Node i's address: a host:port like any other (port 0 is not one). */
export function simAddress(index: number): string {
  return `sim-${index}:7000`;
}

function before(x: Event, y: Event): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** A canonical text of a state's slots, for equality checks. */
export function fingerprint(state: ReplicaState): string {
  const slots = [...state.slots()].map((s) => `${s.origin}|${s.key}|${s.tier}|${s.start}|${s.count}`);
  const tokens = [...state.tokens.observations()].map((o) => `token|${o.origin}|${o.key}|${o.token}|${o.at}|${o.n}`);
  return [...slots, ...tokens].sort().join('\n');
}
