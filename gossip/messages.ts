/**
 * The gossip wire grammar: a union keyed on `type`, one guard per message.
 * Frames are msgpack; decode yields `unknown` and nothing is trusted until
 * `parseMessage` accepts it. See PROTOCOL.md.
 */
export const PROTOCOL_VERSION = 1;

/** Per origin: the highest seq held completely and the time of that origin's last hit up to it. */
export type VersionVector = Record<string, VersionEntry>;
export type VersionEntry = readonly [seq: number, at: number];

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

/** Periodic: my version vector, the members I know, and a clock sample. Also the heartbeat. */
export interface Sync {
  readonly type: 'sync';
  readonly vv: VersionVector;
  /** id → address of every member I know (myself included). */
  readonly members: Record<string, string>;
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
 * Rows are flat: hit rows [key, second, s, m, h, d, lifetime] give all five
 * tiers of one (key, second); slot rows [key, tier, start, count] one slot.
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
}

/** Optional: some of my vector entries ahead of the next sync (a node may send it; the core only listens). */
export interface Ack {
  readonly type: 'ack';
  readonly vv: VersionVector;
}

export type Message = Hello | Auth | Sync | Delta | Ack;

export class ProtocolError extends Error {
  readonly code = 'HITMESH_PROTOCOL';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isString = (v: unknown, max = 512): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isBytes = (v: unknown, max: number): v is Uint8Array => v instanceof Uint8Array && v.length <= max;

function isVersionVector(v: unknown): v is VersionVector {
  if (!isObject(v)) return false;
  for (const entry of Object.values(v)) {
    if (!Array.isArray(entry) || entry.length !== 2 || !isInt(entry[0]) || !isInt(entry[1])) return false;
  }
  return Object.keys(v).length <= 10_000;
}

function isFlatRows(v: unknown, width: number, numbersFrom: number): v is (string | number)[] {
  if (!Array.isArray(v) || v.length % width !== 0) return false;
  for (let i = 0; i < v.length; i += width) {
    if (!isString(v[i], 1024)) return false;
    for (let j = numbersFrom; j < width; j++) if (!isInt(v[i + j])) return false;
  }
  return true;
}

/** The message, or a ProtocolError saying what is wrong with it. */
export function parseMessage(value: unknown): Message {
  if (!isObject(value)) throw new ProtocolError('frame is not a map');
  switch (value.type) {
    case 'hello':
      if (isInt(value.protocol) && isString(value.id, 64) && isString(value.origin, 128) && isString(value.address, 300) && isBytes(value.nonce, 64) && value.nonce.length >= 16) {
        return value as unknown as Hello;
      }
      break;
    case 'auth':
      if (isBytes(value.proof, 64)) return value as unknown as Auth;
      break;
    case 'sync':
      if (
        isVersionVector(value.vv) &&
        isObject(value.members) &&
        Object.keys(value.members).length <= 10_000 &&
        Object.entries(value.members).every(([id, a]) => isString(id, 64) && isString(a, 300)) &&
        Array.isArray(value.links) &&
        value.links.length <= 10_000 &&
        value.links.every((id) => isString(id, 64)) &&
        isInt(value.sent) &&
        isInt(value.echo) &&
        isInt(value.held)
      ) {
        return value as unknown as Sync;
      }
      break;
    case 'delta':
      if (
        isString(value.origin, 128) &&
        (value.from === null || isInt(value.from)) &&
        isInt(value.to) &&
        isInt(value.at) &&
        isInt(value.base) &&
        isFlatRows(value.hits, 7, 1) &&
        isFlatRows(value.slots, 4, 1)
      ) {
        return value as unknown as Delta;
      }
      break;
    case 'ack':
      if (isVersionVector(value.vv)) return value as unknown as Ack;
      break;
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(value.type)}`);
  }
  throw new ProtocolError(`malformed ${String(value.type)} message`);
}
