import type { Observation } from '../crdt/key-tokens.ts';
import type { TokenChange } from '../gossip/replica-view.ts';
import { tokenId } from './group-commit.ts';
import type { HitItem } from './replica.ts';

/** The token was counted before with another n (422): a retry must repeat the request exactly. */
export class TokenConflictError extends Error {
  readonly statusCode = 422;
  readonly code = 'HITMESH_TOKEN_CONFLICT';
}

/** What a replica can say of a token before counting it. */
export interface TokenLookup {
  /** The observation that counts, if the token is known. */
  first(key: string, token: string): Observation | undefined;
  /** The observation in a batch not yet durable, if any, and that batch's outcome. */
  pending(key: string, token: string): { readonly change: TokenChange; readonly done: Promise<void> } | undefined;
}

/** Items of a batch sorted out by their tokens: the ones to count, how many repeat a token counted before, and a batch to wait for first. */
export interface TokenPlan {
  readonly fresh: readonly HitItem[];
  readonly duplicates: number;
  /** A batch not yet durable holds one of the tokens: wait for it, then plan again. */
  readonly waitFor?: Promise<void>;
}

function conflict(key: string, n: number, counted: number): TokenConflictError {
  return new TokenConflictError(`this Idempotency-Key was already used on ${JSON.stringify(key)} with n=${counted}, not n=${n}: a retry must repeat the request as it was`);
}

/**
 * Sort out `items` by their tokens (items without one are all fresh). Throws
 * TokenConflictError if a token was counted with another n, or appears twice
 * in the batch with two. Pure apart from the lookups: run it again in the
 * synchronous step that adds the items, so nothing slips in between.
 */
export function planTokens(items: readonly HitItem[], lookup: TokenLookup): TokenPlan {
  if (items.length === 1) return planOne(items[0] as HitItem, items, lookup);
  const fresh: HitItem[] = [];
  const seen = new Map<string, number>();
  let duplicates = 0;
  for (const item of items) {
    const n = item.n ?? 1;
    if (item.id === undefined) {
      fresh.push(item);
      continue;
    }
    const id = tokenId(item.key, item.id);
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      if (earlier !== n) throw conflict(item.key, n, earlier);
      duplicates++;
      continue;
    }
    seen.set(id, n);
    const first = lookup.first(item.key, item.id);
    if (first !== undefined) {
      if (first.n !== n) throw conflict(item.key, n, first.n);
      duplicates++;
      continue;
    }
    const pending = lookup.pending(item.key, item.id);
    if (pending !== undefined) {
      if (pending.change.n !== n) throw conflict(item.key, n, pending.change.n);
      return { fresh: [], duplicates: 0, waitFor: pending.done.catch(() => undefined) };
    }
    fresh.push(item);
  }
  return { fresh, duplicates };
}

/** The same for one item (a single hit, the common case): no map of the batch's tokens. */
function planOne(item: HitItem, items: readonly HitItem[], lookup: TokenLookup): TokenPlan {
  if (item.id === undefined) return { fresh: items, duplicates: 0 };
  const n = item.n ?? 1;
  const first = lookup.first(item.key, item.id);
  if (first !== undefined) {
    if (first.n !== n) throw conflict(item.key, n, first.n);
    return { fresh: [], duplicates: 1 };
  }
  const pending = lookup.pending(item.key, item.id);
  if (pending === undefined) return { fresh: items, duplicates: 0 };
  if (pending.change.n !== n) throw conflict(item.key, n, pending.change.n);
  return { fresh: [], duplicates: 0, waitFor: pending.done.catch(() => undefined) };
}
