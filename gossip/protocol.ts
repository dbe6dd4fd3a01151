import { proveIdentity, verifyIdentity } from './auth.ts';
import type { GossipConfig } from './config.ts';
import { decodeDelta, encodeDelta } from './delta-codec.ts';
import { PROTOCOL_VERSION, ProtocolError, type Delta, type Message, type Sync, type VersionEntry, type VersionVector } from './messages.ts';
import type { Changes, HitRow, LocalCommit, ReplicaView } from './replica-view.ts';

export type ConnId = number;

/** What the core asks its transport to do. */
export type Output =
  | { readonly kind: 'send'; readonly conn: ConnId; readonly message: Message }
  | { readonly kind: 'close'; readonly conn: ConnId; readonly reason: string; readonly rejected?: 'handshake' | 'frame' }
  | { readonly kind: 'dial'; readonly address: string };

export type PeerState = 'up' | 'suspect' | 'down';

/** One member as this node sees it (for /cluster, freshness and metrics). */
export interface PeerView {
  readonly id: string;
  readonly origin: string | undefined;
  readonly address: string;
  readonly state: PeerState;
  /** Local time of the last frame from it; undefined if never heard. */
  readonly lastContact: number | undefined;
  /** Its version vector as last reported. */
  readonly vv: VersionVector;
  /** Its clock minus ours, and the round trip, from the last sync sample. */
  readonly clockOffsetMs: number | undefined;
  readonly rttMs: number | undefined;
  /** Do we hold its own origin up to what it last reported? */
  readonly synced: boolean;
  /** How long its newest change we lack has been waiting (0 when synced). */
  readonly lagMs: number;
}

export interface Identity {
  readonly id: string;
  readonly origin: string;
  readonly address: string;
}

interface Conn {
  readonly id: ConnId;
  readonly outbound: boolean;
  readonly dialAddress: string | undefined;
  readonly nonce: Uint8Array;
  phase: 'hello' | 'auth' | 'open';
  peerId: string | undefined;
  peerOrigin: string | undefined;
  peerAddress: string | undefined;
  lastHeard: number;
  lastSyncSent: number;
  /** The last `sent` of the peer's syncs and when it arrived, for the clock sample we echo. */
  echo: number;
  echoReceivedAt: number;
  /** Per origin: the newest entry sent here as a complete delta, and when (the repair guard). */
  readonly sentTo: Map<string, { seq: number; at: number }>;
  /** The membership version last sent here: the member list goes out again only when it changed. */
  membersSent: number;
}

interface Member {
  readonly id: string;
  address: string;
  origin: string | undefined;
  conn: ConnId | undefined;
  lastContact: number | undefined;
  vv: Map<string, VersionEntry>;
  clockOffsetMs: number | undefined;
  rttMs: number | undefined;
  /** The peers it last said it is connected to. */
  links: ReadonlySet<string>;
}

interface Relay {
  readonly origin: string;
  readonly from: number | null;
  readonly to: VersionEntry;
  readonly changes: Changes;
  readonly source: string;
  readonly readyAt: number;
}

interface DialState {
  attempts: number;
  nextAt: number;
  pending: boolean;
}

export interface GossipStats {
  rejectedHandshakes: number;
  rejectedFrames: number;
  deltasApplied: number;
  rowsApplied: number;
}

/**
 * The replication protocol as a state machine with no sockets, timers or
 * clock of its own: inputs are connection events, frames, local commits and
 * ticks (each with `now`); outputs are frames to send, connections to close
 * and addresses to dial. The same code runs over WebSockets, over an
 * in-memory network in tests, and in the simulator.
 *
 * Replication: local commits are pushed to every peer each push interval
 * (complete deltas: a peer holding `from` then holds `to`). Every sync
 * interval peers swap version vectors and each sends the other what it lacks
 * of every origin, its own and those it holds for others. A received delta's
 * new parts are relayed, after a short delay, to the peers that are not
 * linked to its origin and do not hold it yet, never back to where it came
 * from. Merging is max per slot, so duplicates and reordering are harmless.
 */
export class GossipCore {
  readonly stats: GossipStats = { rejectedHandshakes: 0, rejectedFrames: 0, deltasApplied: 0, rowsApplied: 0 };
  private readonly conns = new Map<ConnId, Conn>();
  private readonly members = new Map<string, Member>();
  private readonly dials = new Map<string, DialState>();
  private readonly seeds: readonly string[];
  private readonly pushes: LocalCommit[] = [];
  private relays: Relay[] = [];
  private lastPush = 0;
  /** Bumped whenever a member is added or moves: syncs carry the list only after a change. */
  private membershipVersion = 0;

  constructor(
    private readonly self: Identity,
    private readonly replica: ReplicaView,
    private readonly config: GossipConfig,
    private readonly options: {
      readonly seeds: readonly string[];
      readonly secret: string | undefined;
      readonly randomBytes: (n: number) => Uint8Array;
      readonly random: () => number;
    },
  ) {
    this.seeds = options.seeds.filter((a) => a !== self.address);
  }

  // ---- inputs ----

  /** A transport connection is up (we dialed `dialAddress`, or a peer dialed us). */
  connected(conn: ConnId, now: number, dialAddress?: string): Output[] {
    const c: Conn = {
      id: conn,
      outbound: dialAddress !== undefined,
      dialAddress,
      nonce: this.options.randomBytes(16),
      phase: 'hello',
      peerId: undefined,
      peerOrigin: undefined,
      peerAddress: undefined,
      lastHeard: now,
      lastSyncSent: now,
      echo: 0,
      echoReceivedAt: 0,
      sentTo: new Map(),
      membersSent: -1,
    };
    this.conns.set(conn, c);
    if (dialAddress !== undefined) this.dialState(dialAddress).pending = false;
    return [{ kind: 'send', conn, message: { type: 'hello', protocol: PROTOCOL_VERSION, id: this.self.id, origin: this.self.origin, address: this.self.address, nonce: c.nonce } }];
  }

  /** A dial failed before any connection existed. */
  dialFailed(address: string, now: number): void {
    this.backOff(address, now);
  }

  /** The transport connection is gone, for whatever reason. */
  disconnected(conn: ConnId, now: number): void {
    const c = this.conns.get(conn);
    if (c === undefined) return;
    this.conns.delete(conn);
    if (c.dialAddress !== undefined && c.phase !== 'open') this.backOff(c.dialAddress, now);
    if (c.dialAddress !== undefined && c.phase === 'open') this.dialState(c.dialAddress).nextAt = now + this.config.reconnectMinMs;
    const member = c.peerId === undefined ? undefined : this.members.get(c.peerId);
    if (member?.conn === conn) member.conn = undefined;
  }

  /** A frame arrived, already parsed and validated by `parseMessage`. */
  received(conn: ConnId, message: Message, now: number): Output[] {
    const c = this.conns.get(conn);
    if (c === undefined) return [];
    c.lastHeard = now;
    try {
      switch (message.type) {
        case 'hello':
          return this.onHello(c, message, now);
        case 'auth':
          return this.onAuth(c, message.proof, now);
        default:
          if (c.phase !== 'open') throw new ProtocolError(`${message.type} before the handshake finished`);
          this.touch(c, now);
          if (message.type === 'sync') return this.onSync(c, message, now);
          if (message.type === 'delta') return this.onDelta(c, message, now);
          this.learnVector(c, message.vv);
          return [];
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      const rejected = c.phase === 'open' ? 'frame' : 'handshake';
      if (rejected === 'frame') this.stats.rejectedFrames++;
      else this.stats.rejectedHandshakes++;
      return [{ kind: 'close', conn, reason: error.message, rejected }];
    }
  }

  /** A local batch is durable: push it on the next tick. */
  localCommit(commit: LocalCommit): void {
    this.pushes.push(commit);
  }

  /** Timers: pushes, relays, acks, syncs, failure detection and dials. */
  tick(now: number): Output[] {
    const out: Output[] = [];
    if (now - this.lastPush >= this.config.pushIntervalMs) {
      this.lastPush = now;
      this.flushPushes(now, out);
      this.flushRelays(now, out);
    }
    for (const c of this.conns.values()) {
      const silent = now - c.lastHeard;
      if (silent >= this.config.downAfterMs) {
        out.push({ kind: 'close', conn: c.id, reason: `no frame for ${silent} ms` });
        continue;
      }
      if (c.phase === 'open' && now - c.lastSyncSent >= this.config.syncIntervalMs) out.push(this.syncFrame(c, now));
    }
    this.dialMissing(now, out);
    return out;
  }

  // ---- queries ----

  /** The peer id of an authenticated connection (for metric labels: never a name a stranger chose). */
  peerOf(conn: ConnId): string | undefined {
    const c = this.conns.get(conn);
    return c?.phase === 'open' ? c.peerId : undefined;
  }

  peers(now: number): PeerView[] {
    const mine = this.replica.versionVector();
    return [...this.members.values()].map((m) => {
      const theirs = m.origin === undefined ? undefined : m.vv.get(m.origin);
      const synced = this.holdsAllOf(m, mine);
      const c = m.conn === undefined ? undefined : this.conns.get(m.conn);
      const silent = c === undefined ? Number.POSITIVE_INFINITY : now - c.lastHeard;
      return {
        id: m.id,
        origin: m.origin,
        address: m.address,
        state: c === undefined || c.phase !== 'open' ? 'down' : silent >= this.config.suspectAfterMs ? 'suspect' : 'up',
        lastContact: m.lastContact,
        vv: Object.fromEntries(m.vv),
        clockOffsetMs: m.clockOffsetMs,
        rttMs: m.rttMs,
        synced,
        lagMs: synced || theirs === undefined ? 0 : Math.max(0, now - theirs[1]),
      };
    });
  }

  /** How complete this node's answers are (SPEC section 3). On every count answer: no per-peer views are built. */
  freshness(now: number): { peers: number; synced: number; maxLagMs: number } {
    const mine = this.replica.versionVector();
    let synced = 0;
    let oldest = now;
    for (const m of this.members.values()) {
      if (m.lastContact === undefined || !this.holdsAllOf(m, mine)) continue;
      synced++;
      oldest = Math.min(oldest, m.lastContact);
    }
    return { peers: this.members.size, synced, maxLagMs: Math.max(0, now - oldest) };
  }

  /** Do we hold a member's own origin up to what it last reported? */
  private holdsAllOf(m: Member, mine: VersionVector): boolean {
    const theirs = m.origin === undefined ? undefined : m.vv.get(m.origin);
    const held = m.origin === undefined ? undefined : mine[m.origin];
    return theirs === undefined || (held !== undefined && held[0] >= theirs[0]);
  }

  // ---- handshake ----

  private onHello(c: Conn, hello: Extract<Message, { type: 'hello' }>, now: number): Output[] {
    if (c.phase !== 'hello' || c.peerId !== undefined) throw new ProtocolError('second hello');
    if (hello.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${hello.protocol} is not ${PROTOCOL_VERSION}`);
    if (hello.id === this.self.id) {
      // Dialed ourselves (an address of ours learned from others): never again.
      if (c.dialAddress !== undefined) this.dialState(c.dialAddress).nextAt = Number.POSITIVE_INFINITY;
      throw new ProtocolError('connected to itself');
    }
    c.peerId = hello.id;
    c.peerOrigin = hello.origin;
    c.peerAddress = hello.address;
    c.phase = 'auth';
    c.lastHeard = now;
    const proof = proveIdentity(this.options.secret, hello.nonce, this.self.origin, c.outbound ? 'dialer' : 'acceptor');
    return [{ kind: 'send', conn: c.id, message: { type: 'auth', proof } }];
  }

  private onAuth(c: Conn, proof: Uint8Array, now: number): Output[] {
    if (c.phase !== 'auth' || c.peerOrigin === undefined || c.peerId === undefined) throw new ProtocolError('auth out of order');
    if (!verifyIdentity(this.options.secret, c.nonce, c.peerOrigin, proof, c.outbound ? 'acceptor' : 'dialer')) {
      throw new ProtocolError('authentication failed: wrong cluster secret');
    }
    c.phase = 'open';
    const out: Output[] = [];
    const member = this.memberFor(c.peerId, c.peerAddress ?? c.dialAddress ?? '');
    const existing = member.conn === undefined ? undefined : this.conns.get(member.conn);
    if (existing !== undefined && existing.id !== c.id && existing.phase === 'open') {
      // Both sides dialed: keep the connection dialed by the smaller origin, on both ends alike.
      const keepNew = c.outbound === this.self.origin < c.peerOrigin;
      const drop = keepNew ? existing : c;
      out.push({ kind: 'close', conn: drop.id, reason: 'duplicate connection' });
      if (!keepNew) return out;
    }
    if (member.origin !== c.peerOrigin) member.vv = new Map(); // a new incarnation knows nothing yet
    member.origin = c.peerOrigin;
    if (c.peerAddress !== undefined && c.peerAddress !== member.address) {
      member.address = c.peerAddress;
      this.membershipVersion++;
    }
    member.conn = c.id;
    this.touch(c, now);
    if (c.dialAddress !== undefined) this.dialState(c.dialAddress).attempts = 0;
    out.push(this.syncFrame(c, now));
    return out;
  }

  // ---- replication ----

  private onSync(c: Conn, sync: Sync, now: number): Output[] {
    const member = this.memberOf(c);
    // Clock sample: our echoed send time, minus how long they held it, is one round trip.
    if (sync.echo > 0) {
      const rtt = Math.max(0, now - sync.echo - sync.held);
      member.rttMs = rtt;
      member.clockOffsetMs = sync.sent - (now - rtt / 2);
    }
    c.echo = sync.sent;
    c.echoReceivedAt = now;
    for (const [id, address] of Object.entries(sync.members)) {
      if (id !== this.self.id && !this.members.has(id) && address !== this.self.address) this.memberFor(id, address);
    }
    // The peer's own report replaces what we believed of it (beliefs only ever rose in between).
    member.vv = new Map(Object.entries(sync.vv));
    member.links = new Set(sync.links);
    // Anti-entropy: send what they lack of every origin we hold completely.
    const out: Output[] = [];
    for (const [origin, mine] of Object.entries(this.replica.versionVector())) {
      const theirs = member.vv.get(origin);
      if (theirs !== undefined && theirs[0] >= mine[0]) continue;
      const sent = c.sentTo.get(origin);
      if (sent !== undefined && sent.seq > (theirs?.[0] ?? 0) && now - sent.at < this.config.repairGraceMs) continue;
      const changes = this.replica.changesSince(origin, theirs);
      out.push({ kind: 'send', conn: c.id, message: encodeDelta(origin, changes, mine, theirs?.[0] ?? 0) });
      c.sentTo.set(origin, { seq: mine[0], at: now });
    }
    return out;
  }

  private onDelta(c: Conn, delta: Delta, now: number): Output[] {
    const changes = decodeDelta(delta);
    const to: VersionEntry = [delta.to, delta.at];
    const raised = this.replica.apply(delta.origin, changes, delta.from === null ? undefined : { from: delta.from, to }, to);
    this.stats.deltasApplied++;
    this.stats.rowsApplied += raised.hits.length + raised.slots.length;
    // An origin holds what it sends of itself; a relay says nothing of what the relayer holds in full.
    if (delta.origin === c.peerOrigin) this.learnVector(c, { [delta.origin]: to });
    if (raised.hits.length + raised.slots.length > 0 && delta.origin !== this.self.origin) {
      // Relay only the new parts; complete only if nothing was dropped.
      const whole = raised.hits.length === changes.hits.length && raised.slots.length === changes.slots.length;
      this.relays.push({ origin: delta.origin, from: whole ? delta.from : null, to, changes: raised, source: c.peerId ?? '', readyAt: now + this.config.relayDelayMs });
    }
    return [];
  }

  private flushPushes(now: number, out: Output[]): void {
    const first = this.pushes[0];
    const last = this.pushes[this.pushes.length - 1];
    if (first === undefined || last === undefined) return;
    // Merge the batches since the last push: one row per (key, second), the newest counts.
    const rows = new Map<string, HitRow>();
    for (const commit of this.pushes) for (const row of commit.hits) rows.set(`${row.second}\u0000${row.key}`, row);
    this.pushes.length = 0;
    const to: VersionEntry = [last.seq, last.at];
    const delta = encodeDelta(this.self.origin, { hits: [...rows.values()], slots: [] }, to, first.seq - 1);
    for (const c of this.openConns()) {
      out.push({ kind: 'send', conn: c.id, message: delta });
      // In flight on an ordered connection: the next sync need not repair it.
      c.sentTo.set(this.self.origin, { seq: last.seq, at: now });
    }
  }

  private flushRelays(now: number, out: Output[]): void {
    const waiting: Relay[] = [];
    for (const relay of this.relays) {
      if (relay.readyAt > now) {
        waiting.push(relay);
        continue;
      }
      let delta: Delta | undefined;
      const originNode = this.nodeOfOrigin(relay.origin);
      for (const c of this.openConns()) {
        if (c.peerId === relay.source || c.peerOrigin === relay.origin) continue;
        const member = this.members.get(c.peerId ?? '');
        // A peer linked to the origin gets it first-hand; one that already holds it needs nothing.
        if (originNode !== undefined && member?.links.has(originNode) === true) continue;
        const theirs = member?.vv.get(relay.origin);
        if (theirs !== undefined && theirs[0] >= relay.to[0]) continue;
        delta ??= encodeDelta(relay.origin, relay.changes, relay.to, relay.from);
        out.push({ kind: 'send', conn: c.id, message: delta });
      }
    }
    this.relays = waiting;
  }

  private syncFrame(c: Conn, now: number): Output {
    c.lastSyncSent = now;
    // The member list is O(cluster): send it on a new connection and after changes only.
    const members: Record<string, string> = {};
    if (c.membersSent !== this.membershipVersion) {
      members[this.self.id] = this.self.address;
      for (const m of this.members.values()) members[m.id] = m.address;
      c.membersSent = this.membershipVersion;
    }
    return {
      kind: 'send',
      conn: c.id,
      message: {
        type: 'sync',
        vv: this.replica.versionVector(),
        members,
        links: [...this.openConns()].map((open) => open.peerId ?? ''),
        sent: Math.round(now),
        echo: c.echo,
        held: c.echo === 0 ? 0 : Math.round(now - c.echoReceivedAt),
      },
    };
  }

  private learnVector(c: Conn, vv: VersionVector): void {
    const member = this.memberOf(c);
    for (const [origin, entry] of Object.entries(vv)) {
      const known = member.vv.get(origin);
      if (known === undefined || entry[0] > known[0]) member.vv.set(origin, entry);
    }
  }

  // ---- membership ----

  private dialMissing(now: number, out: Output[]): void {
    const connected = new Set<string>();
    for (const c of this.conns.values()) {
      if (c.dialAddress !== undefined) connected.add(c.dialAddress);
      if (c.phase === 'open' && c.peerAddress !== undefined) connected.add(c.peerAddress);
    }
    const targets = new Set(this.seeds);
    if (!this.config.static) for (const m of this.members.values()) targets.add(m.address);
    let budget = this.config.maxPeers - this.conns.size - [...this.dials.values()].filter((d) => d.pending).length;
    for (const address of targets) {
      if (budget <= 0) return;
      if (address === this.self.address || address === '' || connected.has(address)) continue;
      const state = this.dialState(address);
      if (state.pending || now < state.nextAt) continue;
      state.pending = true;
      budget--;
      out.push({ kind: 'dial', address });
    }
  }

  private backOff(address: string, now: number): void {
    const state = this.dialState(address);
    state.pending = false;
    state.attempts++;
    const cap = Math.min(this.config.reconnectMaxMs, this.config.reconnectMinMs * 2 ** Math.min(state.attempts, 20));
    // Jitter spreads the redials of many nodes after a shared failure.
    state.nextAt = now + cap * (0.5 + this.options.random() / 2);
  }

  private dialState(address: string): DialState {
    let state = this.dials.get(address);
    if (state === undefined) {
      state = { attempts: 0, nextAt: 0, pending: false };
      this.dials.set(address, state);
    }
    return state;
  }

  private memberFor(id: string, address: string): Member {
    let member = this.members.get(id);
    if (member === undefined) {
      member = { id, address, origin: undefined, conn: undefined, lastContact: undefined, vv: new Map(), clockOffsetMs: undefined, rttMs: undefined, links: new Set() };
      this.members.set(id, member);
      this.membershipVersion++;
    }
    return member;
  }

  private nodeOfOrigin(origin: string): string | undefined {
    for (const m of this.members.values()) if (m.origin === origin) return m.id;
    return undefined;
  }

  private memberOf(c: Conn): Member {
    return this.memberFor(c.peerId ?? '', c.peerAddress ?? '');
  }

  private touch(c: Conn, now: number): void {
    const member = this.memberOf(c);
    member.lastContact = now;
  }

  private *openConns(): IterableIterator<Conn> {
    for (const c of this.conns.values()) {
      if (c.phase === 'open' && c.peerId !== undefined && this.members.get(c.peerId)?.conn === c.id) yield c;
    }
  }
}
