/** Durations as people write them: `500ms`, `30s`, `5m`, `1h`, `7d` (and `1y` = 365 d where allowed). */
const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  y: 365 * 86_400_000,
};

/** Longest duration accepted anywhere: a century, far past any retention, far below float precision limits. */
export const MAX_DURATION_MS = 36_500 * 86_400_000;

const DURATION = /^([0-9]{1,12})(ms|s|m|h|d|y)$/;

/** Milliseconds, or undefined when `text` is not a duration. Years only with `allowYears`. */
export function parseDuration(text: string, allowYears = false): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  const unit = match[2] as string;
  if (unit === 'y' && !allowYears) return undefined;
  const ms = Number(match[1]) * (UNIT_MS[unit] as number);
  return ms <= MAX_DURATION_MS ? ms : undefined;
}

/** The shortest exact rendering of `ms`, for help texts and answers. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
