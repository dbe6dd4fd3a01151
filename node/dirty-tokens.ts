import { tokenId } from './group-commit.ts';
import type { StoredToken } from './store.ts';

/**
 * Token observations joined since the last checkpoint, own and remote, in
 * the order they came, and the tokens that proved a duplicate since (their
 * records of their own are written again whole). An observation never
 * changes once made, so each is written once; the list is as long as what
 * arrived in one checkpoint interval (a repair of a million tokens marks a
 * million, as it does slots).
 */
export class DirtyTokens {
  private list: StoredToken[] = [];
  private kept = new Map<string, { key: string; token: string }>();

  get size(): number {
    return this.list.length + this.kept.size;
  }

  add(token: StoredToken): void {
    this.list.push(token);
  }

  /** `token` on `key` has (more) duplicates: write all its observations to its record kept for good. */
  keep(key: string, token: string): void {
    this.kept.set(tokenId(key, token), { key, token });
  }

  /** Everything marked, leaving it empty. */
  take(): { tokens: StoredToken[]; kept: { key: string; token: string }[] } {
    const taken = { tokens: this.list, kept: [...this.kept.values()] };
    this.list = [];
    this.kept = new Map();
    return taken;
  }

  /** Put back what a failed checkpoint took. */
  restore(taken: { tokens: readonly StoredToken[]; kept: readonly { key: string; token: string }[] }): void {
    this.list = [...taken.tokens, ...this.list];
    for (const k of taken.kept) this.keep(k.key, k.token);
  }
}
