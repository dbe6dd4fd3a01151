import { hitBuckets } from '../../crdt/replica-state.ts';
import { Tier } from '../../crdt/tiers.ts';
import { mulberry32 } from '../../gossip/random.ts';
import type { Slot } from '../../crdt/slot.ts';
import { loadOrCreateIdentity } from '../../node/identity.ts';
import { LevelStore } from '../../node/level-store.ts';

/**
 * Write history straight into a node's data directory: `keys` keys, each hit
 * `hitsPerKey` times at random instants in the last `spanMs`. Hits are stamped
 * with the node's clock, so the past cannot be sent over HTTP; this writes the
 * slots the node would have written, under its own identity, so the node then
 * starts on that directory as if it had lived through it.
 */
export async function seedHistory(
  dir: string,
  id: string,
  options: { keys: number; hitsPerKey: number | ((key: number) => number); spanMs: number; now: number; seed: number; secondsWithinMs?: number },
): Promise<{ slots: number; hits: number }> {
  const random = mulberry32(options.seed);
  const store = new LevelStore(dir);
  await store.open();
  const { identity } = await loadOrCreateIdentity(store, id, options.now);
  let slots = 0;
  let hits = 0;
  let batch: Slot[] = [];
  const hitsOf = typeof options.hitsPerKey === 'number' ? () => options.hitsPerKey as number : options.hitsPerKey;
  for (let k = 0; k < options.keys; k++) {
    const counts = new Map<string, { tier: Slot['tier']; start: number; count: number }>();
    const n = hitsOf(k);
    hits += n;
    for (let h = 0; h < n; h++) {
      const t = options.now - Math.floor(random() * options.spanMs);
      for (const ref of hitBuckets(t)) {
        // Seconds the 1 s tier no longer keeps would only be loaded to be dropped.
        if (ref.tier === Tier.second && options.secondsWithinMs !== undefined && t < options.now - options.secondsWithinMs) continue;
        const id = `${ref.tier}:${ref.start}`;
        const slot = counts.get(id) ?? { ...ref, count: 0 };
        slot.count++;
        counts.set(id, slot);
      }
    }
    for (const slot of counts.values()) batch.push({ origin: identity.origin, key: `k${k}`, ...slot, seq: 1 });
    if (batch.length >= 20_000) {
      await store.commit({ slots: batch, meta: new Map() });
      slots += batch.length;
      batch = [];
    }
  }
  await store.commit({ slots: batch, meta: new Map([['seq', '1']]) });
  slots += batch.length;
  await store.close();
  return { slots, hits };
}
