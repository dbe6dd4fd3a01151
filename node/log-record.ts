import type { PendingHits } from './group-commit.ts';

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

/** The increments of a record; throws on anything that is not one, so a corrupt store is never half-read. */
export function* decodeLogRecord(record: string): Generator<[key: string, second: number, n: number]> {
  const parsed: unknown = JSON.parse(record);
  if (!Array.isArray(parsed) || parsed.length % 3 !== 0) throw new Error('corrupt log record');
  const flat: readonly unknown[] = parsed;
  for (let i = 0; i < flat.length; i += 3) {
    const [key, second, n] = [flat[i], flat[i + 1], flat[i + 2]];
    if (typeof key !== 'string' || !Number.isSafeInteger(second) || !Number.isSafeInteger(n)) throw new Error('corrupt log record');
    yield [key, second as number, n as number];
  }
}
