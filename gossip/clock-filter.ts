import { LIMITS } from './limits.ts';

/** One NTP-style sample of a peer's clock: its offset from ours and the round trip it was measured over. */
export interface ClockSample {
  readonly offsetMs: number;
  readonly rttMs: number;
  readonly at: number;
}

/**
 * The last few clock samples of one peer. The one with the shortest round
 * trip is believed (NTP's clock filter): a sample's error is at most half its
 * round trip, and a GC pause or a queue on the link only ever lengthens it.
 * Among samples about as short (within 2 ms or a quarter), the newest wins:
 * on a LAN round trips tie, and the oldest would hide a clock step for as
 * long as it stays in the window.
 */
export class ClockFilter {
  private readonly samples: ClockSample[] = [];

  add(sample: ClockSample): void {
    this.samples.push(sample);
    if (this.samples.length > LIMITS.clockSamples) this.samples.shift();
  }

  /** The best recent sample, or undefined when none is newer than `since`. */
  best(since = Number.NEGATIVE_INFINITY): ClockSample | undefined {
    let shortest = Number.POSITIVE_INFINITY;
    for (const s of this.samples) if (s.at >= since) shortest = Math.min(shortest, s.rttMs);
    let best: ClockSample | undefined;
    for (const s of this.samples) if (s.at >= since && s.rttMs <= shortest + Math.max(2, shortest / 4)) best = s;
    return best;
  }

  clear(): void {
    this.samples.length = 0;
  }
}

/**
 * Is this node's clock off? It is when, of the peers with a recent sample,
 * more than half are further off than `maxSkewMs` even allowing for each
 * sample's error (half its round trip). With one peer, a skew between the
 * two stops both: two clocks cannot outvote each other (README).
 */
export function clockVerdict(samples: readonly ClockSample[], maxSkewMs: number): { judged: number; off: number; skewed: boolean } {
  let off = 0;
  for (const s of samples) if (Math.abs(s.offsetMs) - s.rttMs / 2 > maxSkewMs) off++;
  return { judged: samples.length, off, skewed: samples.length > 0 && off * 2 > samples.length };
}
