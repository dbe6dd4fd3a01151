import { keyProblem } from '../crdt/key.ts';
import { TIER_SIZE_MS, Tier, floorTo, isTier } from '../crdt/tiers.ts';
import { ProtocolError, type Delta, type VersionEntry } from './messages.ts';
import type { Changes, HitRow, SlotRow } from './replica-view.ts';

/**
 * Changes ↔ the rows of a delta frame. Times are offsets from `base` (the
 * oldest second in the frame) in units of each tier's bucket, so a fresh
 * push spends one byte on time per row. A hit row carries all five tiers of
 * one (key, second), the common case, without naming tiers at all.
 */
export function encodeDelta(origin: string, changes: Changes, to: VersionEntry, from: number | null): Delta {
  let base = Number.POSITIVE_INFINITY;
  for (const row of changes.hits) base = Math.min(base, row.second);
  for (const row of changes.slots) if (row.tier !== Tier.lifetime) base = Math.min(base, row.start);
  if (base === Number.POSITIVE_INFINITY) base = 0;
  const hits: (string | number)[] = [];
  for (const row of changes.hits) hits.push(row.key, (row.second - base) / 1000, ...row.counts);
  const slots: (string | number)[] = [];
  for (const row of changes.slots) {
    const offset = row.tier === Tier.lifetime ? 0 : (row.start - floorTo(base, TIER_SIZE_MS[row.tier])) / TIER_SIZE_MS[row.tier];
    slots.push(row.key, row.tier, offset, row.count);
  }
  return { type: 'delta', origin, from, to: to[0], at: to[1], base, hits, slots };
}

/** The changes of a parsed delta frame; a ProtocolError if any row is not a valid slot (keys included). */
export function decodeDelta(delta: Delta): Changes {
  if (delta.base % 1000 !== 0) throw new ProtocolError('delta base is not a whole second');
  for (const rows of [delta.hits, delta.slots]) {
    for (let i = 0; i < rows.length; i += rows === delta.hits ? 7 : 4) {
      const problem = keyProblem(rows[i] as string);
      if (problem !== undefined) throw new ProtocolError(`delta row: ${problem}`);
    }
  }
  const hits: HitRow[] = [];
  for (let i = 0; i < delta.hits.length; i += 7) {
    const r = delta.hits;
    hits.push({
      key: r[i] as string,
      second: delta.base + (r[i + 1] as number) * 1000,
      counts: [r[i + 2] as number, r[i + 3] as number, r[i + 4] as number, r[i + 5] as number, r[i + 6] as number],
    });
  }
  const slots: SlotRow[] = [];
  for (let i = 0; i < delta.slots.length; i += 4) {
    const r = delta.slots;
    const tier = r[i + 1];
    if (!isTier(tier)) throw new ProtocolError(`delta slot has an unknown tier ${String(tier)}`);
    const offset = r[i + 2] as number;
    const start = tier === Tier.lifetime ? 0 : floorTo(delta.base, TIER_SIZE_MS[tier]) + offset * TIER_SIZE_MS[tier];
    if (!Number.isSafeInteger(start)) throw new ProtocolError('delta slot start out of range');
    slots.push({ key: r[i] as string, tier, start, count: r[i + 3] as number });
  }
  return { hits, slots };
}
