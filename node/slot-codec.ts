import type { Slot } from '../crdt/slot.ts';
import { isTier, type Tier } from '../crdt/tiers.ts';

/**
 * How slots are laid out as LevelDB keys and values. Keys sort by origin, tier
 * and bucket start, so expiring a tier's old buckets is one range delete.
 * Keys and origins never hold control characters (they are validated on the
 * way in), so NUL is a safe separator.
 *
 *   key   = "s" NUL origin NUL tier NUL start(13 digits) NUL hit-key
 *   value = count ":" seq
 *
 * Log records sort by seq: key = "l" NUL seq(16 digits), value = the record.
 */
const SEP = '\u0000';
const SLOT_PREFIX = `s${SEP}`;
export const META_PREFIX = `m${SEP}`;
const LOG_PREFIX = `l${SEP}`;
const SEQ_DIGITS = 16;
const START_DIGITS = 13;

export function slotKey(origin: string, tier: Tier, start: number, key: string): string {
  return `${tierPrefix(origin, tier)}${padStart(start)}${SEP}${key}`;
}

export function tierPrefix(origin: string, tier: Tier): string {
  return `${SLOT_PREFIX}${origin}${SEP}${tier}${SEP}`;
}

export function padStart(start: number): string {
  return String(start).padStart(START_DIGITS, '0');
}

export function slotValue(count: number, seq: number): string {
  return `${count}:${seq}`;
}

export function logKey(seq: number): string {
  return LOG_PREFIX + String(seq).padStart(SEQ_DIGITS, '0');
}

export function logSeq(dbKey: string): number {
  const seq = Number(dbKey.slice(LOG_PREFIX.length));
  if (!dbKey.startsWith(LOG_PREFIX) || !Number.isSafeInteger(seq)) throw new Error(`corrupt log key ${JSON.stringify(dbKey)}`);
  return seq;
}

export const LOG_RANGE = { gte: LOG_PREFIX, lt: `l${String.fromCharCode(1)}` } as const;

export const SLOT_RANGE = { gte: SLOT_PREFIX, lt: `s${String.fromCharCode(1)}` } as const;

/** Decode a stored slot; throws on anything that is not one (a corrupt store must not be half-read). */
export function decodeSlot(dbKey: string, dbValue: string): Slot {
  const parts = dbKey.split(SEP);
  const [tag, origin, tierText, startText] = parts;
  const key = parts.slice(4).join(SEP);
  const tier = Number(tierText);
  const start = Number(startText);
  const [countText, seqText] = dbValue.split(':');
  const count = Number(countText);
  const seq = Number(seqText);
  if (tag !== 's' || origin === undefined || origin === '' || !isTier(tier) || !Number.isSafeInteger(start) || key === '' || !Number.isSafeInteger(count) || !Number.isSafeInteger(seq)) {
    throw new Error(`corrupt slot record ${JSON.stringify(dbKey)} = ${JSON.stringify(dbValue)}`);
  }
  return { origin, key, tier, start, count, seq };
}
