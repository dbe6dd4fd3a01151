import type { Tier } from '../crdt/tiers.ts';
import type { VersionEntry, VersionVector } from './messages.ts';

/** The five absolute counts (second, minute, hour, day, lifetime) of one key's hits in one second. */
export interface HitRow {
  readonly key: string;
  readonly second: number;
  readonly counts: readonly [number, number, number, number, number];
}

export interface SlotRow {
  readonly key: string;
  readonly tier: Tier;
  readonly start: number;
  readonly count: number;
}

/** Changes of one origin: hit rows for fresh local batches, slot rows for repairs. */
export interface Changes {
  readonly hits: readonly HitRow[];
  readonly slots: readonly SlotRow[];
}

/** A local commit, as gossip sees it: batch `seq` at `at`, with the new counts of every (key, second) it touched. */
export interface LocalCommit {
  readonly seq: number;
  readonly at: number;
  readonly hits: readonly HitRow[];
}

/**
 * What gossip needs of a replica. node/ implements it over the real state and
 * store; the simulator and the in-memory tests over a bare ReplicaState.
 */
export interface ReplicaView {
  readonly origin: string;
  /** Per origin, the highest seq held completely (own origin included). */
  versionVector(): VersionVector;
  /** Everything of `origin` that changed after `since` (all of it when undefined). */
  changesSince(origin: string, since: VersionEntry | undefined): Changes;
  /**
   * Join `changes` of `origin` (max per slot); when `complete` covers what is
   * held, the entry for `origin` moves to `complete.to`. `to` is the sender's
   * entry when the changes are not complete. Returns the rows that raised
   * the state (what is worth relaying).
   */
  apply(origin: string, changes: Changes, complete: { from: number; to: VersionEntry } | undefined, to?: VersionEntry): Changes;
}
