import type { StoredToken } from './store.ts';

/**
 * Token observations joined since the last checkpoint, own and remote, in
 * the order they came. An observation never changes once made, so each is
 * written once; the list is as long as what arrived in one checkpoint
 * interval (a repair of a million tokens marks a million, as it does slots).
 */
export class DirtyTokens {
  private list: StoredToken[] = [];

  get size(): number {
    return this.list.length;
  }

  add(token: StoredToken): void {
    this.list.push(token);
  }

  /** Everything marked, leaving it empty. */
  take(): StoredToken[] {
    const taken = this.list;
    this.list = [];
    return taken;
  }

  /** Put back what a failed checkpoint took. */
  restore(taken: readonly StoredToken[]): void {
    this.list = [...taken, ...this.list];
  }
}
