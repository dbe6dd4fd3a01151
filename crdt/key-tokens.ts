import type { ReplicaId } from './gcounter.ts';

/** Longest idempotency token, in characters (each is printable ASCII, so also in bytes). */
export const MAX_TOKEN_LENGTH = 255;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** Why `token` is not a valid idempotency token, or undefined. The same rule holds for tokens from HTTP and from peers. */
export function tokenProblem(token: string): string | undefined {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return `an idempotency token must be 1-${MAX_TOKEN_LENGTH} characters`;
  if (!PRINTABLE_ASCII.test(token)) return 'an idempotency token must be printable ASCII (space to ~)';
  return undefined;
}

/**
 * One origin's observation of a token: it counted `n` hits of the token's key
 * at instant `at` (its hit stamp). An origin counts a token at most once, so
 * an observation never changes once made; it is replicated with that origin's
 * slots, like them.
 */
export interface Observation {
  readonly origin: ReplicaId;
  readonly at: number;
  readonly n: number;
}

/** Earliest first: by time, then by origin, then by n (only a peer that broke the rules sends two of one origin). */
export function compareObservations(a: Observation, b: Observation): number {
  if (a.at !== b.at) return a.at - b.at;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.n - b.n;
}

/**
 * The token map of one key, a CRDT: token → the observations of it, one per
 * origin (a set, joined by union; where one origin is seen with two, the
 * earlier one stays, so the join is still a semilattice). The earliest
 * observation of a token is the one that counts; every other is a proven
 * duplicate, to be subtracted from the buckets it fell in. Both are pure
 * functions of the set, so every node that holds the same observations
 * subtracts the same hits from the same buckets, whatever order they came in.
 *
 * The earliest alone would not do: the later observations' hits are in their
 * origins' slots, and every node must know where to take them off.
 */
export class KeyTokens {
  /** token → its observations, earliest first (nearly always exactly one). */
  private readonly byToken = new Map<string, Observation[]>();

  get size(): number {
    return this.byToken.size;
  }

  /** The observation that counts, or undefined for a token never seen. */
  first(token: string): Observation | undefined {
    return this.byToken.get(token)?.[0];
  }

  observations(token: string): readonly Observation[] {
    return this.byToken.get(token) ?? [];
  }

  /**
   * Join one observation. Returns the duplicates it settles, as [removed, added]:
   * the observations that stopped being duplicates (an earlier one of the
   * same origin replaced them) and those that became duplicates (the new one,
   * when it is not the earliest; the old earliest, when the new one is
   * earlier). Undefined when nothing changed.
   */
  join(token: string, observation: Observation): { readonly removed: readonly Observation[]; readonly added: readonly Observation[] } | undefined {
    const list = this.byToken.get(token);
    if (list === undefined) {
      this.byToken.set(token, [observation]);
      return { removed: [], added: [] };
    }
    const same = list.findIndex((o) => o.origin === observation.origin);
    if (same >= 0) {
      const old = list[same] as Observation;
      if (compareObservations(observation, old) >= 0) return undefined;
      // Replaced by an earlier one of the same origin: undo the old duplicates, redo them.
      const before = list.slice(1);
      list[same] = observation;
      list.sort(compareObservations);
      return { removed: before, added: list.slice(1) };
    }
    const wasFirst = list[0] as Observation;
    list.push(observation);
    list.sort(compareObservations);
    if (list[0] === observation) return { removed: [], added: [wasFirst] };
    return { removed: [], added: [observation] };
  }

  /** Every token with its observations. */
  entries(): IterableIterator<[string, readonly Observation[]]> {
    return this.byToken.entries();
  }

  /**
   * Forget the tokens that can no longer matter: one observed once, once the
   * 1 s tier no longer holds its second (`secondHorizon`); one with
   * duplicates, once the day tier no longer holds the day of its latest
   * observation (`dayHorizon`), for until then its duplicates are still being
   * taken off the coarser buckets. Calls `dropped` for each; returns how many.
   */
  dropBefore(secondHorizon: number, dayHorizon: number, dropped?: (token: string, observations: readonly Observation[]) => void): number {
    let count = 0;
    for (const [token, list] of this.byToken) {
      const last = list[list.length - 1] as Observation;
      const expired = list.length === 1 ? last.at < secondHorizon : last.at < dayHorizon;
      if (!expired) continue;
      this.byToken.delete(token);
      dropped?.(token, list);
      count++;
    }
    return count;
  }
}
