/** The node's wall clock, injectable so tests can move time. */
export interface Clock {
  now(): number;
  /**
   * A clock that never jumps (ms, any origin): what bounds how fast the wall
   * clock may be believed to move (retention). Defaults to the wall clock.
   */
  monotonic?(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** A clock tests set by hand. Its monotonic time moves with it unless `jump` moves the wall clock alone. */
export class ManualClock implements Clock {
  private mono = 0;

  constructor(private t: number) {}

  now(): number {
    return this.t;
  }

  monotonic(): number {
    return this.mono;
  }

  set(t: number): void {
    this.mono += Math.max(0, t - this.t);
    this.t = t;
  }

  advance(ms: number): void {
    this.t += ms;
    this.mono += ms;
  }

  /** Move the wall clock only, as a bad NTP step or an operator does. */
  jump(ms: number): void {
    this.t += ms;
  }
}
