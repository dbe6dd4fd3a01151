import { TIMED_TIERS, TIER_SIZE_MS, Tier, coarserTier, floorTo, type TimedTier } from './tiers.ts';

/** How long each timed tier keeps its buckets, in ms. The lifetime tier is kept forever. */
export type Retention = Readonly<Record<TimedTier, number>>;

export const DEFAULT_RETENTION: Retention = {
  [Tier.second]: 2 * 3_600_000,
  [Tier.minute]: 48 * 3_600_000,
  [Tier.hour]: 90 * 86_400_000,
  [Tier.day]: 5 * 365 * 86_400_000,
};

/**
 * Why a retention is unusable, or undefined when it is fine. Coarser tiers must
 * keep at least as long as finer ones, so that whatever a fine tier has
 * dropped, a coarser one still answers.
 */
export function retentionProblem(retention: Retention): string | undefined {
  let previous = 0;
  for (const tier of TIMED_TIERS) {
    const keep = retention[tier];
    if (!Number.isSafeInteger(keep) || keep < TIER_SIZE_MS[tier]) {
      return `the ${tierLabel(tier)} tier must keep at least one bucket (${TIER_SIZE_MS[tier]} ms)`;
    }
    if (keep % 1_000 !== 0) return `the ${tierLabel(tier)} tier's retention must be whole seconds`;
    if (keep < previous) return `the ${tierLabel(tier)} tier must keep at least as long as the finer tiers`;
    previous = keep;
  }
  return undefined;
}

/**
 * The start of the oldest bucket of `tier` still held at `now`. It is aligned
 * to the next coarser tier's buckets, so a coarser bucket is either wholly
 * covered by the finer tier or not at all: that is what lets the window planner
 * mix tiers and stay exact. Buckets that start earlier are expired.
 */
export function horizon(tier: TimedTier, now: number, retention: Retention): number {
  const coarser = coarserTier(tier);
  return floorTo(now - retention[tier], TIER_SIZE_MS[coarser ?? tier]);
}

export function isRetained(tier: Tier, start: number, now: number, retention: Retention): boolean {
  if (tier === Tier.lifetime) return true;
  return start >= horizon(tier, now, retention);
}

function tierLabel(tier: TimedTier): string {
  return `1${['s', 'm', 'h', 'd'][tier]}`;
}
