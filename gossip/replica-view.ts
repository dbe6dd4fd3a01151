import type { KeyChange } from '../crdt/replica-state.ts';
import type { Tier } from '../crdt/tiers.ts';
import type { BucketRef } from '../crdt/window-plan.ts';
import type { SyncEntry, VersionEntry, VersionVector } from './messages.ts';

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

/** One observation of an idempotency token by the origin the changes are of. */
export interface TokenChange {
  readonly key: string;
  readonly token: string;
  readonly at: number;
  readonly n: number;
}

/** Changes of one origin: hit rows for fresh local batches, slot rows for repairs, and the tokens it observed in them. */
export interface Changes {
  readonly hits: readonly HitRow[];
  readonly slots: readonly SlotRow[];
  /** Absent: none. */
  readonly tokens?: readonly TokenChange[];
}

/** A local commit, as gossip sees it: batch `seq` at `at`, with the new counts of every (key, second) it touched. */
export interface LocalCommit {
  readonly seq: number;
  readonly at: number;
  readonly hits: readonly HitRow[];
  /** The idempotency tokens the batch observed (absent: none). */
  readonly tokens?: readonly TokenChange[];
}

/** Called for every slot a remote delta changed (its count, or the seq it is known at): what must be made durable. */
export type TouchedSlot = (origin: string, key: string, tier: Tier, start: number, seq: number) => void;

/** Called for every token observation a remote delta added (`kept`: the token now proves a duplicate): what must be made durable. */
export type TouchedToken = (origin: string, change: TokenChange, kept: boolean) => void;

/**
 * The replica cannot serve or take a frame now (its store cannot be read for
 * a bucket memory no longer holds): gossip closes that connection and the
 * node goes on; the peer tries again when it reconnects.
 */
export class ReplicaUnavailableError extends Error {
  readonly code: string = 'HITMESH_REPLICA_UNAVAILABLE';
}

/**
 * A repair's changes, one key at a time. A source that reads the store may
 * not have the next one yet (`ready` false: ask again later), and may end
 * early because a read failed (`failed`: what it yielded holds, but it is not
 * all that changed).
 */
export interface KeyChanges extends Iterator<KeyChange> {
  readonly ready?: boolean;
  readonly failed?: boolean;
}

/**
 * What gossip needs of a replica. node/ implements it over the real state and
 * store; the simulator and the in-memory tests over a bare ReplicaState.
 */
export interface ReplicaView {
  /** This replica's own origin (it changes when the replica starts a new incarnation). */
  readonly origin: string;
  /** The highest seq held completely of `origin`, and the time of its last hit up to it. */
  entry(origin: string): VersionEntry | undefined;
  /** Per origin, the highest seq held completely (own origin included). */
  versionVector(): VersionVector;
  /** Per origin held, its entry, the digest of what is held of it and the highest seq held: what a sync carries. */
  syncVector(): Record<string, SyncEntry>;
  /** Everything of `origin` that changed after `since` (all of it when undefined), one key at a time, lazily. */
  changedKeys(origin: string, since: VersionEntry | undefined): KeyChanges;
  /**
   * What this replica holds of `keys` at `refs`, per origin: rows [key index,
   * origin index, bucket index, count] (non-zero only) over `origins`, and the
   * observations of its tokens observed more than once as [key index, token, origin index, at, n]; undefined
   * when there would be more than `maxRows` rows. What a fresh read asks a peer.
   */
  countsAt(keys: readonly string[], refs: readonly BucketRef[], maxRows: number): { origins: string[]; rows: number[]; tokens: (string | number)[] } | undefined;
  /** False for an origin this replica does not hold and has no room for (the origin limit). */
  accepts(origin: string): boolean;
  /**
   * Join `changes` of `origin` (max per slot); when `complete` covers what is
   * held, the entry for `origin` moves to `complete.to`. `to` is the sender's
   * entry. Returns what is worth relaying: every row of each key that any row
   * raised.
   */
  apply(origin: string, changes: Changes, complete: { from: number; to: VersionEntry } | undefined, to: VersionEntry): Changes;
}
