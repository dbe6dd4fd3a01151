import { keyProblem } from '../crdt/key.ts';
import type { PendingHits } from './group-commit.ts';
import { MAX_START, logSeq, quote } from './slot-codec.ts';
import { CorruptRecordError, shorten, type LogIncrement, type LogRecord } from './store.ts';

/**
 * A write-ahead log record: the increments of one local batch, as a flat JSON
 * array of (key, second bucket start, n) triples. One small record per batch
 * is what makes the hit path cheap; checkpoints turn records into slots.
 */
export function encodeLogRecord(pending: PendingHits): string {
  const flat: (string | number)[] = [];
  for (const [second, keys] of pending.bySecond) {
    for (const [key, n] of keys) flat.push(key, second, n);
  }
  return JSON.stringify(flat);
}

/**
 * The increments of a record, all of them or none: throws CorruptRecordError
 * saying what is wrong, before anything is applied, so a bad record is
 * skipped whole and never half-replayed.
 */
export function decodeLogRecord(record: string): LogIncrement[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(record);
  } catch {
    throw new CorruptRecordError(`log record ${quote(record)} is not JSON`);
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
  return increments;
}

/** A raw log entry as a scan yields it; throws CorruptRecordError for a bad key or record. */
export function decodeLogEntry(dbKey: string, dbValue: string): LogRecord {
  return { seq: logSeq(dbKey), increments: decodeLogRecord(dbValue) };
}
