import type { WindowPlan } from '../crdt/window-plan.ts';
import type { NodeMetrics } from '../node/metrics.ts';
import type { Replica } from '../node/replica.ts';
import { LIMITS } from '../gossip/limits.ts';
import { STORE_READ_WEIGHT } from '../crdt/cold-buckets.ts';
import { HttpError } from './http-error.ts';

/**
 * The most bucket reads one count request may cost: keys × buckets of its
 * plan. Each key's buckets are read once whatever the number of origins (the
 * state keeps per-key totals over origins), so this is the whole cost. 1,000
 * keys over the longest window there is by default (5 years of day buckets
 * and the hours, minutes and seconds at its ends, about 1,900 buckets) fit.
 * It bounds the work from above: a sum binary-searches each run of the plan
 * in the buckets a key holds and walks only those inside it, so most keys
 * cost far less than their plan's length (a request of 1,000 such keys
 * over the longest window took about 10 ms here, HTTP included), done in
 * slices.
 */
export const MAX_READ_BUCKETS = 2_000_000;
/** Bucket reads between two yields of a long answer: about a quarter of a millisecond, so hits are served in between. */
const YIELD_EVERY_BUCKETS = 10_000;

/** A 400 naming the limit when `keys` keys over `plan` would cost more than the budget (counted in `metrics`). */
export function checkReadBudget(keys: number, plan: WindowPlan, metrics: NodeMetrics): void {
  const work = keys * Math.max(1, plan.buckets.length);
  if (work <= MAX_READ_BUCKETS) return;
  metrics.readsOverBudget.inc();
  throw new HttpError(
    400,
    `this read costs ${keys} keys × ${plan.buckets.length} buckets = ${work} bucket reads, over the limit of ${MAX_READ_BUCKETS} per request: ask for fewer keys at once, or a shorter range`,
  );
}

/** `?read=` asks every member for its slots: a smaller budget, so the answers stay within a frame (gossip/limits.ts). */
export function checkFreshReadBudget(keys: number, plan: WindowPlan): void {
  const work = keys * Math.max(1, plan.buckets.length);
  if (work <= LIMITS.maxReadBuckets) return;
  throw new HttpError(400, `this read=majority|all costs ${keys} keys × ${plan.buckets.length} buckets = ${work}, over the limit of ${LIMITS.maxReadBuckets} for reads gathered from peers: ask for fewer keys at once, or a shorter range`);
}

/** The counts of `keys` over `plan`, yielding to the event loop between keys every so many bucket reads. */
export async function countKeys(replica: Replica, keys: readonly string[], plan: WindowPlan): Promise<Record<string, number>> {
  const counts = Object.create(null) as Record<string, number>; // no prototype: a key may be "__proto__"
  const perKey = Math.max(1, plan.buckets.length);
  let sinceYield = 0;
  for (const key of keys) {
    // A bucket past the hot horizon read from the store costs as much as a couple of hundred read from memory.
    const reads = replica.state.cold.reads;
    counts[key] = replica.count(key, plan);
    sinceYield += perKey + STORE_READ_WEIGHT * (replica.state.cold.reads - reads);
    if (sinceYield >= YIELD_EVERY_BUCKETS) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return counts;
}
