import { TIER_SIZE_MS, Tier } from '../crdt/tiers.ts';
import type { BucketRef } from '../crdt/window-plan.ts';

/** A plan's buckets as runs [tier, start, count] × n (a plan tiles its range with a few runs per tier), for a `read` frame. */
export function toRuns(refs: readonly BucketRef[]): number[] {
  const runs: number[] = [];
  for (const ref of refs) {
    const n = runs.length;
    if (ref.tier === Tier.lifetime) {
      runs.push(Tier.lifetime, 0, 1); // one bucket, never a run
      continue;
    }
    const size = TIER_SIZE_MS[ref.tier];
    if (n > 0 && runs[n - 3] === ref.tier && (runs[n - 2] as number) + (runs[n - 1] as number) * size === ref.start) {
      runs[n - 1] = (runs[n - 1] as number) + 1;
    } else runs.push(ref.tier, ref.start, 1);
  }
  return runs;
}

/** The buckets of runs, in order (the indexes a `readReply` names). */
export function fromRuns(runs: readonly number[]): BucketRef[] {
  const refs: BucketRef[] = [];
  for (let i = 0; i + 2 < runs.length; i += 3) {
    const tier = runs[i] as Tier;
    if (tier === Tier.lifetime) {
      refs.push({ tier, start: 0 });
      continue;
    }
    const size = TIER_SIZE_MS[tier];
    for (let j = 0; j < (runs[i + 2] as number); j++) refs.push({ tier, start: (runs[i + 1] as number) + j * size });
  }
  return refs;
}
