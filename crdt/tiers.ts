/**
 * The time tiers every hit is counted in, and their bucket math. Buckets are
 * aligned to the Unix epoch (UTC), so every node cuts time the same way and a
 * coarse bucket is exactly the sum of the finer buckets inside it.
 */
export const Tier = { second: 0, minute: 1, hour: 2, day: 3, lifetime: 4 } as const;
export type Tier = (typeof Tier)[keyof typeof Tier];

/** The tiers with bounded buckets, finest first. */
export type TimedTier = Exclude<Tier, typeof Tier.lifetime>;
export const TIMED_TIERS: readonly TimedTier[] = [Tier.second, Tier.minute, Tier.hour, Tier.day];
export const ALL_TIERS: readonly Tier[] = [...TIMED_TIERS, Tier.lifetime];

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export const TIER_SIZE_MS: Readonly<Record<TimedTier, number>> = {
  [Tier.second]: SECOND_MS,
  [Tier.minute]: MINUTE_MS,
  [Tier.hour]: HOUR_MS,
  [Tier.day]: DAY_MS,
};

export const TIER_NAMES: Readonly<Record<Tier, string>> = {
  [Tier.second]: 'second',
  [Tier.minute]: 'minute',
  [Tier.hour]: 'hour',
  [Tier.day]: 'day',
  [Tier.lifetime]: 'lifetime',
};

export function isTier(value: unknown): value is Tier {
  return value === 0 || value === 1 || value === 2 || value === 3 || value === 4;
}

/** Start (epoch ms) of the bucket of `tier` that holds instant `t`. The lifetime tier has one bucket, 0. */
export function bucketStart(tier: Tier, t: number): number {
  if (tier === Tier.lifetime) return 0;
  const size = TIER_SIZE_MS[tier];
  return Math.floor(t / size) * size;
}

export function floorTo(t: number, sizeMs: number): number {
  return Math.floor(t / sizeMs) * sizeMs;
}

export function ceilTo(t: number, sizeMs: number): number {
  return Math.ceil(t / sizeMs) * sizeMs;
}

/** The next coarser timed tier, or undefined for the day tier. */
export function coarserTier(tier: TimedTier): TimedTier | undefined {
  return TIMED_TIERS[TIMED_TIERS.indexOf(tier) + 1];
}
