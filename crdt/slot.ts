import type { ReplicaId } from './gcounter.ts';
import type { Tier } from './tiers.ts';

/**
 * One replica's entry of one G-Counter: the count `origin` has for `key` in
 * the bucket of `tier` starting at `start`. The replicated state is a set of
 * slots; joining two states takes the max per slot. `seq` is the origin's
 * commit sequence number of the slot's last change (what version vectors and
 * anti-entropy compare); it is not part of the lattice value.
 */
export interface Slot {
  readonly origin: ReplicaId;
  readonly key: string;
  readonly tier: Tier;
  readonly start: number;
  readonly count: number;
  readonly seq: number;
}
