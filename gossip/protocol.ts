import { proveIdentity, verifyIdentity } from './auth.ts';
import { RepairChunks, allChunks, HitChunks, type ChunkSource } from './chunks.ts';
import type { ClockSample } from './clock-filter.ts';
import type { GossipConfig } from './config.ts';
import { decodeDelta } from './delta-codec.ts';
import { LIMITS } from './limits.ts';
import { Membership, type ConnId, type Member } from './membership.ts';
import { PROTOCOL_VERSION, ProtocolError, timeBounds, type Delta, type Hello, type Message, type Read, type ReadReply, type Sync, type SyncEntry, type VersionEntry } from './messages.ts';
import { OpenReads } from './open-reads.ts';
import { fromRuns } from './read-plan.ts';
import { PeerLink, seqOf } from './peer-link.ts';
import { OwnOriginHolders } from './own-origin-holders.ts';
import { RelayQueue, type Relay } from './relays.ts';
import { ReplicaUnavailableError, type HitRow, type LocalCommit, type ReplicaView, type SlotRow, type TokenChange } from './replica-view.ts';
import type { KeyChange } from '../crdt/replica-state.ts';
import type { Tier } from '../crdt/tiers.ts';

export type { ConnId } from './membership.ts';

/** A receiver reports what arrived at least this often while delta bytes keep arriving. */
const FLOW_REPORT_MS = 50;

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
  readonly lastContact: number | undefined;
  /** What it last said it holds: per origin [seq, at, digest, high]. */
  readonly vv: Readonly<Record<string, SyncEntry>>;
  /** Its clock minus ours, and the round trip, from the best recent sample. */
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

export interface CoreOptions {
  readonly seeds: readonly string[];
  readonly secret: string | undefined;
  readonly randomBytes: (n: number) => Uint8Array;
  readonly random: () => number;
  /** A peer holds more of this node's own origin than this node does (its store lost writes): see node/replica.ts. */
  readonly onOwnOriginBehind?: (peer: string, theirs: SyncEntry) => void;
  /** A peer was learned to hold more of this node's own origin (what `?ack=` waits for). */
  readonly onHeld?: () => void;
  /** A peer answered a fresh read this node asked (`?read=`). */
  readonly onReadReply?: (peer: string, reply: ReadReply) => void;
}

interface Conn {
  readonly id: ConnId;
  readonly outbound: boolean;
  readonly dialAddress: string | undefined;
  readonly nonce: Uint8Array;
  readonly openedAt: number;
  phase: 'hello' | 'auth' | 'open';
  peerId: string | undefined;
  peerOrigin: string | undefined;
  peerAddress: string | undefined;
  lastHeard: number;
  lastSyncSent: number;
  /** The last `sent` of the peer's syncs and when it arrived, for the clock sample we echo. */
  echo: number;
  echoReceivedAt: number;
  membersSent: number;
  gotSync: boolean;
  link: PeerLink | undefined;
  /** Delta bytes received here, and how many of them the last `flow` frame reported, when. */
  deltaBytesIn: number;
  flowReported: number;
  flowReportedAt: number;
}

export interface GossipStats {
  rejectedHandshakes: number;
  rejectedFrames: number;
  deltasApplied: number;
  rowsApplied: number;
  repairs: number;
  /** Times a limit of LIMITS stopped something, by limit. */
  limited: Record<'members' | 'origins' | 'held' | 'relays' | 'handshakes', number>;
}

/**
 * The replication protocol as a state machine with no sockets, timers or
 * clock of its own: inputs are connection events, frames, local commits and
 * ticks (each with `now`); outputs are frames to send, connections to close
 * and addresses to dial. The same code runs over WebSockets, over an
 * in-memory network in tests, and in the simulator.
 *
 * Local commits are pushed to peers in step with us (PeerLink); every sync
 * interval peers swap what they hold per origin, and each repairs what the
 * other lacks, in chunks paced by the socket: complete repairs where it is
 * ahead, a partial exchange where both hold the same complete entry but
 * their digests differ (data of an origin that is gone, held beyond it).
 * Received deltas' new parts are relayed to peers not linked to their origin.
 */
export class GossipCore {
  readonly stats: GossipStats = { rejectedHandshakes: 0, rejectedFrames: 0, deltasApplied: 0, rowsApplied: 0, repairs: 0, limited: { members: 0, origins: 0, held: 0, relays: 0, handshakes: 0 } };
  private readonly conns = new Map<ConnId, Conn>();
  private readonly membership: Membership;
  private readonly pushes: LocalCommit[] = [];
  private readonly relays = new RelayQueue();
  private readonly holders = new OwnOriginHolders();
  private readonly openReads = new OpenReads();
  private lastPush = 0;
  private lastExpiry = 0;
  private self: Identity;
  /** Bytes the transport still holds for a connection; the simulator has none. */
  backlog: (conn: ConnId) => number = () => 0;

  constructor(
    self: Identity,
    private readonly replica: ReplicaView,
    private readonly config: GossipConfig,
    private readonly options: CoreOptions,
  ) {
    this.self = self;
    this.membership = new Membership(self, options.seeds.filter((a) => a !== self.address), config, options.random);
  }

  get identity(): Identity {
    return this.self;
  }

  // ---- inputs ----

  /** A transport connection is up (we dialed `dialAddress`, or a peer dialed us). */
  connected(conn: ConnId, now: number, dialAddress?: string): Output[] {
    const nonce = this.options.randomBytes(16);
    const c: Conn = { id: conn, outbound: dialAddress !== undefined, dialAddress, nonce, openedAt: now, phase: 'hello', peerId: undefined, peerOrigin: undefined, peerAddress: undefined, lastHeard: now, lastSyncSent: now, echo: 0, echoReceivedAt: 0, membersSent: -1, gotSync: false, link: undefined, deltaBytesIn: 0, flowReported: 0, flowReportedAt: now };
    this.conns.set(conn, c);
    if (dialAddress !== undefined) this.membership.dialed(dialAddress);
    const { id, origin, address } = this.self;
    return [{ kind: 'send', conn, message: { type: 'hello', protocol: PROTOCOL_VERSION, id, origin, address, nonce } }];
  }

  dialFailed(address: string, now: number): void {
    this.membership.backOff(address, now);
  }

  disconnected(conn: ConnId, now: number): void {
    const c = this.conns.get(conn);
    if (c === undefined) return;
    this.conns.delete(conn);
    if (c.dialAddress !== undefined) {
      if (c.phase === 'open') this.membership.redialSoon(c.dialAddress, now);
      else this.membership.backOff(c.dialAddress, now);
    }
    const member = c.peerId === undefined ? undefined : this.membership.get(c.peerId);
    if (member?.conn === conn) {
      member.conn = undefined;
      member.downSince = now;
    }
  }

  /** Bytes arrived on a connection: a peer sending a big frame over a slow link is alive. */
  heard(conn: ConnId, now: number): void {
    const c = this.conns.get(conn);
    if (c !== undefined) c.lastHeard = now;
  }

  /** The transport sent a frame of `bytes` on a connection (flow control counts delta bytes). */
  wrote(conn: ConnId, type: Message['type'], bytes: number): void {
    const link = this.conns.get(conn)?.link;
    if (link !== undefined && type === 'delta') link.deltaBytesOut += bytes;
  }

  /** A frame of `bytes` arrived, already parsed and validated by `parseMessage`. */
  received(conn: ConnId, message: Message, now: number, bytes = 0): Output[] {
    const c = this.conns.get(conn);
    if (c === undefined) return [];
    c.lastHeard = now;
    if (message.type === 'delta') c.deltaBytesIn += bytes;
    try {
      switch (message.type) {
        case 'hello':
          return this.onHello(c, message, now);
        case 'auth':
          return this.onAuth(c, message.proof, now);
        default: {
          const link = c.phase === 'open' ? c.link : undefined;
          if (link === undefined) throw new ProtocolError(`${message.type} before the handshake finished`);
          const member = this.memberOf(c);
          if (member !== undefined) member.lastContact = now;
          if (message.type === 'held') {
            // Beyond our own seq it holds writes our store lost (its next sync says so): that acknowledges nothing.
            const own = this.replica.entry(this.self.origin)?.[0] ?? 0;
            if (member !== undefined && message.origin === this.self.origin && message.seq <= own) this.noteHeld(member.id, message.seq);
            return [];
          }
          if (message.type === 'read') return [{ kind: 'send', conn: c.id, message: this.answerRead(message) }];
          if (message.type === 'readReply') {
            // Any authenticated connection of a member will do: the one a read went out on may have been replaced since.
            const peer = c.peerId;
            if (peer !== undefined && this.membership.get(peer) !== undefined && this.openReads.answered(message.id, peer)) this.options.onReadReply?.(peer, message);
            return [];
          }
          if (message.type === 'flow') {
            link.noteFlow(message.received, now);
            const out: Output[] = [];
            this.pump(now, out);
            return out;
          }
          const out = message.type === 'sync' ? this.onSync(c, link, message, now) : this.onDelta(c, message, now);
          this.reportFlow(c, now, out, LIMITS.flowReportBytes);
          this.pump(now, out);
          return out;
        }
      }
    } catch (error) {
      if (error instanceof ReplicaUnavailableError) return [{ kind: 'close', conn, reason: error.message }];
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

  /**
   * Ask every peer with an open connection what it holds of `keys` at the
   * buckets of `runs` (a fresh read), and every peer whose connection opens
   * until `readDone(id)`; their `readReply`s come to `onReadReply`, one per
   * peer. Returns the frames to send now.
   */
  askRead(id: number, keys: readonly string[], runs: readonly number[]): Output[] {
    const message: Read = { type: 'read', id, keys, runs };
    this.openReads.open(message);
    const outputs: Output[] = [];
    for (const c of this.openConns()) outputs.push({ kind: 'send', conn: c.id, message });
    return outputs;
  }

  /** The read is answered (or timed out): peers connecting later are not asked. */
  readDone(id: number): void {
    this.openReads.close(id);
  }

  /** Push the local commits now rather than at the next push interval: a request waits for peers to hold them (`?ack=`). */
  pushNow(now: number): Output[] {
    const out: Output[] = [];
    if (this.pushes.length === 0) return out;
    this.lastPush = now;
    this.flushPushes(out);
    this.pump(now, out);
    return out;
  }

  /** Timers: pushes, relays, chunked sends, syncs, failure detection, forgetting and dials. */
  tick(now: number): Output[] {
    const out: Output[] = [];
    for (const c of this.conns.values()) if (c.link !== undefined) c.link.backlogBytes = this.backlog(c.id);
    if (now - this.lastPush >= this.config.pushIntervalMs) {
      this.lastPush = now;
      this.flushPushes(out);
      this.flushRelays(now, out);
    }
    for (const c of this.conns.values()) {
      const silent = now - c.lastHeard;
      if (c.phase !== 'open' && now - c.openedAt >= LIMITS.handshakeTimeoutMs) {
        this.stats.rejectedHandshakes++;
        out.push({ kind: 'close', conn: c.id, reason: 'handshake timed out', rejected: 'handshake' });
      } else if (silent >= this.config.downAfterMs) out.push({ kind: 'close', conn: c.id, reason: `nothing heard for ${silent} ms` });
      else if (c.link?.flowStalled(now, 2 * this.config.syncIntervalMs) === true) out.push({ kind: 'close', conn: c.id, reason: 'delta bytes sent were never reported received: the stream lost data' });
      else if (c.phase === 'open' && now - c.lastSyncSent >= this.config.syncIntervalMs) out.push(this.syncFrame(c, now));
      if (c.phase === 'open' && now - c.flowReportedAt >= FLOW_REPORT_MS) this.reportFlow(c, now, out, 1);
    }
    this.pump(now, out);
    if (now - this.lastExpiry >= this.config.syncIntervalMs) {
      this.lastExpiry = now;
      this.membership.expire(now);
    }
    this.dialMissing(now, out);
    return out;
  }

  /** Forget a member now (DELETE /cluster/members/:id): its connection closes and others' syncs do not bring it back. */
  forget(id: string, now: number): { found: boolean; outputs: Output[] } {
    const member = this.membership.forget(id, now);
    if (member === undefined) return { found: false, outputs: [] };
    this.holders.drop(id);
    const outputs: Output[] = member.conn === undefined ? [] : [{ kind: 'close', conn: member.conn, reason: 'member forgotten' }];
    return { found: true, outputs };
  }

  /** This node goes on as a new origin: every connection closes, and the next ones say the new name. */
  rotate(self: Identity): Output[] {
    this.self = self;
    this.pushes.length = 0;
    this.relays.clear();
    this.holders.reset();
    return [...this.conns.keys()].map((conn): Output => ({ kind: 'close', conn, reason: 'node started a new incarnation' }));
  }

  // ---- queries ----

  /** The peer id of an authenticated connection (for metric labels: never a name a stranger chose). */
  peerOf(conn: ConnId): string | undefined {
    const c = this.conns.get(conn);
    return c?.phase === 'open' ? c.peerId : undefined;
  }

  /** Connections still in their handshake. */
  get pendingHandshakes(): number {
    let n = 0;
    for (const c of this.conns.values()) if (c.phase !== 'open') n++;
    return n;
  }

  get memberCount(): number {
    return this.membership.members.size + 1;
  }

  /**
   * Of the members (the latest incarnation of every id known and not
   * forgotten, this node included), how many are known to hold this node's
   * own origin up to `seq`.
   */
  holdersOf(seq: number): { acked: number; members: number } {
    return { acked: 1 + this.holders.count(seq, this.membership.members.keys()), members: this.memberCount };
  }

  /** Seeds from a name's records (--peers-dns): they replace the name's previous answer; --peers stay. */
  setNamedSeeds(addresses: readonly string[]): void {
    this.membership.setNamedSeeds(addresses);
  }

  /** Has every seed either answered a sync or failed a dial since start? (What start-up waits for before taking hits.) */
  seedsSettled(): boolean {
    return this.membership.seeds.every((address) => {
      if (this.membership.failedLately(address)) return true;
      // One peer may be reached at two seed addresses (A and AAAA, a name and an IP): the second dial is a duplicate and closes.
      const through = this.membership.reachedThrough(address);
      for (const c of this.conns.values()) if ((c.dialAddress === address || c.peerAddress === address || (through !== undefined && c.peerId === through)) && c.gotSync) return true;
      return false;
    });
  }

  peers(now: number): PeerView[] {
    return [...this.membership.members.values()].map((m) => {
      const theirs = m.origin === undefined ? undefined : m.vv.get(m.origin);
      const synced = this.holdsAllOf(m);
      const c = m.conn === undefined ? undefined : this.conns.get(m.conn);
      const silent = c === undefined ? Number.POSITIVE_INFINITY : now - c.lastHeard;
      const sample = m.clock.best(Number.NEGATIVE_INFINITY, now);
      return {
        id: m.id,
        origin: m.origin,
        address: m.address,
        state: c === undefined || c.phase !== 'open' ? 'down' : silent >= this.config.suspectAfterMs ? 'suspect' : 'up',
        lastContact: m.lastContact,
        vv: Object.fromEntries(m.vv),
        clockOffsetMs: sample?.offsetMs,
        rttMs: sample?.rttMs,
        synced,
        lagMs: synced || theirs === undefined ? 0 : Math.max(0, now - theirs[1]),
      };
    });
  }

  /** The best recent clock sample of every peer that is up: what the skew guard judges by. */
  clockSamples(now: number, maxAgeMs: number): ClockSample[] {
    const out: ClockSample[] = [];
    for (const m of this.membership.members.values()) {
      const c = m.conn === undefined ? undefined : this.conns.get(m.conn);
      if (c?.phase !== 'open' || now - c.lastHeard >= this.config.suspectAfterMs) continue;
      const best = m.clock.best(now - maxAgeMs, now);
      if (best !== undefined) out.push(best);
    }
    return out;
  }

  /** How complete this node's answers are (SPEC section 3). On every count answer: no per-peer views are built. */
  freshness(now: number): { peers: number; synced: number; maxLagMs: number } {
    let synced = 0;
    let oldest = now;
    for (const m of this.membership.members.values()) {
      if (m.lastContact === undefined || !this.holdsAllOf(m)) continue;
      synced++;
      oldest = Math.min(oldest, m.lastContact);
    }
    return { peers: this.membership.members.size, synced, maxLagMs: Math.max(0, now - oldest) };
  }

  private holdsAllOf(m: Member): boolean {
    const theirs = m.origin === undefined ? undefined : m.vv.get(m.origin);
    const held = m.origin === undefined ? undefined : this.replica.entry(m.origin);
    // Nothing to hold (a new incarnation before its first hit) is held.
    return theirs === undefined || theirs[0] === 0 || (held !== undefined && held[0] >= theirs[0]);
  }

  // ---- handshake ----

  private onHello(c: Conn, hello: Hello, now: number): Output[] {
    if (c.phase !== 'hello' || c.peerId !== undefined) throw new ProtocolError('second hello');
    if (hello.protocol !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${hello.protocol} is not ${PROTOCOL_VERSION}`);
    if (hello.id === this.self.id) {
      // Dialed ourselves (an address of ours learned from others): never again.
      if (c.dialAddress !== undefined) this.membership.never(c.dialAddress);
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
    const member = this.membership.admit(c.peerId, c.peerAddress ?? c.dialAddress ?? '', now);
    if (c.dialAddress !== undefined) this.membership.dialSucceeded(c.dialAddress, c.peerId);
    if (member === undefined) {
      this.stats.limited.members++;
      return [{ kind: 'close', conn: c.id, reason: `member list full (${LIMITS.maxMembers})` }];
    }
    c.phase = 'open';
    const out: Output[] = [];
    const existing = member.conn === undefined ? undefined : this.conns.get(member.conn);
    if (existing !== undefined && existing.id !== c.id && existing.phase === 'open') {
      // Both sides dialed: keep the connection dialed by the smaller origin, on both ends alike.
      const keepNew = c.outbound === this.self.origin < c.peerOrigin;
      out.push({ kind: 'close', conn: (keepNew ? existing : c).id, reason: 'duplicate connection' });
      if (!keepNew) return out;
    }
    if (member.origin !== c.peerOrigin) {
      member.vv = new Map(); // a new incarnation knows nothing yet
      member.clock.clear();
      this.holders.drop(member.id); // nor holds anything of ours, whatever the old one said
    }
    member.origin = c.peerOrigin;
    member.conn = c.id;
    member.downSince = undefined;
    member.lastContact = now;
    c.link = new PeerLink(c.id, c.peerId, now);
    out.push(this.syncFrame(c, now));
    for (const message of this.openReads.unansweredBy(c.peerId)) out.push({ kind: 'send', conn: c.id, message });
    return out;
  }

  // ---- replication ----

  private onSync(c: Conn, link: PeerLink, sync: Sync, now: number): Output[] {
    const member = this.memberOf(c);
    if (member === undefined) return [];
    // Clock sample: our echoed send time, minus how long they held it, is one round trip.
    if (sync.echo > 0 && sync.echo <= now) {
      const rtt = Math.max(0, now - sync.echo - sync.held);
      member.clock.add({ offsetMs: sync.sent - (now - rtt / 2), rttMs: rtt, at: now });
    }
    c.echo = sync.sent;
    c.echoReceivedAt = now;
    c.gotSync = true;
    if (!this.config.static) for (const [id, address] of Object.entries(sync.members)) this.membership.learn(id, address, now);
    // The peer's own report replaces what we believed of it (beliefs only ever rose in between).
    member.vv = new Map(Object.entries(sync.vv));
    member.links = new Set(sync.links);
    const out: Output[] = [];
    // A sync that names nothing of our origin holds nothing of it (its report replaces what we believed).
    if (!member.vv.has(this.self.origin)) this.holders.set(member.id, 0);
    for (const [origin, mine] of Object.entries(this.replica.syncVector())) {
      const theirs = member.vv.get(origin);
      if (origin === this.self.origin) this.syncOwnOrigin(link, mine, theirs, member, now);
      else this.syncOrigin(link, origin, mine, theirs, member, now);
    }
    return out;
  }

  /**
   * Our own origin: a peer in step with what we sent needs nothing (the rest
   * is in flight), unless it stops getting closer to it; any other gets a
   * repair from what it holds.
   */
  private syncOwnOrigin(link: PeerLink, mine: SyncEntry, theirs: SyncEntry | undefined, peer: Member, now: number): void {
    const held = seqOf(theirs);
    if (theirs !== undefined && (held > mine[0] || theirs[3] > mine[0] || (held === mine[0] && theirs[2] !== mine[2]))) {
      // It holds writes our store lost: its seqs are not our batches, so they acknowledge none of them.
      this.holders.set(peer.id, 0);
      this.options.onOwnOriginBehind?.(peer.id, theirs);
      return;
    }
    // What it reports now replaces what it said before (it may have lost some since: a wiped disk under the same origin cannot, a restart can).
    if (this.holders.set(peer.id, held)) this.options.onHeld?.();
    if (link.repairing(this.self.origin)) return;
    if (held >= mine[0]) {
      link.chain ??= { base: held, seq: held };
      link.expect.delete(this.self.origin);
      return;
    }
    if (link.chain !== undefined && held >= link.chain.base && !this.stalled(link, this.self.origin, held, link.chain.seq, peer, now)) return;
    this.startRepair(link, this.self.origin, held, mine, theirs);
    link.chain = undefined;
    link.restartHold(mine[0], [mine[0], mine[1]]);
  }

  /**
   * Has the peer stopped getting closer to what it should hold of `origin`?
   * Each sync it has reached the last expectation, the expectation moves on
   * to `target`; one not reached within the grace (longer on a slow link,
   * where the round trip says how long frames queue) means something was lost.
   */
  private stalled(link: PeerLink, origin: string, held: number, target: number, peer: Member, now: number): boolean {
    const expected = link.expect.get(origin);
    if (expected === undefined || held >= expected.seq || link.backlogBytes > 0 || link.pushBlocked) {
      link.expect.set(origin, { seq: target, at: now });
      return false;
    }
    if (now - expected.at < Math.max(this.config.repairGraceMs, 3 * (peer.clock.best()?.rttMs ?? 0))) return false;
    link.expect.delete(origin);
    return true;
  }

  private syncOrigin(link: PeerLink, origin: string, mine: SyncEntry, theirs: SyncEntry | undefined, peer: Member, now: number): void {
    const held = seqOf(theirs);
    if (link.repairing(origin)) return;
    const finished = link.finished.get(origin);
    const landing = finished !== undefined && held < finished.seq && now - finished.at < this.config.repairGraceMs;
    if (mine[0] > held) {
      if (landing) return;
      // A peer that hears from the origin itself is repaired only if it stops getting closer to what we hold.
      if (this.getsFirstHand(peer, origin) && !this.stalled(link, origin, held, mine[0], peer, now)) return;
      link.expect.delete(origin);
      this.startRepair(link, origin, held, mine, theirs);
      return;
    }
    link.expect.delete(origin);
    // The same complete entry but other data beyond it: swap what each holds past it, once it has held still for two syncs.
    // (A peer that names no entry holds nothing: digest 0.)
    const theirDigest = theirs?.[2] ?? 0;
    if (mine[0] !== held || theirDigest === mine[2]) {
      link.mismatch.delete(origin);
      return;
    }
    const seen = link.mismatch.get(origin);
    const times = seen !== undefined && seen.seq === held && seen.theirs === theirDigest && seen.mine === mine[2] ? seen.times + 1 : 1;
    link.mismatch.set(origin, { seq: held, theirs: theirDigest, mine: mine[2], times });
    if (times < 2 || landing || (finished !== undefined && now - finished.at < this.config.repairGraceMs)) return;
    link.mismatch.delete(origin);
    link.queue.push(new RepairChunks(origin, null, [mine[0], mine[1]], this.replica.changedKeys(origin, theirs === undefined ? undefined : [theirs[0], theirs[1]])));
    this.stats.repairs++;
  }

  private startRepair(link: PeerLink, origin: string, held: number, mine: SyncEntry, theirs: SyncEntry | undefined): void {
    const since: VersionEntry | undefined = theirs === undefined ? undefined : [theirs[0], theirs[1]];
    link.queue.push(new RepairChunks(origin, held, [mine[0], mine[1]], this.replica.changedKeys(origin, since)));
    this.stats.repairs++;
  }

  /** Is the peer connected to the node whose current origin this is? Then that node pushes to it itself. */
  private getsFirstHand(peer: Member, origin: string): boolean {
    for (const id of peer.links) if (this.membership.get(id)?.origin === origin) return true;
    return false;
  }

  private onDelta(c: Conn, delta: Delta, now: number): Output[] {
    if (delta.origin === this.self.origin) return []; // nobody knows our own slots better than we do
    if (!this.replica.accepts(delta.origin)) {
      this.stats.limited.origins++;
      return [];
    }
    const changes = decodeDelta(delta, timeBounds(now));
    const to: VersionEntry = [delta.to, delta.at];
    const raised = this.replica.apply(delta.origin, changes, delta.from === null ? undefined : { from: delta.from, to }, to);
    this.stats.deltasApplied++;
    this.stats.rowsApplied += raised.hits.length + raised.slots.length + (raised.tokens?.length ?? 0);
    const member = this.memberOf(c);
    const out: Output[] = [];
    // An origin holds what it sends of itself; a relay says nothing of what the relayer holds in full.
    if (member !== undefined && delta.origin === c.peerOrigin && delta.from !== null) {
      const known = member.vv.get(delta.origin);
      if (known === undefined || delta.to > known[0]) member.vv.set(delta.origin, [delta.to, delta.at, known?.[2] ?? 0, Math.max(known?.[3] ?? 0, delta.to)]);
      // Tell the origin at once that we now hold it this far: its `?ack=` waits for that, not for our next sync.
      const held = this.replica.entry(delta.origin)?.[0] ?? 0;
      if (held >= delta.to) out.push({ kind: 'send', conn: c.id, message: { type: 'held', origin: delta.origin, seq: held } });
    }
    if (raised.hits.length + raised.slots.length + (raised.tokens?.length ?? 0) > 0) {
      // Relay only the new parts; complete only if nothing was dropped.
      const whole = raised.hits.length === changes.hits.length && raised.slots.length === changes.slots.length && (raised.tokens?.length ?? 0) === (changes.tokens?.length ?? 0);
      this.relays.add({ origin: delta.origin, from: whole ? delta.from : null, to, changes: raised, source: c.peerId ?? '', readyAt: now + this.config.relayDelayMs });
    }
    return out;
  }

  /** What we hold of a read's keys and buckets: read from memory, written nowhere. */
  private answerRead(read: Read): ReadReply {
    const counts = this.replica.countsAt(read.keys, fromRuns(read.runs), LIMITS.maxReadRows);
    if (counts === undefined) return { type: 'readReply', id: read.id, origins: [], rows: [], tooBig: true };
    const reply: ReadReply = { type: 'readReply', id: read.id, origins: counts.origins, rows: counts.rows, tooBig: false };
    return counts.tokens.length === 0 ? reply : { ...reply, tokens: counts.tokens };
  }

  private noteHeld(peer: string, seq: number): void {
    if (this.holders.note(peer, seq)) this.options.onHeld?.();
  }

  private flushPushes(out: Output[]): void {
    const first = this.pushes[0];
    const last = this.pushes[this.pushes.length - 1];
    if (first === undefined || last === undefined) return;
    // Merge the batches since the last push: one row per (key, second), the newest counts.
    const merged = new Map<string, HitRow>();
    const tokens: TokenChange[] = [];
    for (const commit of this.pushes) {
      for (const row of commit.hits) merged.set(`${row.second}\u0000${row.key}`, row);
      for (const token of commit.tokens ?? []) tokens.push(token);
    }
    this.pushes.length = 0;
    const rows = [...merged.values()];
    const to: VersionEntry = [last.seq, last.at];
    const from = first.seq - 1;
    let frames: readonly Delta[] | undefined;
    for (const c of this.openConns()) {
      const link = c.link as PeerLink;
      if (link.inStep(this.self.origin) && link.chain !== undefined && link.chain.seq === from) {
        frames ??= allChunks(new HitChunks(this.self.origin, from, to, rows, tokens));
        for (const message of frames) out.push({ kind: 'send', conn: c.id, message });
        link.chain.seq = last.seq;
      } else if (!link.hold(rows, from, to, tokens)) this.stats.limited.held++;
    }
  }

  private flushRelays(now: number, out: Output[]): void {
    for (const relay of this.relays.due(now)) {
      let frames: Delta[] | undefined;
      const originNode = this.nodeOfOrigin(relay.origin);
      for (const c of this.openConns()) {
        if (c.peerId === relay.source || c.peerOrigin === relay.origin) continue;
        const member = this.membership.get(c.peerId ?? '');
        // A peer linked to the origin gets it first-hand; one that already holds it needs nothing.
        if (originNode !== undefined && member?.links.has(originNode) === true) continue;
        if (seqOf(member?.vv.get(relay.origin)) >= relay.to[0]) continue;
        frames ??= relayFrames(relay);
        for (const message of frames) out.push({ kind: 'send', conn: c.id, message });
      }
    }
    this.stats.limited.relays = this.relays.dropped;
  }

  /** Tell the peer what arrived, once `atLeast` delta bytes have since the last report (and not more than every 10 ms). */
  private reportFlow(c: Conn, now: number, out: Output[], atLeast: number): void {
    if (c.deltaBytesIn - c.flowReported < atLeast || now - c.flowReportedAt < 10) return;
    c.flowReported = c.deltaBytesIn;
    c.flowReportedAt = now;
    out.push({ kind: 'send', conn: c.id, message: { type: 'flow', received: c.deltaBytesIn } });
  }

  /** Chunked frames for every link with room in its socket, at most LIMITS.chunksPerTick in all. */
  private pump(now: number, out: Output[]): void {
    let budget: number = LIMITS.chunksPerTick;
    for (const c of this.openConns()) {
      const link = c.link as PeerLink;
      if (link.queue.length === 0 && link.chain !== undefined && !link.repairing(this.self.origin) && !link.pushBlocked) {
        const released = link.releaseHeld(this.self.origin);
        if (released !== undefined) link.queue.push(released);
      }
      for (const { frame, source } of link.drain(budget)) {
        budget--;
        out.push({ kind: 'send', conn: c.id, message: frame });
        if (source.done) this.finishedSource(link, source, now);
      }
      if (budget <= 0) return;
    }
  }

  private finishedSource(link: PeerLink, source: ChunkSource, now: number): void {
    if (source instanceof HitChunks) return;
    link.finished.set(source.origin, { seq: source.to[0], at: now });
    if (source.origin === this.self.origin && source.from !== null) link.chain = { base: source.from, seq: Math.max(link.chain?.seq ?? 0, source.to[0]) };
  }

  private syncFrame(c: Conn, now: number): Output {
    c.lastSyncSent = now;
    // The member list is O(cluster): send it on a new connection and after changes only.
    const members: Record<string, string> = {};
    if (c.membersSent !== this.membership.version) {
      members[this.self.id] = this.self.address;
      for (const m of this.membership.members.values()) members[m.id] = m.address;
      c.membersSent = this.membership.version;
    }
    const links: string[] = [];
    for (const open of this.openConns()) links.push(open.peerId ?? '');
    return {
      kind: 'send',
      conn: c.id,
      message: { type: 'sync', vv: this.replica.syncVector(), members, links, sent: Math.round(now), echo: c.echo, held: c.echo === 0 ? 0 : Math.round(now - c.echoReceivedAt) },
    };
  }

  // ---- membership ----

  private dialMissing(now: number, out: Output[]): void {
    const connected = new Set<string>();
    for (const c of this.conns.values()) {
      if (c.dialAddress !== undefined) connected.add(c.dialAddress);
      if (c.phase === 'open' && c.peerAddress !== undefined) connected.add(c.peerAddress);
    }
    for (const address of this.membership.toDial(now, connected, this.conns.size)) out.push({ kind: 'dial', address });
  }

  private nodeOfOrigin(origin: string): string | undefined {
    for (const m of this.membership.members.values()) if (m.origin === origin) return m.id;
    return undefined;
  }

  private memberOf(c: Conn): Member | undefined {
    const member = c.peerId === undefined ? undefined : this.membership.get(c.peerId);
    return member?.conn === c.id ? member : undefined;
  }

  private *openConns(): IterableIterator<Conn> {
    for (const c of this.conns.values()) {
      if (c.phase === 'open' && c.link !== undefined && c.peerId !== undefined && this.membership.get(c.peerId)?.conn === c.id) yield c;
    }
  }
}

/**
 * The frames of a relay: its hit rows (a relayed push) or its slot groups (a
 * relayed repair), each with the tokens that came with them; only the last
 * frame may say complete. Tokens ride with their key's rows, in the same
 * frame when they fit: a frame lost on the way then loses rows a sync shows
 * missing, never tokens alone.
 */
function relayFrames(relay: Relay): Delta[] {
  const { hits, slots, tokens = [] } = relay.changes;
  const frames: Delta[] = [];
  if (hits.length > 0 || slots.length === 0) frames.push(...allChunks(new HitChunks(relay.origin, 0, relay.to, hits, slots.length === 0 ? tokens : [])));
  if (slots.length > 0) frames.push(...allChunks(new RepairChunks(relay.origin, null, relay.to, groupsOf(slots, tokens))));
  return frames.map((frame, i) => ({ ...frame, from: i === frames.length - 1 ? relay.from : null }));
}

/** Slot rows (runs of one key) as the per-key groups a chunk source reads, each with its key's tokens (a key with tokens only gets a group of its own). */
function groupsOf(slots: readonly SlotRow[], tokens: readonly TokenChange[]): Iterator<KeyChange> {
  const groups: { key: string; buckets: [Tier, number, number][]; tokens: [string, number, number][] }[] = [];
  const byKey = new Map<string, (typeof groups)[number]>();
  for (const s of slots) {
    const last = groups[groups.length - 1];
    if (last?.key === s.key) last.buckets.push([s.tier, s.start, s.count]);
    else {
      const group = { key: s.key, buckets: [[s.tier, s.start, s.count]] as [Tier, number, number][], tokens: [] };
      groups.push(group);
      byKey.set(s.key, group);
    }
  }
  for (const t of tokens) {
    let group = byKey.get(t.key);
    if (group === undefined) {
      group = { key: t.key, buckets: [], tokens: [] };
      groups.push(group);
      byKey.set(t.key, group);
    }
    group.tokens.push([t.token, t.at, t.n]);
  }
  return groups[Symbol.iterator]();
}
