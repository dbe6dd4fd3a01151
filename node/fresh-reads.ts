import type { Observation } from '../crdt/key-tokens.ts';
import type { ReplicaState } from '../crdt/replica-state.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import type { BucketRef, WindowPlan } from '../crdt/window-plan.ts';
import type { ReadReply } from '../gossip/messages.ts';
import { LIMITS } from '../gossip/limits.ts';
import { toRuns } from '../gossip/read-plan.ts';
import { neededFor, type AckLevel } from './ack-waiters.ts';

export interface FreshAnswer {
  /** Enough members answered (this node included), and none refused as too big. */
  readonly ok: boolean;
  readonly tooBig: boolean;
  readonly counts: Record<string, number>;
  /** The ids of the members whose state is in the counts, this node's first. */
  readonly answered: readonly string[];
  readonly needed: number;
}

export interface FreshReadDeps {
  readonly self: () => string;
  readonly state: ReplicaState;
  /** Members (this node included) `majority` and `all` count. */
  readonly members: () => number;
  /** Send the read to every connected peer, and to any that connects before `done(id)`. */
  readonly ask: (id: number, keys: readonly string[], runs: readonly number[]) => void;
  /** The read is answered: ask no more peers. */
  readonly done?: (id: number) => void;
}

interface Pending {
  readonly keys: readonly string[];
  readonly refs: readonly BucketRef[];
  readonly needed: number;
  readonly replies: Map<string, ReadReply>;
  readonly resolve: (answer: FreshAnswer) => void;
  /** The answer could not be worked out (a cold bucket the store could not read): the request fails (503), the node goes on. */
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * `?read=majority|all`: ask the members for their state of the keys at the
 * plan's buckets, and answer from the join (max per slot, per origin) of
 * theirs and ours once enough have answered. What is learned is never
 * written into the state: a read must not claim, in the version vector,
 * slots it holds only in part. At most LIMITS.maxOpenReads wait at once.
 */
export class FreshReads {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly deps: FreshReadDeps) {}

  read(keys: readonly string[], plan: WindowPlan, level: AckLevel, timeoutMs: number): Promise<FreshAnswer> {
    const needed = neededFor(level, this.deps.members());
    if (needed <= 1) return Promise.resolve(this.answer(keys, plan.buckets, new Map(), needed, false));
    if (this.pending.size >= LIMITS.maxOpenReads) return Promise.resolve({ ...this.answer(keys, plan.buckets, new Map(), needed, false), ok: false });
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const replies = new Map<string, ReadReply>();
      const timer = setTimeout(() => this.finish(id), timeoutMs);
      this.pending.set(id, { keys, refs: plan.buckets, needed, replies, resolve, reject, timer });
      this.deps.ask(id, keys, toRuns(plan.buckets));
    });
  }

  /** A peer's answer: counted once per peer; a malformed one (indexes out of range) is dropped. */
  onReply(peer: string, reply: ReadReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined || p.replies.has(peer)) return;
    if (!reply.tooBig && !fits(reply, p.keys.length, p.refs.length)) return;
    p.replies.set(peer, reply);
    if (reply.tooBig || 1 + p.replies.size >= p.needed) this.finish(reply.id);
  }

  /** Stopping: answer every read now with what it has. */
  abandon(): void {
    for (const id of [...this.pending.keys()]) this.finish(id);
  }

  private finish(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.deps.done?.(id);
    const tooBig = [...p.replies.values()].some((r) => r.tooBig);
    // Called from a timer and from a peer's frame: what answer() throws must reach the request, not either of those.
    try {
      p.resolve(this.answer(p.keys, p.refs, p.replies, p.needed, tooBig));
    } catch (error) {
      p.reject(error);
    }
  }

  private answer(keys: readonly string[], refs: readonly BucketRef[], replies: ReadonlyMap<string, ReadReply>, needed: number, tooBig: boolean): FreshAnswer {
    const counts = Object.create(null) as Record<string, number>; // no prototype: a key may be "__proto__"
    // key index → origin → bucket index → the highest count anyone holds (ours first).
    const joined = keys.map((key) => {
      const byOrigin = new Map<string, Map<number, number>>();
      for (const [origin, bucket, count] of this.deps.state.originCounts(key, refs)) bucketsOf(byOrigin, origin).set(bucket, count);
      return byOrigin;
    });
    // The duplicates: per key, origin and bucket index, what this node's tokens prove, except for the tokens a peer
    // sent (those it observed more than once, the only ones that prove any), which are worked out again over the
    // union of every member's observations of them. Each is then capped by that origin's merged count.
    const tokens = this.deps.state.tokens;
    const duplicates = keys.map((key) => {
      const byOrigin = new Map<string, Map<number, number>>();
      for (const [origin, bucket, count] of tokens.duplicateCounts(key, refs)) bucketsOf(byOrigin, origin).set(bucket, count);
      return byOrigin;
    });
    const sent = keys.map(() => new Map<string, Observation[]>());
    for (const reply of replies.values()) {
      if (reply.tooBig) continue;
      for (let i = 0; i < reply.rows.length; i += 4) {
        const [k, o, b, count] = [reply.rows[i] as number, reply.rows[i + 1] as number, reply.rows[i + 2] as number, reply.rows[i + 3] as number];
        const buckets = bucketsOf(joined[k] as Map<string, Map<number, number>>, reply.origins[o] as string);
        if (count > (buckets.get(b) ?? 0)) buckets.set(b, count);
      }
      const t = reply.tokens ?? [];
      for (let i = 0; i < t.length; i += 5) {
        const bySent = sent[t[i] as number] as Map<string, Observation[]>;
        const token = t[i + 1] as string;
        const list = bySent.get(token) ?? [];
        list.push({ origin: reply.origins[t[i + 2] as number] as string, at: t[i + 3] as number, n: t[i + 4] as number });
        bySent.set(token, list);
      }
    }
    const bucketIndex = new Map(refs.map((ref, i) => [`${ref.tier}:${ref.start}`, i]));
    const addAt = (byOrigin: Map<string, Map<number, number>>, o: Observation, sign: number): void => {
      for (const tier of ALL_TIERS) {
        const b = bucketIndex.get(`${tier}:${bucketStart(tier, o.at)}`);
        if (b === undefined) continue;
        const buckets = bucketsOf(byOrigin, o.origin);
        buckets.set(b, (buckets.get(b) ?? 0) + sign * o.n);
      }
    };
    keys.forEach((key, k) => {
      const byOrigin = duplicates[k] as Map<string, Map<number, number>>;
      for (const [token, theirs] of sent[k] as Map<string, Observation[]>) {
        const mine = tokens.observationsOf(key, token);
        for (const o of tokens.duplicatesAmong(mine)) addAt(byOrigin, o, -1);
        for (const o of tokens.duplicatesAmong([...mine, ...theirs])) addAt(byOrigin, o, 1);
      }
      const held = joined[k] as Map<string, Map<number, number>>;
      let total = 0;
      for (const buckets of held.values()) for (const count of buckets.values()) total += count;
      for (const [origin, dup] of byOrigin) {
        for (const [b, count] of dup) total -= Math.max(0, Math.min(count, held.get(origin)?.get(b) ?? 0));
      }
      counts[key] = Math.min(total, Number.MAX_SAFE_INTEGER);
    });
    const answered = [this.deps.self(), ...[...replies].filter(([, r]) => !r.tooBig).map(([peer]) => peer)];
    return { ok: !tooBig && answered.length >= needed, tooBig, counts, answered, needed };
  }
}

function bucketsOf(byOrigin: Map<string, Map<number, number>>, origin: string): Map<number, number> {
  let buckets = byOrigin.get(origin);
  if (buckets === undefined) byOrigin.set(origin, (buckets = new Map<number, number>()));
  return buckets;
}

/** Every row's key and bucket index lies within what was asked. */
function fits(reply: ReadReply, keys: number, buckets: number): boolean {
  for (let i = 0; i < reply.rows.length; i += 4) if ((reply.rows[i] as number) >= keys || (reply.rows[i + 2] as number) >= buckets) return false;
  const t = reply.tokens ?? [];
  for (let i = 0; i < t.length; i += 5) if ((t[i] as number) >= keys) return false;
  return true;
}
