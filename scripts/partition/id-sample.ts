/**
 * The hits an experiment sent with an identity: each carried, in the same
 * all-or-nothing batch as its experiment key, a key of its own
 * (`id-<client>-<n>`) that no other hit touches. Each id's count on a node is
 * then the count of that one hit, so a lost acked hit and a counted unknown
 * one are two visible errors instead of netting to zero on their key.
 *
 * Memory and read cost stay bounded: up to `capacity` answered (acked or
 * failed) ids and up to `capacity` unknown ones are kept; past that a seeded
 * uniform sample of each (reservoir sampling), and the check says so.
 */
import type { HitOutcome } from './hit-ledger.ts';

export interface IdHit {
  /** Its identity key. */
  readonly id: string;
  /** The experiment key it hit. */
  readonly key: string;
  /** The node it was sent to. */
  readonly node: string;
  readonly sentAt: number;
  readonly outcome: HitOutcome;
}

class Reservoir {
  readonly kept: IdHit[] = [];
  seen = 0;

  constructor(
    private readonly capacity: number,
    private readonly random: () => number,
  ) {}

  add(hit: IdHit): void {
    this.seen++;
    if (this.kept.length < this.capacity) {
      this.kept.push(hit);
      return;
    }
    const j = Math.floor(this.random() * this.seen);
    if (j < this.capacity) this.kept[j] = hit;
  }
}

export class IdSample {
  private readonly answered: Reservoir;
  private readonly unknown: Reservoir;

  constructor(capacity: number, random: () => number) {
    this.answered = new Reservoir(capacity, random);
    this.unknown = new Reservoir(capacity, random);
  }

  add(hit: IdHit): void {
    (hit.outcome.kind === 'unknown' ? this.unknown : this.answered).add(hit);
  }

  /** Hits sent with an id. */
  get sent(): number {
    return this.answered.seen + this.unknown.seen;
  }

  /** Every id sent is kept: no sample was needed. */
  get complete(): boolean {
    return this.answered.kept.length === this.answered.seen && this.unknown.kept.length === this.unknown.seen;
  }

  /** The ids to check: every unknown one (up to the capacity), then the answered ones. */
  hits(): readonly IdHit[] {
    return [...this.unknown.kept, ...this.answered.kept];
  }
}
