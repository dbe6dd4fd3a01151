/**
 * The gossip wire grammar: a union keyed on `type`, one guard per message.
 * Frames are msgpack; decode yields `unknown` and nothing is trusted until
 * `parseMessage` accepts it: every name against its grammar, every number a
 * safe integer in range, every time near the receiver's clock, every list
 * within its limit. Code past it never meets a value it cannot store, send
 * on or reopen. See PROTOCOL.md.
 */
import { keyProblem } from '../crdt/key.ts';
import { tokenProblem } from '../crdt/key-tokens.ts';
import { isAddress, isNodeId, isOrigin, nodeIdOf } from '../crdt/names.ts';
import { EARLIEST_MS } from '../crdt/replica-state.ts';
import { LIMITS } from './limits.ts';

export const PROTOCOL_VERSION = 4;

/** Per origin: the highest seq held completely and the time of that origin's last hit up to it. */
export type VersionEntry = readonly [seq: number, at: number];
export type VersionVector = Readonly<Record<string, VersionEntry>>;

/** What a sync says of one origin: its complete entry, the digest of what is held of it and the highest seq held. */
export type SyncEntry = readonly [seq: number, at: number, digest: number, high: number];

/** First frame each way: who I am, and a fresh nonce the peer must sign. */
export interface Hello {
  readonly type: 'hello';
  readonly protocol: number;
  readonly id: string;
  readonly origin: string;
  /** host:port to dial this node at. */
  readonly address: string;
  readonly nonce: Uint8Array;
}

/** Second frame each way: HMAC(secret, the peer's nonce, my origin); empty without a secret. */
export interface Auth {
  readonly type: 'auth';
  readonly proof: Uint8Array;
}

/** Periodic: what I hold of every origin, the members I know, and a clock sample. Also the heartbeat. */
export interface Sync {
  readonly type: 'sync';
  readonly vv: Readonly<Record<string, SyncEntry>>;
  /** id → address of every member I know (myself included); empty when unchanged since the last one sent. */
  readonly members: Readonly<Record<string, string>>;
  /** Ids of the peers I have an open connection with: they get their deltas from the origin, not by relay. */
  readonly links: readonly string[];
  /** My clock when sending, and the `sent` of the last sync I got from you with how long I held it. */
  readonly sent: number;
  readonly echo: number;
  readonly held: number;
}

/**
 * Slots of one origin. Complete (`from` set) means: every change of batches
 * (from, to] is in here, so a receiver that holds `from` now holds `to`.
 * `hits` rows: [key, second, s, m, h, d, lifetime] (all five tiers of one
 * key's second); `slots`: [key, n, then n × (tier, offset, count)];
 * `tokens` (absent when none): [key, token, at − base (ms), n] × k, the idempotency
 * tokens the origin observed in those batches.
 */
export interface Delta {
  readonly type: 'delta';
  readonly origin: string;
  readonly from: number | null;
  readonly to: number;
  readonly at: number;
  readonly base: number;
  readonly hits: readonly (string | number)[];
  readonly slots: readonly (string | number)[];
  readonly tokens?: readonly (string | number)[];
}

/** Flow control: how many bytes of delta frames I have received on this connection so far (sent every 16 KiB or 200 ms while they arrive). */
export interface Flow {
  readonly type: 'flow';
  readonly received: number;
}

/**
 * Sent back to an origin at once when one of its own deltas made the
 * receiver's complete entry of it reach `seq`: what `?ack=majority|all`
 * waits for (a round trip, not a sync interval).
 */
export interface Held {
  readonly type: 'held';
  readonly origin: string;
  readonly seq: number;
}

/**
 * A fresh read (`?read=majority|all`): the counts of `keys` at the buckets of
 * `runs` ([tier, start, count] × n: `count` buckets of `tier` from `start`),
 * answered with a `readReply` of the same `id`.
 */
export interface Read {
  readonly type: 'read';
  readonly id: number;
  readonly keys: readonly string[];
  readonly runs: readonly number[];
}

/**
 * What a peer holds of a read's keys and buckets, per origin: `rows` are
 * [key index, origin index, bucket index, count] × n, non-zero counts only.
 * `tooBig` instead when the answer would pass the row limit.
 */
export interface ReadReply {
  readonly type: 'readReply';
  readonly id: number;
  readonly origins: readonly string[];
  readonly rows: readonly number[];
  /**
   * The peer's tokens of those keys observed more than once (the only ones
   * that prove duplicates), whole: [key index, token, origin index, at, n] × n
   * (absent when none). The asker works the duplicates out over the union.
   */
  readonly tokens?: readonly (string | number)[];
  readonly tooBig: boolean;
}

export type Message = Hello | Auth | Sync | Delta | Flow | Held | Read | ReadReply;

export class ProtocolError extends Error {
  readonly code = 'HITMESH_PROTOCOL';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isBytes = (v: unknown, min: number, max: number): v is Uint8Array => v instanceof Uint8Array && v.length >= min && v.length <= max;

/** The window of times a frame may carry: from 2020 to a day past the receiver's clock. */
export interface TimeBounds {
  readonly earliest: number;
  readonly latest: number;
}

export function timeBounds(now: number): TimeBounds {
  return { earliest: EARLIEST_MS, latest: now + LIMITS.maxAheadMs };
}

const inBounds = (t: number, b: TimeBounds): boolean => t >= b.earliest && t <= b.latest;

function checkSyncVector(v: unknown, b: TimeBounds): string | undefined {
  if (!isObject(v)) return 'vv is not a map';
  const entries = Object.entries(v);
  if (entries.length > LIMITS.maxOrigins) return `vv has more than ${LIMITS.maxOrigins} origins`;
  for (const [origin, e] of entries) {
    if (!isOrigin(origin)) return `vv names a bad origin ${JSON.stringify(String(origin).slice(0, 100))}`;
    if (!Array.isArray(e) || e.length !== 4 || !e.every(isInt)) return `vv entry of ${origin} is not [seq, at, digest, high]`;
    const [, at, digest] = e;
    if (at !== 0 && !inBounds(at ?? 0, b)) return `vv entry of ${origin} has a time out of range`;
    if ((digest as number) > 0xffff_ffff) return `vv entry of ${origin} has a digest over 32 bits`;
  }
  return undefined;
}

function checkSync(v: Record<string, unknown>, b: TimeBounds): string | undefined {
  const vv = checkSyncVector(v.vv, b);
  if (vv !== undefined) return vv;
  if (!isObject(v.members)) return 'members is not a map';
  const members = Object.entries(v.members);
  if (members.length > LIMITS.maxMembers) return `more than ${LIMITS.maxMembers} members`;
  for (const [id, address] of members) {
    if (!isNodeId(id)) return `member id ${JSON.stringify(String(id).slice(0, 100))} is not a node id`;
    if (!isAddress(address)) return `member ${id} has a bad address ${JSON.stringify(String(address).slice(0, 100))}`;
  }
  if (!Array.isArray(v.links) || v.links.length > LIMITS.maxMembers || !v.links.every(isNodeId)) return 'links is not a list of node ids';
  // A skewed peer must still be measurable, so `sent` may be far off; it must be a sane time all the same.
  if (!isInt(v.sent) || !isInt(v.echo) || !isInt(v.held)) return 'clock sample is not three non-negative integers';
  if (v.sent < b.earliest || v.sent > b.latest + 365 * 86_400_000 || v.held > 3_600_000) return 'clock sample out of range';
  return undefined;
}

/** Rows [key, …numbers] of a fixed width: every key valid, every number a safe non-negative integer. */
function checkHitRows(rows: unknown, base: number, b: TimeBounds): string | undefined {
  if (!Array.isArray(rows) || rows.length % 7 !== 0) return 'hits is not a list of 7-wide rows';
  for (let i = 0; i < rows.length; i += 7) {
    const problem = typeof rows[i] === 'string' ? keyProblem(rows[i] as string) : 'key is not a string';
    if (problem !== undefined) return `hit row: ${problem}`;
    for (let j = 1; j < 7; j++) if (!isInt(rows[i + j])) return 'hit row holds a number that is not a safe non-negative integer';
    const second = base + (rows[i + 1] as number) * 1000;
    if (!Number.isSafeInteger(second) || !inBounds(second, b)) return 'hit row second out of range';
    // One origin's five counts of one second nest: second ≤ minute ≤ hour ≤ day ≤ lifetime.
    for (let j = 2; j < 6; j++) if ((rows[i + j] as number) > (rows[i + j + 1] as number)) return 'hit row counts do not nest';
  }
  return undefined;
}

/** Slot groups [key, n, n × (tier, offset, count)]; their starts are checked where they are computed (decodeDelta). */
function checkSlotGroups(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'slots is not a list';
  const groups: readonly unknown[] = value;
  let i = 0;
  let rows = 0;
  while (i < groups.length) {
    const problem = typeof groups[i] === 'string' ? keyProblem(groups[i] as string) : 'key is not a string';
    if (problem !== undefined) return `slot group: ${problem}`;
    const n = groups[i + 1];
    if (!isInt(n) || n === 0 || i + 2 + 3 * n > groups.length) return 'slot group has a bad length';
    for (let j = i + 2; j < i + 2 + 3 * n; j++) if (!isInt(groups[j])) return 'slot holds a number that is not a safe non-negative integer';
    for (let j = i + 2; j < i + 2 + 3 * n; j += 3) if ((groups[j] as number) > 4) return `slot has an unknown tier ${String(groups[j])}`;
    rows += n;
    i += 2 + 3 * n;
  }
  return rows > LIMITS.maxDeltaRows ? `more than ${LIMITS.maxDeltaRows} rows` : undefined;
}

/** Token rows [key, token, ms after base, n]: a valid key and token, a time in range, n a safe integer ≥ 1. */
function checkTokenRows(rows: unknown, base: number, b: TimeBounds): string | undefined {
  if (rows === undefined) return undefined;
  if (!Array.isArray(rows) || rows.length % 4 !== 0) return 'tokens is not a list of 4-wide rows';
  if (rows.length / 4 > LIMITS.maxDeltaRows) return `more than ${LIMITS.maxDeltaRows} rows`;
  const flat: readonly unknown[] = rows;
  for (let i = 0; i < flat.length; i += 4) {
    const [key, token, at, n] = [flat[i], flat[i + 1], flat[i + 2], flat[i + 3]];
    const problem = typeof key === 'string' ? keyProblem(key) : 'key is not a string';
    if (problem !== undefined) return `token row: ${problem}`;
    const bad = typeof token === 'string' ? tokenProblem(token) : 'token is not a string';
    if (bad !== undefined) return `token row: ${bad}`;
    if (!isInt(at) || !Number.isSafeInteger(base + at) || !inBounds(base + at, b)) return 'token row time out of range';
    if (!isInt(n) || n === 0) return 'token row n is not a safe integer ≥ 1';
  }
  return undefined;
}

function checkDelta(v: Record<string, unknown>, b: TimeBounds): string | undefined {
  if (!isOrigin(v.origin)) return 'origin is not id#incarnation';
  if (!isInt(v.to) || !(v.from === null || (isInt(v.from) && v.from <= v.to))) return 'from/to are not seqs with from ≤ to';
  if (!isInt(v.at) || (v.at !== 0 && !inBounds(v.at, b))) return 'at out of range';
  if (!isInt(v.base) || v.base % 1000 !== 0 || v.base > b.latest) return 'base is not a whole second in range';
  if (Array.isArray(v.hits) && v.hits.length / 7 > LIMITS.maxDeltaRows) return `more than ${LIMITS.maxDeltaRows} rows`;
  return checkHitRows(v.hits, v.base, b) ?? checkSlotGroups(v.slots) ?? checkTokenRows(v.tokens, v.base, b);
}

/** Buckets a read's runs name in all. */
export function runBuckets(runs: readonly number[]): number {
  let n = 0;
  for (let i = 2; i < runs.length; i += 3) n += runs[i] ?? 0;
  return n;
}

function checkRead(v: Record<string, unknown>): string | undefined {
  if (!isInt(v.id)) return 'id is not a request number';
  if (!Array.isArray(v.keys) || v.keys.length > LIMITS.maxReadKeys) return `keys is not a list of at most ${LIMITS.maxReadKeys}`;
  for (const key of v.keys as unknown[]) {
    const problem = typeof key === 'string' ? keyProblem(key) : 'key is not a string';
    if (problem !== undefined) return `read key: ${problem}`;
  }
  if (!Array.isArray(v.runs) || v.runs.length % 3 !== 0 || v.runs.length > 3 * LIMITS.maxReadRuns || !v.runs.every(isInt)) return 'runs is not a list of [tier, start, count]';
  const runs = v.runs;
  for (let i = 0; i < runs.length; i += 3) {
    if ((runs[i] as number) > 4 || (runs[i + 2] as number) === 0) return 'a run has an unknown tier or no buckets';
    if (runs[i] === 4 && (runs[i + 1] !== 0 || runs[i + 2] !== 1)) return 'the lifetime run is one bucket at 0';
  }
  if (runBuckets(runs) * Math.max(1, v.keys.length) > LIMITS.maxReadBuckets) return `more than ${LIMITS.maxReadBuckets} keys × buckets`;
  return undefined;
}

function checkReadReply(v: Record<string, unknown>, b: TimeBounds): string | undefined {
  if (!isInt(v.id)) return 'id is not a request number';
  if (typeof v.tooBig !== 'boolean') return 'tooBig is not a boolean';
  if (!Array.isArray(v.origins) || v.origins.length > LIMITS.maxOrigins || !v.origins.every(isOrigin)) return 'origins is not a list of origins';
  if (!Array.isArray(v.rows) || v.rows.length % 4 !== 0 || v.rows.length > 4 * LIMITS.maxReadRows || !v.rows.every(isInt)) return 'rows is not a list of [key, origin, bucket, count]';
  const rows = v.rows;
  for (let i = 1; i < rows.length; i += 4) if ((rows[i] as number) >= v.origins.length) return 'a row names an origin that is not listed';
  const tokens = v.tokens;
  if (tokens !== undefined) {
    if (!Array.isArray(tokens) || tokens.length % 5 !== 0 || tokens.length > 5 * LIMITS.maxReadRows) return 'tokens is not a list of [key, token, origin, at, n]';
    const t: readonly unknown[] = tokens;
    for (let i = 0; i < t.length; i += 5) {
      const bad = typeof t[i + 1] === 'string' ? tokenProblem(t[i + 1] as string) : 'token is not a string';
      if (bad !== undefined) return `reply token: ${bad}`;
      if (!isInt(t[i]) || !isInt(t[i + 2]) || (t[i + 2] as number) >= v.origins.length) return 'a reply token names a bad key or origin index';
      if (!isInt(t[i + 3]) || !inBounds(t[i + 3] as number, b) || !isInt(t[i + 4]) || t[i + 4] === 0) return 'a reply token has a bad time or n';
    }
  }
  return undefined;
}

/** The message, or a ProtocolError saying what is wrong with it. `now` is the receiver's clock. */
export function parseMessage(value: unknown, now: number): Message {
  if (!isObject(value)) throw new ProtocolError('frame is not a map');
  const b = timeBounds(now);
  let problem: string | undefined;
  switch (value.type) {
    case 'hello':
      if (!isInt(value.protocol)) problem = 'protocol is not an integer';
      else if (!isNodeId(value.id)) problem = 'id is not a node id';
      else if (!isOrigin(value.origin) || nodeIdOf(value.origin) !== value.id) problem = 'origin is not <id>#<incarnation> of this id';
      else if (!isAddress(value.address)) problem = 'address is not host:port';
      else if (!isBytes(value.nonce, 16, 64)) problem = 'nonce is not 16-64 bytes';
      if (problem === undefined) return value as unknown as Hello;
      break;
    case 'auth':
      if (isBytes(value.proof, 0, 64)) return value as unknown as Auth;
      problem = 'proof is not at most 64 bytes';
      break;
    case 'sync':
      problem = checkSync(value, b);
      if (problem === undefined) return value as unknown as Sync;
      break;
    case 'delta':
      problem = checkDelta(value, b);
      if (problem === undefined) return value as unknown as Delta;
      break;
    case 'flow':
      if (isInt(value.received)) return value as unknown as Flow;
      problem = 'received is not a byte count';
      break;
    case 'held':
      if (isOrigin(value.origin) && isInt(value.seq)) return value as unknown as Held;
      problem = 'not an origin and a seq';
      break;
    case 'read':
      problem = checkRead(value);
      if (problem === undefined) return value as unknown as Read;
      break;
    case 'readReply':
      problem = checkReadReply(value, b);
      if (problem === undefined) return value as unknown as ReadReply;
      break;
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(value.type)}`.slice(0, 120));
  }
  throw new ProtocolError(`malformed ${String(value.type)}: ${problem}`);
}
