import type { TokenChange } from '../gossip/replica-view.ts';
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
  /** Origins and changes side by side: no object per token on the hit path. */
  private origins: string[] = [];
  private changes: TokenChange[] = [];
  private kept = new Map<string, { key: string; token: string }>();

  get size(): number {
    return this.changes.length + this.kept.size;
  }

  add(origin: string, change: TokenChange): void {
    this.origins.push(origin);
    this.changes.push(change);
  }

  /** `token` on `key` has (more) duplicates: write all its observations to its record kept for good. */
  keep(key: string, token: string): void {
    this.kept.set(tokenId(key, token), { key, token });
  }

  /** Everything marked, leaving it empty. */
  take(): { tokens: StoredToken[]; kept: { key: string; token: string }[] } {
    const tokens: StoredToken[] = this.changes.map((change, i) => ({ origin: this.origins[i] as string, ...change }));
    const taken = { tokens, kept: [...this.kept.values()] };
    this.origins = [];
    this.changes = [];
    this.kept = new Map();
    return taken;
  }

  /** Put back what a failed checkpoint took. */
  restore(taken: { tokens: readonly StoredToken[]; kept: readonly { key: string; token: string }[] }): void {
    this.origins = [...taken.tokens.map((t) => t.origin), ...this.origins];
    this.changes = [...taken.tokens, ...this.changes];
    for (const k of taken.kept) this.keep(k.key, k.token);
  }
}
