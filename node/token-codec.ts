import { randomBytes } from 'node:crypto';
import { EARLIEST_MS } from '../crdt/key-buckets.ts';
import { keyProblem } from '../crdt/key.ts';
import { tokenProblem, type Observation } from '../crdt/key-tokens.ts';
import { isOrigin } from '../crdt/names.ts';
import { MAX_START, padStart, quote } from './slot-codec.ts';
import { CorruptRecordError, type KeptToken, type StoredToken } from './store.ts';

/**
 * How token observations are laid out in LevelDB. Most are written once and
 * dropped a window later, so they go in chunks: one record per checkpoint
 * chunk, keyed by the latest `at` in it, so expiry is one range delete and a
 * checkpoint writes one record per 2,000 tokens, not one each (a record per
 * token cost 7 µs of the main thread each, the most of a tokened hit's cost).
 * A token observed more than once is kept for good, in a record of its own
 * holding all its observations, rewritten when it gains one.
 *
 *   chunk: key = "t" NUL latest-at(13 digits) NUL id, value = JSON [origin, key, token, at, n, …]
 *   kept:  key = "d" NUL hit-key NUL token,          value = JSON [[origin, at, n], …]
 */
const SEP = '\u0000';
const CHUNK_PREFIX = `t${SEP}`;
const KEPT_PREFIX = `d${SEP}`;
export const TOKEN_CHUNK_RANGE = { gte: CHUNK_PREFIX, lt: `t${String.fromCharCode(1)}` } as const;
export const KEPT_TOKEN_RANGE = { gte: KEPT_PREFIX, lt: `d${String.fromCharCode(1)}` } as const;

/** A fresh id per chunk: random per process, counted within it, so chunks of two runs never collide. */
const RUN = randomBytes(8).toString('hex');
let chunks = 0;

export function tokenChunkEntry(tokens: readonly StoredToken[]): { key: string; value: string } {
  let latest = 0;
  const flat: (string | number)[] = [];
  for (const t of tokens) {
    latest = Math.max(latest, t.at);
    flat.push(t.origin, t.key, t.token, t.at, t.n);
  }
  return { key: `${CHUNK_PREFIX}${padStart(latest)}${SEP}${RUN}-${chunks++}`, value: JSON.stringify(flat) };
}

/** The first key of the chunks whose latest observation is at or after `at`: everything before it is older. */
export function tokenChunkLimit(at: number): string {
  return CHUNK_PREFIX + padStart(Math.max(0, Math.min(at, MAX_START - 1)));
}

export function keptTokenEntry(kept: KeptToken): { key: string; value: string } {
  return { key: `${KEPT_PREFIX}${kept.key}${SEP}${kept.token}`, value: JSON.stringify(kept.observations.map((o) => [o.origin, o.at, o.n])) };
}

function observation(origin: unknown, at: unknown, n: unknown, where: string): Observation {
  if (typeof origin !== 'string' || !isOrigin(origin)) throw new CorruptRecordError(`${where}: origin ${quote(String(origin))} is not id#incarnation`);
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < EARLIEST_MS || at >= MAX_START) throw new CorruptRecordError(`${where}: at is not a time in range`);
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new CorruptRecordError(`${where}: n is not a safe integer ≥ 1`);
  return { origin, at, n };
}

function checkNames(key: unknown, token: unknown, where: string): { key: string; token: string } {
  const problem = typeof key !== 'string' ? 'the key is not a string' : (keyProblem(key) ?? (typeof token !== 'string' ? 'the token is not a string' : tokenProblem(token)));
  if (problem !== undefined) throw new CorruptRecordError(`${where}: ${problem}`);
  return { key: key as string, token: token as string };
}

function parseJson(dbKey: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new CorruptRecordError(`token record ${quote(dbKey)} is not JSON`);
  }
}

/** Decode a chunk, all of it or none (CorruptRecordError saying what is wrong). */
export function decodeTokenChunk(dbKey: string, value: string): StoredToken[] {
  const parts = dbKey.split(SEP);
  if (parts.length !== 3 || parts[0] !== 't' || !/^[0-9]{13}$/.test(parts[1] ?? '') || !/^[0-9a-f]{16}-[0-9]{1,16}$/.test(parts[2] ?? '')) {
    throw new CorruptRecordError(`token chunk key ${quote(dbKey)} is not "t", a 13-digit time, an id`);
  }
  const latest = Number(parts[1]);
  const flat = parseJson(dbKey, value);
  if (!Array.isArray(flat) || flat.length === 0 || flat.length % 5 !== 0) throw new CorruptRecordError(`token chunk ${quote(dbKey)} is not (origin, key, token, at, n) rows`);
  const rows: readonly unknown[] = flat;
  const tokens: StoredToken[] = [];
  for (let i = 0; i < rows.length; i += 5) {
    const where = `token chunk row ${i / 5}`;
    const names = checkNames(rows[i + 1], rows[i + 2], where);
    const o = observation(rows[i], rows[i + 3], rows[i + 4], where);
    if (o.at > latest) throw new CorruptRecordError(`${where}: at is after the chunk's latest`);
    tokens.push({ ...names, ...o });
  }
  return tokens;
}

/** Decode a kept token: its key and token, and every observation of it. */
export function decodeKeptToken(dbKey: string, value: string): StoredToken[] {
  const parts = dbKey.split(SEP);
  if (parts.length !== 3 || parts[0] !== 'd') throw new CorruptRecordError(`kept token key ${quote(dbKey)} is not "d", key, token separated by NUL`);
  const names = checkNames(parts[1], parts[2], 'kept token');
  const list = parseJson(dbKey, value);
  if (!Array.isArray(list) || list.length === 0) throw new CorruptRecordError(`kept token ${quote(dbKey)} is not a list of observations`);
  return (list as unknown[]).map((row, i) => {
    if (!Array.isArray(row) || row.length !== 3) throw new CorruptRecordError(`kept token observation ${i} is not [origin, at, n]`);
    return { ...names, ...observation(row[0], row[1], row[2], `kept token observation ${i}`) };
  });
}
