import { keyProblem } from '../crdt/key.ts';
import { isOrigin } from '../crdt/names.ts';
import type { Slot } from '../crdt/slot.ts';
import { TIER_NAMES, TIER_SIZE_MS, Tier, isTier } from '../crdt/tiers.ts';
import { CorruptRecordError, shorten, type StoredCount } from './store.ts';

/**
 * How slots are laid out as LevelDB keys and values. Keys sort by origin, tier
 * and bucket start, so expiring a tier's old buckets is one range delete.
 * Keys and origins never hold control characters (they are validated on the
 * way in), so NUL is a safe separator. The readers check everything again:
 * a store may hold anything, and a bad record must be skipped, not trusted.
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

/** The seq of a raw log key; throws CorruptRecordError unless it is exactly what `logKey` writes. */
export function logSeq(dbKey: string): number {
  const digits = dbKey.slice(LOG_PREFIX.length);
  if (!dbKey.startsWith(LOG_PREFIX) || !/^[0-9]{16}$/.test(digits)) throw new CorruptRecordError(`log key ${quote(dbKey)} is not "l", NUL, a 16-digit seq`);
  const seq = Number(digits);
  if (!Number.isSafeInteger(seq)) throw new CorruptRecordError(`log seq ${digits} is past 2^53`);
  return seq;
}

/** The origin part of a raw slot key (all of it after "s" NUL when it has no second NUL). */
export function slotKeyOrigin(dbKey: string): string {
  const end = dbKey.indexOf(SEP, SLOT_PREFIX.length);
  return dbKey.slice(SLOT_PREFIX.length, end < 0 ? undefined : end);
}

/** The least db key past every slot key of `origin`: NUL ends an origin, and \u0001 sorts right after it. */
export function pastOrigin(origin: string): string {
  return `${SLOT_PREFIX}${origin}\u0001`;
}

export const LOG_RANGE = { gte: LOG_PREFIX, lt: `l${String.fromCharCode(1)}` } as const;

export const SLOT_RANGE = { gte: SLOT_PREFIX, lt: `s${String.fromCharCode(1)}` } as const;

/** Bucket starts are epoch ms below 10^13 (year 2286): 13 digits, so keys sort by start. */
export const MAX_START = 10 ** START_DIGITS;

/**
 * The db keys of `origin`'s slots of `tier` starting in [fromStart, toStart),
 * the bounds clamped to [0, MAX_START] (-Infinity: from the first, Infinity:
 * to the last); undefined if no start lies between them. A range to the end
 * ends past the tier: MAX_START has 14 digits and sorts before most starts.
 */
export function startRange(origin: string, tier: Tier, fromStart: number, toStart: number): { readonly gte: string; readonly lt: string } | undefined {
  if (Number.isNaN(fromStart) || Number.isNaN(toStart)) throw new RangeError(`slot start range [${fromStart}, ${toStart}) is not a range`);
  const from = clampStart(fromStart);
  const to = clampStart(toStart);
  if (from >= to) return undefined;
  const prefix = tierPrefix(origin, tier);
  return { gte: prefix + padStart(from), lt: to === MAX_START ? `${prefix.slice(0, -SEP.length)}\u0001` : prefix + padStart(to) };
}

/** Starts are integers: a start is >= x exactly when it is >= ceil(x), and < x exactly when < ceil(x). */
function clampStart(start: number): number {
  return Math.min(Math.max(Math.ceil(start), 0), MAX_START);
}

// Canonical digits: a leading zero would decode to a number that encodes to another value.
const COUNT_SEQ = /^(0|[1-9][0-9]*):(0|[1-9][0-9]*)$/;

/**
 * Decode a stored slot. Strict: it returns only what `slotKey`/`slotValue`
 * would write back byte for byte, and throws CorruptRecordError saying what
 * is wrong with anything else (the scans skip such a record).
 */
export function decodeSlot(dbKey: string, dbValue: string): Slot {
  const parts = dbKey.split(SEP);
  if (parts.length < 5 || parts[0] !== 's') throw new CorruptRecordError(`slot key ${quote(dbKey)} is not "s", origin, tier, start, key separated by NUL`);
  const [, origin = '', tierText = '', startText = ''] = parts;
  if (!isOrigin(origin)) throw new CorruptRecordError(`slot origin ${quote(origin)} is not id#incarnation`);
  const tier = Number(tierText);
  if (!/^[0-4]$/.test(tierText) || !isTier(tier)) throw new CorruptRecordError(`slot tier ${quote(tierText)} is not one of 0-4`);
  if (!/^[0-9]{13}$/.test(startText)) throw new CorruptRecordError(`slot start ${quote(startText)} is not 13 digits (an integer in [0, 10^13))`);
  const start = Number(startText);
  const aligned = tier === Tier.lifetime ? start === 0 : start % TIER_SIZE_MS[tier] === 0;
  if (!aligned) throw new CorruptRecordError(`slot start ${start} is not the start of a ${TIER_NAMES[tier]} bucket`);
  // A NUL inside the hit key splits it: join it back so keyProblem names it.
  return slotAfterPrefix(origin, tier, start, parts.slice(4).join(SEP), dbValue);
}

/** The rest of a slot once its origin, tier and start are checked: the hit key and the value. */
function slotAfterPrefix(origin: string, tier: Tier, start: number, key: string, dbValue: string): Slot {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new CorruptRecordError(`slot key ${quote(key)}: ${problem}`);
  const { count, seq } = decodeSlotValue(dbValue);
  return { origin, key, tier, start, count, seq };
}

/** The value part of decodeSlot: the count and seq of what `slotValue` writes, or CorruptRecordError. */
export function decodeSlotValue(dbValue: string): StoredCount {
  const value = COUNT_SEQ.exec(dbValue);
  if (value === null) throw new CorruptRecordError(`slot value ${quote(dbValue)} is not <count>:<seq> in canonical digits`);
  const count = Number(value[1]);
  const seq = Number(value[2]);
  if (!Number.isSafeInteger(count)) throw new CorruptRecordError(`slot count ${quote(value[1] ?? '')} is past 2^53`);
  if (!Number.isSafeInteger(seq)) throw new CorruptRecordError(`slot seq ${quote(value[2] ?? '')} is past 2^53`);
  return { count, seq };
}

/**
 * decodeSlot for a scan, which reads slots in key order: most share the one
 * before's origin, tier and start, so that prefix is checked once and later
 * slots only check their hit key and value. The origin is one string per
 * origin, not one per slot: the state's map lookups then compare it by
 * pointer. Same results and same refusals as decodeSlot.
 */
export class SlotDecoder {
  private prefix = '';
  private origin = '';
  private tier: Tier = Tier.second;
  private start = 0;

  readonly decode = (dbKey: string, dbValue: string): Slot => {
    if (this.prefix !== '' && dbKey.startsWith(this.prefix)) return slotAfterPrefix(this.origin, this.tier, this.start, dbKey.slice(this.prefix.length), dbValue);
    const slot = decodeSlot(dbKey, dbValue);
    this.prefix = slotKey(slot.origin, slot.tier, slot.start, '');
    this.tier = slot.tier;
    this.start = slot.start;
    if (slot.origin === this.origin) return { ...slot, origin: this.origin }; // the string already held
    this.origin = slot.origin;
    return slot;
  };
}

/** A piece of a bad record for a message: JSON-quoted (control characters escaped) and short. */
export function quote(text: string): string {
  return JSON.stringify(shorten(text, 60));
}

