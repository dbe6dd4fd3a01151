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
 * observation of a token is the one that counts; every other one made within
 * the window (`windowMs`, the 1 s tier's retention) of it is a proven
 * duplicate, to be taken off the buckets it fell in. One made later is a new
 * hit: past the window a token is a new one (and every node sees it so,
 * whether or not it still holds the earliest). All of it is a pure function of
 * the set, so every node that holds the same observations takes the same hits
 * off the same buckets, whatever order they came in.
 *
 * The earliest alone would not do: the later observations' hits are in their
 * origins' slots, and every node must know where to take them off.
 */
export class KeyTokens {
  /** token → its observation, or its observations earliest first (an array only for the few seen more than once: it saves an object per token). */
  private readonly byToken = new Map<string, Observation | Observation[]>();
  /** The tokens observed more than once (never dropped, so this only grows): what a fresh read sends whole. */
  private readonly keptTokens = new Set<string>();

  constructor(private readonly windowMs: number) {}

  get size(): number {
    return this.byToken.size;
  }

  /** The observation that counts, or undefined for a token never seen. */
  first(token: string): Observation | undefined {
    const held = this.byToken.get(token);
    return Array.isArray(held) ? held[0] : held;
  }

  observations(token: string): readonly Observation[] {
    const held = this.byToken.get(token);
    return held === undefined ? [] : Array.isArray(held) ? held : [held];
  }

  /** The duplicates among a token's observations (earliest first): those after the first, within the window of it. */
  duplicates(list: readonly Observation[]): Observation[] {
    const first = list[0];
    if (first === undefined || list.length === 1) return [];
    return list.slice(1).filter((o) => o.at - first.at < this.windowMs);
  }

  /**
   * Join one observation. Returns the duplicates before and after (a new
   * earliest one can make the old earliest a duplicate, or free others past
   * its window), or undefined when nothing changed.
   */
  join(token: string, observation: Observation): { readonly removed: readonly Observation[]; readonly added: readonly Observation[] } | undefined {
    const held = this.byToken.get(token);
    if (held === undefined) {
      this.byToken.set(token, observation);
      return NO_CHANGE;
    }
    const list = Array.isArray(held) ? held : [held];
    const same = list.findIndex((o) => o.origin === observation.origin);
    if (same >= 0 && compareObservations(observation, list[same] as Observation) >= 0) return undefined;
    const removed = this.duplicates(list);
    if (same >= 0) list[same] = observation;
    else list.push(observation);
    list.sort(compareObservations);
    this.byToken.set(token, list.length === 1 ? (list[0] as Observation) : list);
    if (list.length > 1) this.keptTokens.add(token);
    return { removed, added: this.duplicates(list) };
  }

  /** Is `token` observed more than once (kept for good)? */
  isKept(token: string): boolean {
    return this.keptTokens.has(token);
  }

  /** The tokens observed more than once (kept for good). */
  *kept(): IterableIterator<[string, readonly Observation[]]> {
    for (const token of this.keptTokens) yield [token, this.observations(token)];
  }

  /** Every token with its observations. */
  *entries(): IterableIterator<[string, readonly Observation[]]> {
    for (const [token, held] of this.byToken) yield [token, Array.isArray(held) ? held : [held]];
  }

  /**
   * Forget the tokens that can no longer matter: one observed once, older
   * than `limit` (TokenState puts it a while past the 1 s tier's horizon:
   * until then an observation a partition held back may still arrive, and
   * must find the first on every node). One observed more than once is kept
   * for good, memory and disk alike: a duplicate among its observations is
   * taken off the coarser buckets and the lifetime total, which outlive any
   * token, and which one is a duplicate can change as observations come (a
   * review found a token dropped from memory but not from disk, or the other
   * way round, counting differently after a restart). Only hits retried on
   * two nodes before they heard of each other, or a token used again past its
   * window, make them. Calls `dropped` for each; returns how many.
   */
  dropBefore(limit: number, dropped?: (token: string, observations: readonly Observation[]) => void): number {
    let count = 0;
    for (const [token, held] of this.byToken) {
      if (Array.isArray(held) || held.at >= limit) continue;
      this.byToken.delete(token);
      dropped?.(token, [held]);
      count++;
    }
    return count;
  }
}

const NO_CHANGE = { removed: [], added: [] } as const;
