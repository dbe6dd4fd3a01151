import { TIER_SIZE_MS, Tier, floorTo } from '../crdt/tiers.ts';
import { ProtocolError, type Delta, type TimeBounds, type VersionEntry } from './messages.ts';
import type { Changes, HitRow, SlotRow, TokenChange } from './replica-view.ts';

/**
 * Changes ↔ the rows of a delta frame. Times are offsets from `base` (the
 * oldest second in the frame) in units of each tier's bucket, so a fresh
 * push spends one byte on time per row. A hit row carries all five tiers of
 * one (key, second), the common case, without naming tiers at all; slot rows
 * come in groups per key, so a repair names each key once.
 */
export function encodeDelta(origin: string, changes: Changes, to: VersionEntry, from: number | null): Delta {
  let base = Number.POSITIVE_INFINITY;
  for (const row of changes.hits) base = Math.min(base, row.second);
  for (const row of changes.slots) if (row.tier !== Tier.lifetime) base = Math.min(base, floorTo(row.start, 1000));
  for (const t of changes.tokens ?? []) base = Math.min(base, floorTo(t.at, 1000));
  if (base === Number.POSITIVE_INFINITY) base = floorTo(to[1], 1000);
  const hits: (string | number)[] = [];
  for (const row of changes.hits) hits.push(row.key, (row.second - base) / 1000, ...row.counts);
  const slots: (string | number)[] = [];
  let groupAt = -1;
  for (const row of changes.slots) {
    // A run of rows of one key is one group: [key, n, …].
    if (groupAt < 0 || slots[groupAt] !== row.key) {
      groupAt = slots.length;
      slots.push(row.key, 0);
    }
    slots[groupAt + 1] = (slots[groupAt + 1] as number) + 1;
    const offset = row.tier === Tier.lifetime ? 0 : (row.start - floorTo(base, TIER_SIZE_MS[row.tier])) / TIER_SIZE_MS[row.tier];
    slots.push(row.tier, offset, row.count);
  }
  const delta: Delta = { type: 'delta', origin, from, to: to[0], at: to[1], base, hits, slots };
  if (changes.tokens === undefined || changes.tokens.length === 0) return delta;
  const tokens: (string | number)[] = [];
  for (const t of changes.tokens) tokens.push(t.key, t.token, t.at - base, t.n);
  return { ...delta, tokens };
}

/**
 * The changes of a delta frame `parseMessage` accepted; a ProtocolError if a
 * slot lies outside `bounds` (its tier's offset from base is checked here,
 * where the start is known).
 */
export function decodeDelta(delta: Delta, bounds: TimeBounds): Changes {
  const hits: HitRow[] = [];
  const r = delta.hits;
  for (let i = 0; i < r.length; i += 7) {
    hits.push({
      key: r[i] as string,
      second: delta.base + (r[i + 1] as number) * 1000,
      counts: [r[i + 2] as number, r[i + 3] as number, r[i + 4] as number, r[i + 5] as number, r[i + 6] as number],
    });
  }
  const slots: SlotRow[] = [];
  const g = delta.slots;
  for (let i = 0; i < g.length; ) {
    const key = g[i] as string;
    const n = g[i + 1] as number;
    for (let j = i + 2; j < i + 2 + 3 * n; j += 3) {
      const tier = g[j] as Tier;
      const offset = g[j + 1] as number;
      let start = 0;
      if (tier !== Tier.lifetime) {
        start = floorTo(delta.base, TIER_SIZE_MS[tier]) + offset * TIER_SIZE_MS[tier];
        if (!Number.isSafeInteger(start) || start < floorTo(bounds.earliest, TIER_SIZE_MS[tier]) || start > bounds.latest) throw new ProtocolError('delta slot start out of range');
      } else if (offset !== 0) throw new ProtocolError('a lifetime slot has no offset');
      slots.push({ key, tier, start, count: g[j + 2] as number });
    }
    i += 2 + 3 * n;
  }
  const t = delta.tokens;
  if (t === undefined || t.length === 0) return { hits, slots };
  const tokens: TokenChange[] = [];
  for (let i = 0; i < t.length; i += 4) tokens.push({ key: t[i] as string, token: t[i + 1] as string, at: delta.base + (t[i + 2] as number), n: t[i + 3] as number });
  return { hits, slots, tokens };
}

/**
 * About how many bytes a row takes in a frame: what chunking goes by. Numbers
 * are counted at their worst (9 bytes a count); keys at a byte a UTF-16 unit,
 * so a frame of keys that are all 3-byte characters comes out at most about
 * three times the budget, still far below the frame limit.
 */
export function estimateHitRowBytes(row: HitRow): number {
  return row.key.length + 64;
}

export function estimateTokenBytes(change: TokenChange): number {
  return change.key.length + change.token.length + 24;
}

export function estimateSlotGroupBytes(key: string, buckets: number): number {
  return key.length + 8 + 16 * buckets;
}
