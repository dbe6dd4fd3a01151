import { keyProblem } from '../crdt/key.ts';
import { tokenProblem } from '../crdt/key-tokens.ts';
import { EARLIEST_MS } from '../crdt/key-buckets.ts';
import type { TokenChange } from '../gossip/replica-view.ts';
import type { PendingHits } from './group-commit.ts';
import { MAX_START, logSeq, quote } from './slot-codec.ts';
import { CorruptRecordError, shorten, type LogIncrement, type LogRecord } from './store.ts';

/**
 * A write-ahead log record: the increments of one local batch, as a flat JSON
 * array of (key, second bucket start, n) triples. One small record per batch
 * is what makes the hit path cheap; checkpoints turn records into slots. A
 * batch that observed idempotency tokens is an object instead:
 * {"h": the triples, "t": [key, token, at, n] × k}.
 */
export function encodeLogRecord(pending: PendingHits): string {
  const flat: (string | number)[] = [];
  for (const [second, keys] of pending.bySecond) {
    for (const [key, n] of keys) flat.push(key, second, n);
  }
  if (pending.tokenCount === 0) return JSON.stringify(flat);
  const tokens: (string | number)[] = [];
  for (const t of pending.tokens()) tokens.push(t.key, t.token, t.at, t.n);
  return JSON.stringify({ h: flat, t: tokens });
}

/**
 * The increments of a record, all of them or none: throws CorruptRecordError
 * saying what is wrong, before anything is applied, so a bad record is
 * skipped whole and never half-replayed.
 */
export function decodeLogRecord(record: string): LogIncrement[] {
  return parseLogRecord(record).increments;
}

function parseLogRecord(record: string): { increments: LogIncrement[]; tokens: TokenChange[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(record);
  } catch {
    throw new CorruptRecordError(`log record ${quote(record)} is not JSON`);
  }
  let tokens: TokenChange[] = [];
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    const { h, t } = parsed as { h?: unknown; t?: unknown };
    if (Object.keys(parsed).length !== 2 || !Array.isArray(t)) throw new CorruptRecordError(`log record ${quote(record)} is not a flat array of (key, second, n) triples, nor {"h": such an array, "t": tokens}`);
    tokens = decodeTokens(t, record);
    parsed = h;
  }
  if (!Array.isArray(parsed) || parsed.length % 3 !== 0) throw new CorruptRecordError(`log record ${quote(record)} is not a flat array of (key, second, n) triples`);
  const flat: readonly unknown[] = parsed;
  const increments: LogIncrement[] = [];
  for (let i = 0; i < flat.length; i += 3) {
    const [key, second, n] = [flat[i], flat[i + 1], flat[i + 2]];
    if (typeof key !== 'string') throw new CorruptRecordError(`log record triple ${i / 3}: the key is not a string`);
    const problem = keyProblem(key);
    if (problem !== undefined) throw new CorruptRecordError(`log record triple ${i / 3}: key ${quote(key)}: ${problem}`);
    if (typeof second !== 'number' || !Number.isSafeInteger(second) || second < 0 || second >= MAX_START || second % 1_000 !== 0) {
      throw new CorruptRecordError(`log record triple ${i / 3}: second ${shorten(JSON.stringify(second), 60)} is not a second bucket start in [0, 10^13)`);
    }
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new CorruptRecordError(`log record triple ${i / 3}: n ${shorten(JSON.stringify(n), 60)} is not a safe integer ≥ 1`);
    increments.push([key, second, n]);
  }
  return { increments, tokens };
}

function decodeTokens(flat: readonly unknown[], record: string): TokenChange[] {
  if (flat.length % 4 !== 0) throw new CorruptRecordError(`log record ${quote(record)}: tokens are not (key, token, at, n) rows`);
  const tokens: TokenChange[] = [];
  for (let i = 0; i < flat.length; i += 4) {
    const [key, token, at, n] = [flat[i], flat[i + 1], flat[i + 2], flat[i + 3]];
    const problem = typeof key !== 'string' ? 'the key is not a string' : (keyProblem(key) ?? (typeof token !== 'string' ? 'the token is not a string' : tokenProblem(token)));
    if (problem !== undefined) throw new CorruptRecordError(`log record token ${i / 4}: ${problem}`);
    if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < EARLIEST_MS || at >= MAX_START) throw new CorruptRecordError(`log record token ${i / 4}: at is not a time in range`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new CorruptRecordError(`log record token ${i / 4}: n is not a safe integer ≥ 1`);
    tokens.push({ key: key as string, token: token as string, at, n });
  }
  return tokens;
}

/** A raw log entry as a scan yields it; throws CorruptRecordError for a bad key or record. */
export function decodeLogEntry(dbKey: string, dbValue: string): LogRecord {
  const seq = logSeq(dbKey);
  const { increments, tokens } = parseLogRecord(dbValue);
  return tokens.length === 0 ? { seq, increments } : { seq, increments, tokens };
}
