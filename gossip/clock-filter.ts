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

  /**
   * A sample stamped later than this one was taken by this node's clock before
   * it was set back: its offset was measured against a clock that is no more,
   * so it goes (else, with a shorter round trip, it would outvote every fresh
   * sample and keep a node that was set right refusing hits).
   */
  add(sample: ClockSample): void {
    for (let i = this.samples.length - 1; i >= 0; i--) if ((this.samples[i] as ClockSample).at > sample.at) this.samples.splice(i, 1);
    this.samples.push(sample);
    if (this.samples.length > LIMITS.clockSamples) this.samples.shift();
  }

  /**
   * The best sample taken in [since, until], or undefined when there is none.
   * A sample stamped after `until` (now) was taken before this clock was set
   * back: it is not believed (see add).
   */
  best(since = Number.NEGATIVE_INFINITY, until = Number.POSITIVE_INFINITY): ClockSample | undefined {
    let shortest = Number.POSITIVE_INFINITY;
    for (const s of this.samples) if (s.at >= since && s.at <= until) shortest = Math.min(shortest, s.rttMs);
    let best: ClockSample | undefined;
    for (const s of this.samples) if (s.at >= since && s.at <= until && s.rttMs <= shortest + Math.max(2, shortest / 4)) best = s;
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
