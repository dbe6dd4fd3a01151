import { COUNT_RAISED, type ReplicaState } from '../crdt/replica-state.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import { TOKEN_KEPT } from '../crdt/token-state.ts';
import type { BucketRef } from '../crdt/window-plan.ts';
import { LIMITS } from './limits.ts';
import type { SyncEntry, VersionEntry, VersionVector } from './messages.ts';
import type { Changes, HitRow, KeyChanges, ReplicaView, SlotRow, TokenChange, TouchedSlot, TouchedToken } from './replica-view.ts';

/**
 * A ReplicaState with the version vector gossip keeps beside it: per origin,
 * the highest seq held completely and that origin's time of its last hit up
 * to it. Pure and in memory; node/ adds durability around it.
 */
export class ReplicatedState implements ReplicaView {
  private readonly vv = new Map<string, VersionEntry>();

  constructor(
    private origin_: string,
    readonly state: ReplicaState,
    private readonly onTouched?: TouchedSlot,
    private readonly onToken?: TouchedToken,
    /** A repair that must read evicted buckets from the store, or undefined when memory holds all it needs (see node/cold-repair.ts). */
    private readonly coldChanges?: (origin: string, since: VersionEntry | undefined) => KeyChanges | undefined,
  ) {}

  get origin(): string {
    return this.origin_;
  }

  /** This replica goes on as a new origin; the old one becomes one origin among the others, held up to where it stopped. */
  rotate(origin: string): void {
    this.origin_ = origin;
  }

  /** Record this replica's own batch `seq` whose last hit was at `at`. */
  noteLocal(seq: number, at: number): void {
    this.raise(this.origin_, [seq, at]);
  }

  entry(origin: string): VersionEntry | undefined {
    return this.vv.get(origin);
  }

  /** Set entries from a persisted vector (start-up). */
  restore(vv: VersionVector): void {
    for (const [origin, entry] of Object.entries(vv)) this.raise(origin, entry);
  }

  versionVector(): VersionVector {
    return Object.fromEntries(this.vv);
  }

  syncVector(): Record<string, SyncEntry> {
    const out: Record<string, SyncEntry> = {};
    for (const [origin, [seq, at]] of this.vv) {
      const summary = this.state.summary(origin);
      out[origin] = [seq, at, summary?.digest ?? 0, summary?.high ?? 0];
    }
    // Origins held only in part (never completely from any seq) are compared by digest all the same.
    for (const origin of this.state.origins()) {
      if (this.vv.has(origin)) continue;
      const summary = this.state.summary(origin);
      out[origin] = [0, 0, summary?.digest ?? 0, summary?.high ?? 0];
    }
    return out;
  }

  changedKeys(origin: string, since: VersionEntry | undefined): KeyChanges {
    return this.coldChanges?.(origin, since) ?? this.state.changedKeys(origin, since?.[0] ?? 0, since?.[1] ?? Number.NEGATIVE_INFINITY);
  }

  countsAt(keys: readonly string[], refs: readonly BucketRef[], maxRows: number): { origins: string[]; rows: number[]; tokens: (string | number)[] } | undefined {
    const originIndex = new Map<string, number>();
    const indexOf = (origin: string): number => {
      let o = originIndex.get(origin);
      if (o === undefined) originIndex.set(origin, (o = originIndex.size));
      return o;
    };
    const rows: number[] = [];
    const tokens: (string | number)[] = [];
    for (let k = 0; k < keys.length; k++) {
      for (const [origin, bucket, count] of this.state.originCounts(keys[k] as string, refs)) {
        rows.push(k, indexOf(origin), bucket, count);
        if (rows.length > 4 * maxRows) return undefined;
      }
      for (const [token, observations] of this.state.tokens.keptIn(keys[k] as string)) {
        for (const o of observations) tokens.push(k, token, indexOf(o.origin), o.at, o.n);
        if (rows.length / 4 + tokens.length / 5 > maxRows) return undefined;
      }
    }
    return { origins: [...originIndex.keys()], rows, tokens };
  }

  accepts(origin: string): boolean {
    return this.vv.has(origin) || this.state.summary(origin) !== undefined || this.knownOriginCount() < LIMITS.maxOrigins;
  }

  apply(origin: string, changes: Changes, complete: { from: number; to: VersionEntry } | undefined, to: VersionEntry): Changes {
    const seq = to[0];
    const hits: HitRow[] = [];
    for (const row of changes.hits) {
      let raised = false;
      for (const tier of ALL_TIERS) {
        const start = bucketStart(tier, row.second);
        const changed = this.state.mergeCount(origin, row.key, tier, start, row.counts[tier], seq);
        if (changed !== 0) this.onTouched?.(origin, row.key, tier, start, seq);
        if ((changed & COUNT_RAISED) !== 0) raised = true;
      }
      if (raised) hits.push(row);
    }
    // Slot rows come grouped by key; a key any row of which was raised is relayed whole.
    const slots: SlotRow[] = [];
    for (let i = 0; i < changes.slots.length; ) {
      const key = (changes.slots[i] as SlotRow).key;
      let end = i;
      let raised = false;
      for (; end < changes.slots.length && (changes.slots[end] as SlotRow).key === key; end++) {
        const row = changes.slots[end] as SlotRow;
        const changed = this.state.mergeCount(origin, row.key, row.tier, row.start, row.count, seq);
        if (changed !== 0) this.onTouched?.(origin, row.key, row.tier, row.start, seq);
        if ((changed & COUNT_RAISED) !== 0) raised = true;
      }
      if (raised) for (let j = i; j < end; j++) slots.push(changes.slots[j] as SlotRow);
      i = end;
    }
    // After the counts: a duplicate proven before its hits arrive would be taken off hits not yet held.
    const tokens: TokenChange[] = [];
    for (const change of changes.tokens ?? []) {
      const joined = this.state.observe(change.key, change.token, { origin, at: change.at, n: change.n });
      if (joined === 0) continue;
      tokens.push(change);
      this.onToken?.(origin, change, (joined & TOKEN_KEPT) !== 0);
    }
    if (complete !== undefined && (this.vv.get(origin)?.[0] ?? 0) >= complete.from) this.raise(origin, complete.to);
    return { hits, slots, tokens };
  }

  private knownOriginCount(): number {
    let extra = 0;
    for (const origin of this.vv.keys()) if (this.state.summary(origin) === undefined) extra++;
    return this.state.originCount + extra;
  }

  private raise(origin: string, entry: VersionEntry): void {
    const current = this.vv.get(origin);
    if (current === undefined || entry[0] > current[0]) this.vv.set(origin, [entry[0], Math.max(entry[1], current?.[1] ?? 0)]);
  }
}
