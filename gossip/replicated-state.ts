import type { ReplicaState } from '../crdt/replica-state.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import type { VersionEntry, VersionVector } from './messages.ts';
import type { Changes, HitRow, ReplicaView, SlotRow } from './replica-view.ts';

/**
 * A ReplicaState with the version vector gossip keeps beside it: per origin,
 * the highest seq held completely and that origin's time of its last hit up
 * to it. Pure and in memory; node/ adds durability around it.
 */
export class ReplicatedState implements ReplicaView {
  private readonly vv = new Map<string, VersionEntry>();

  constructor(
    readonly origin: string,
    readonly state: ReplicaState,
  ) {}

  /** Record this replica's own batch `seq` whose last hit was at `at`. */
  noteLocal(seq: number, at: number): void {
    this.raise(this.origin, [seq, at]);
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

  changesSince(origin: string, since: VersionEntry | undefined): Changes {
    const slots: SlotRow[] = [];
    for (const slot of this.state.changedSince(origin, since?.[0] ?? 0, since?.[1] ?? Number.NEGATIVE_INFINITY)) {
      slots.push({ key: slot.key, tier: slot.tier, start: slot.start, count: slot.count });
    }
    return { hits: [], slots };
  }

  apply(origin: string, changes: Changes, complete: { from: number; to: VersionEntry } | undefined, to?: VersionEntry): Changes {
    const seq = (complete?.to ?? to)?.[0] ?? 0;
    const hits: HitRow[] = [];
    for (const row of changes.hits) {
      let raised = false;
      for (const tier of ALL_TIERS) {
        if (this.state.join({ origin, key: row.key, tier, start: bucketStart(tier, row.second), count: row.counts[tier] }, seq)) raised = true;
      }
      if (raised) hits.push(row);
    }
    const slots: SlotRow[] = [];
    for (const row of changes.slots) {
      if (this.state.join({ origin, ...row }, seq)) slots.push(row);
    }
    if (complete !== undefined && (this.vv.get(origin)?.[0] ?? 0) >= complete.from) this.raise(origin, complete.to);
    return { hits, slots };
  }

  private raise(origin: string, entry: VersionEntry): void {
    const current = this.vv.get(origin);
    if (current === undefined || entry[0] > current[0]) this.vv.set(origin, [entry[0], Math.max(entry[1], current?.[1] ?? 0)]);
  }
}
