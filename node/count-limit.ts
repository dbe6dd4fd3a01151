/** The most hits a key can count: past 2^53 − 1 a JavaScript number no longer holds every integer. */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A hit that would take a key's count past MAX_COUNT: refused (422), nothing counted. */
export class CountLimitError extends Error {
  readonly statusCode = 422;
  readonly code = 'HITMESH_COUNT_LIMIT';
}

export interface CountLedger {
  /** The key's lifetime total over every origin, as held now. */
  lifetimeTotal(key: string): number;
  /** Hits of the key taken but not yet in the state (their batch is being written). */
  pendingFor(key: string): number;
  /** All hits taken but not yet in the state, of every key. */
  unapplied(): number;
}

/**
 * Refuse a request whose hits would take any key past MAX_COUNT. Every
 * slot of a key is at most its lifetime total, so bounding the total bounds
 * every bucket, and sums over windows. Cheap unless a key is near the limit:
 * the exact pending hits of a key are looked up only then.
 */
export function checkCountLimit(items: readonly { readonly key: string; readonly n?: number }[], ledger: CountLedger): void {
  let requested = 0;
  for (const item of items) requested += item.n ?? 1;
  let perKey: Map<string, number> | undefined;
  for (const item of items) {
    const total = ledger.lifetimeTotal(item.key);
    if (total + ledger.unapplied() + requested <= MAX_COUNT) continue;
    // Near the limit: count exactly what this request and the batches under way add to this key.
    if (perKey === undefined) {
      perKey = new Map();
      for (const { key, n } of items) perKey.set(key, (perKey.get(key) ?? 0) + (n ?? 1));
    }
    const adding = perKey.get(item.key) ?? 0;
    if (total + ledger.pendingFor(item.key) + adding > MAX_COUNT) {
      throw new CountLimitError(
        `key ${JSON.stringify(item.key.length > 60 ? `${item.key.slice(0, 60)}…` : item.key)} holds ${total} hits; ${adding} more would take it past 2^53 − 1 (${MAX_COUNT}), the most a count can hold: the hit was not counted`,
      );
    }
  }
}
