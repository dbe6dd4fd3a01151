/** Reading counts of many keys from one node, for the timeline and the final check. */

/** Keys per request, under the API's limit of 1,000 (a long soak checks a marker key per sample). */
const KEYS_PER_REQUEST = 500;

/** GET /counts for `keys`, lifetime or over [fromMs, toMs) epoch ms; undefined if the node does not answer in time. */
export async function readCounts(url: string, keys: readonly string[], range?: { fromMs: number; toMs: number }, timeoutMs = 2_000): Promise<Map<string, number> | undefined> {
  // No keys, no request: the API refuses an empty key list.
  if (keys.length === 0) return new Map();
  if (keys.length <= KEYS_PER_REQUEST) return readChunk(url, keys, range, timeoutMs);
  const merged = new Map<string, number>();
  for (let i = 0; i < keys.length; i += KEYS_PER_REQUEST) {
    const part = await readChunk(url, keys.slice(i, i + KEYS_PER_REQUEST), range, timeoutMs);
    if (part === undefined) return undefined;
    for (const [key, count] of part) merged.set(key, count);
  }
  return merged;
}

async function readChunk(url: string, keys: readonly string[], range: { fromMs: number; toMs: number } | undefined, timeoutMs: number): Promise<Map<string, number> | undefined> {
  const scope = range === undefined ? 'window=all' : `from=${range.fromMs}&to=${range.toMs}`;
  try {
    const res = await fetch(`${url}/counts?keys=${keys.map(encodeURIComponent).join(',')}&${scope}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.arrayBuffer();
      return undefined;
    }
    const body = (await res.json()) as { counts?: Record<string, number> };
    return new Map(Object.entries(body.counts ?? {}));
  } catch {
    return undefined;
  }
}

export function sumCounts(counts: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const count of counts.values()) sum += count;
  return sum;
}

/** Whether every node answered and all answers agree key by key. */
export function allAgree(answers: readonly (ReadonlyMap<string, number> | undefined)[], keys: readonly string[]): boolean {
  const [first, ...rest] = answers;
  if (first === undefined) return false;
  for (const answer of rest) {
    if (answer === undefined) return false;
    for (const key of keys) if (answer.get(key) !== first.get(key)) return false;
  }
  return true;
}
