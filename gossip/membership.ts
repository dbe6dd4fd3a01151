import { ClockFilter } from './clock-filter.ts';
import { LIMITS } from './limits.ts';
import type { SyncEntry } from './messages.ts';

export type ConnId = number;

/** One member as this node knows it. */
export interface Member {
  readonly id: string;
  address: string;
  origin: string | undefined;
  conn: ConnId | undefined;
  /** Local time of the last frame from it; undefined if never heard. */
  lastContact: number | undefined;
  /** Since when it has had no open connection (what --forget-after counts); undefined while connected. */
  downSince: number | undefined;
  /** What it last said it holds, per origin. */
  vv: Map<string, SyncEntry>;
  readonly clock: ClockFilter;
  /** The peers it last said it is connected to. */
  links: ReadonlySet<string>;
}

interface DialState {
  attempts: number;
  nextAt: number;
  pending: boolean;
}

export interface MembershipConfig {
  readonly static: boolean;
  readonly maxPeers: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly forgetAfterMs: number;
}

/**
 * The members this node knows, and whom to dial when. Members are learned
 * from syncs (unless --static), at most LIMITS.maxMembers of them (this node
 * included), so the list a sync carries is always one peers accept. A member
 * without a connection for `forgetAfterMs` is forgotten, and so is one the
 * operator removes; a forgotten id is not relearned from others' syncs for
 * that long, only by connecting itself.
 */
export class Membership {
  readonly members = new Map<string, Member>();
  /** Bumped whenever a member is added, moves or goes: syncs carry the list only after a change. */
  version = 0;
  /** Times a limit stopped something: member list full. */
  limited = 0;
  private readonly dials = new Map<string, DialState>();
  /** Addresses a dial of ours reached a member through (a proxy, a DNS name): covered while that member is connected. */
  private readonly via = new Map<string, string>();
  private readonly forgotten = new Map<string, number>();
  /** Seeds a name resolved to (--peers-dns), replaced on every resolution; besides the fixed ones. */
  private named: readonly string[] = [];
  /** fixedSeeds and named, without repeats: read every tick, so kept rather than rebuilt. */
  private seedList: readonly string[];

  constructor(
    private readonly self: { readonly id: string; readonly address: string },
    private readonly fixedSeeds: readonly string[],
    private readonly config: MembershipConfig,
    private readonly random: () => number,
  ) {
    this.seedList = fixedSeeds;
  }

  /** The addresses always dialed: --peers and what --peers-dns resolved to last. */
  get seeds(): readonly string[] {
    return this.seedList;
  }

  /**
   * A new answer for the seed name. An address no longer named and no member's
   * loses its dial state (so a --static node stops dialing it); members learned
   * through it stay: a name's records say where to look, not who is a member.
   */
  setNamedSeeds(addresses: readonly string[]): void {
    const before = this.named;
    this.named = addresses.filter((a) => a !== this.self.address);
    this.seedList = [...new Set([...this.fixedSeeds, ...this.named])];
    const kept = new Set(this.seedList);
    for (const m of this.members.values()) kept.add(m.address);
    for (const address of before) {
      const state = this.dials.get(address);
      // A pending dial settles itself; a mark that the address is this node's own stays, or a flapping answer redials it.
      if (kept.has(address) || state === undefined || state.pending || state.nextAt === Number.POSITIVE_INFINITY) continue;
      this.dials.delete(address);
      this.via.delete(address);
    }
  }

  get(id: string): Member | undefined {
    return this.members.get(id);
  }

  /** Is there room for one more member (this node counts as one)? */
  get full(): boolean {
    return this.members.size + 1 >= LIMITS.maxMembers;
  }

  /** A member named in a peer's sync: added unless known, forgotten lately, or the list is full. */
  learn(id: string, address: string, now: number): void {
    if (id === this.self.id || address === this.self.address || this.members.has(id)) return;
    const until = this.forgotten.get(id);
    if (until !== undefined && now < until) return;
    this.forgotten.delete(id);
    if (this.full) {
      this.limited++;
      return;
    }
    this.add(id, address, now);
  }

  /** A peer that proved who it is: its member entry, or undefined when the list is full. */
  admit(id: string, address: string, now: number): Member | undefined {
    this.forgotten.delete(id);
    const known = this.members.get(id);
    if (known !== undefined) {
      if (address !== '' && address !== known.address) {
        // Its old address (a pod's old IP) is nobody's now unless it is a seed: stop tracking dials to it.
        if (!this.seeds.includes(known.address) && this.dials.get(known.address)?.pending !== true) this.dials.delete(known.address);
        known.address = address;
        this.version++;
      }
      return known;
    }
    if (this.full) {
      // A peer that proved who it is beats a name only heard of: make room by forgetting one never heard from.
      const stranger = [...this.members.values()].find((m) => m.lastContact === undefined && m.conn === undefined);
      if (stranger === undefined) {
        this.limited++;
        return undefined;
      }
      this.forget(stranger.id, now);
    }
    return this.add(id, address, now);
  }

  /** Forget a member now; it stays forgotten (not relearned from syncs) for forget-after. Returns it, or undefined if unknown. */
  forget(id: string, now: number): Member | undefined {
    const member = this.members.get(id);
    if (member === undefined) return undefined;
    this.members.delete(id);
    this.forgotten.set(id, now + this.config.forgetAfterMs);
    if (!this.seeds.includes(member.address)) this.dials.delete(member.address);
    for (const [address, through] of this.via) if (through === id) this.via.delete(address);
    this.version++;
    return member;
  }

  /** Forget every member without a connection for longer than forget-after; returns their ids. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const m of this.members.values()) {
      if (m.conn === undefined && m.downSince !== undefined && now - m.downSince > this.config.forgetAfterMs) gone.push(m.id);
    }
    for (const id of gone) this.forget(id, now);
    for (const [id, until] of this.forgotten) if (now >= until) this.forgotten.delete(id);
    return gone;
  }

  /** The addresses to dial now: seeds and (unless static) members without a connection, within maxPeers. */
  toDial(now: number, connected: ReadonlySet<string>, open: number): string[] {
    const targets = new Set(this.seeds);
    if (!this.config.static) for (const m of this.members.values()) targets.add(m.address);
    const pending = [...this.dials.values()].filter((d) => d.pending).length;
    let budget = Math.min(this.config.maxPeers - open, LIMITS.maxPendingDials) - pending;
    const out: string[] = [];
    for (const address of targets) {
      if (budget <= 0) break;
      if (address === this.self.address || address === '' || connected.has(address)) continue;
      // Reached through this address before and connected now (maybe by its own dial): dialing again only makes a duplicate.
      const through = this.via.get(address);
      if (through !== undefined && this.members.get(through)?.conn !== undefined) continue;
      const state = this.dialState(address);
      if (state.pending || now < state.nextAt) continue;
      state.pending = true;
      budget--;
      out.push(address);
    }
    return out;
  }

  /** A dial got a connection. */
  dialed(address: string): void {
    this.dialState(address).pending = false;
  }

  /** A dial reached a peer that proved who it is: back-off starts over, and the address leads to that member. */
  dialSucceeded(address: string, id: string): void {
    this.dialState(address).attempts = 0;
    this.via.set(address, id);
  }

  /** An address is ours (we dialed ourselves): never again. */
  never(address: string): void {
    this.dialState(address).nextAt = Number.POSITIVE_INFINITY;
  }

  /** An open connection we dialed went away: redial soon. */
  redialSoon(address: string, now: number): void {
    this.dialState(address).nextAt = now + this.config.reconnectMinMs;
  }

  /** The member a dial of `address` reached last, if any. */
  reachedThrough(address: string): string | undefined {
    return this.via.get(address);
  }

  /** Has a dial of `address` failed since the last success, or did it lead to this node itself? */
  failedLately(address: string): boolean {
    const state = this.dials.get(address);
    return state !== undefined && (state.attempts > 0 || state.nextAt === Number.POSITIVE_INFINITY);
  }

  backOff(address: string, now: number): void {
    const state = this.dialState(address);
    state.pending = false;
    state.attempts++;
    const cap = Math.min(this.config.reconnectMaxMs, this.config.reconnectMinMs * 2 ** Math.min(state.attempts, 20));
    // Jitter spreads the redials of many nodes after a shared failure.
    state.nextAt = now + cap * (0.5 + this.random() / 2);
  }

  private dialState(address: string): DialState {
    let state = this.dials.get(address);
    if (state === undefined) {
      state = { attempts: 0, nextAt: 0, pending: false };
      this.dials.set(address, state);
    }
    return state;
  }

  private add(id: string, address: string, now: number): Member {
    const member: Member = { id, address, origin: undefined, conn: undefined, lastContact: undefined, downSince: now, vv: new Map(), clock: new ClockFilter(), links: new Set() };
    this.members.set(id, member);
    this.version++;
    return member;
  }
}
