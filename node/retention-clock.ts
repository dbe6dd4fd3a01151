import type { Clock } from './clock.ts';

/**
 * The time retention deletes by. Deleting is the one thing a wrong clock
 * cannot undo (peers never resend what a node claims to hold), so it goes by
 * the wall clock only as fast as the monotonic clock has run since the wall
 * clock was last believed: at start-up, and whenever peers confirm it (the
 * clock guard finds it within --max-clock-skew). A clock that jumps ahead
 * deletes nothing early; while peers say it is off, nothing is deleted at all.
 * A node whose clock was behind and is set right deletes late, until its
 * peers confirm the clock or it restarts: late is safe.
 */
export class RetentionClock implements Clock {
  private anchorWall = 0;
  private anchorMono = 0;
  private distrusted = false;

  constructor(private readonly clock: Clock) {
    this.trust();
  }

  now(): number {
    const wall = this.clock.now();
    const mono = this.clock.monotonic?.() ?? wall;
    return Math.min(wall, this.anchorWall + (mono - this.anchorMono));
  }

  /** Peers agree with the wall clock: believe it from here on. */
  trust(): void {
    this.anchorWall = this.clock.now();
    this.anchorMono = this.clock.monotonic?.() ?? this.anchorWall;
    this.distrusted = false;
  }

  /** Peers say the wall clock is off: delete nothing until they agree again. */
  distrust(): void {
    this.distrusted = true;
  }

  get paused(): boolean {
    return this.distrusted;
  }
}
