import { LRUCache } from 'lru-cache';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ColdReader } from '../crdt/cold-buckets.ts';
import type { Slot } from '../crdt/slot.ts';
import type { Tier } from '../crdt/tiers.ts';
import { ReplicaUnavailableError } from '../gossip/replica-view.ts';
import type { Logger } from './logger.ts';
import { slotKey } from './slot-codec.ts';
import type { Store } from './store.ts';

/** Cold bucket counts cached by default: about 100 B each (the slot's db key and the cache's own arrays), so about 10 MB: estimated, not measured. */
export const DEFAULT_COLD_CACHE_ENTRIES = 100_000;

/** A cold bucket could not be read (the store is closed or failing): the read cannot be exact, so it is refused. */
export class ColdReadError extends ReplicaUnavailableError {
  override readonly code = 'HITMESH_COLD_READ';
}

/**
 * Buckets past the hot horizon as the in-memory state reads them: point reads
 * of the store (synchronous: see Store.readSlot) through a bounded LRU cache
 * of counts. At the limit the least recently read entry goes. Absent buckets
 * are not cached: a 30-day window of a key hit three times plans about 75
 * buckets and finds 3, and caching the 72 zeros of a million such keys
 * churned the cache so fast that its entries died in V8's old generation,
 * whose collections over the node's 400 MB heap took a 30-day count's p99
 * from 3 to 15 ms (measured: 1,000,000 keys, one connection). LevelDB's own
 * block cache and the OS page cache serve those reads in microseconds, and
 * ReplicaState remembers each key's cold sum per window (ColdPart).
 *
 * The cache must never hold less than the store: a checkpoint that writes a
 * cold slot passes it to `written`, which drops its entry. Nothing else writes
 * a cold slot (hits land in hot buckets; merges into cold ones are held in
 * memory, which reads prefer, until a checkpoint writes them), and retention
 * deletes only buckets no plan reads.
 */
export class ColdSlots {
  private readonly cache: LRUCache<string, number>;
  private hits = 0;
  private misses = 0;
  private corrupt = 0;

  constructor(
    private readonly store: Store,
    maxEntries: number,
    private readonly logger: Logger,
    registry?: Registry,
  ) {
    this.cache = new LRUCache({ max: Math.max(1, maxEntries) });
    if (registry !== undefined) this.register(registry);
  }

  /** The reader the state calls (ReplicaState.attachColdReader). */
  readonly read: ColdReader = (origin, key, tier, start) => {
    const dbKey = slotKey(origin, tier, start, key);
    const cached = this.cache.get(dbKey);
    if (cached !== undefined) {
      this.hits++;
      return cached;
    }
    this.misses++;
    let count: number;
    try {
      count = this.store.readSlot(origin, tier, start, key, (record) => {
        this.corrupt++;
        this.logger.warn({ record }, 'a stored cold bucket does not decode; read as 0');
      })?.count ?? 0;
    } catch (error) {
      throw new ColdReadError(`a bucket past the hot horizon could not be read from the store: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (count > 0) this.cache.set(dbKey, count);
    return count;
  };

  /** Slots a checkpoint wrote: their cached counts are stale. `cold` says which buckets are cold (only those are cached). */
  written(slots: readonly Slot[], cold: (tier: Tier, start: number) => boolean): void {
    if (this.cache.size === 0) return;
    for (const slot of slots) if (cold(slot.tier, slot.start)) this.cache.delete(slotKey(slot.origin, slot.tier, slot.start, slot.key));
  }

  /** Reads served by the cache, and by the store. */
  get stats(): { readonly hits: number; readonly misses: number; readonly entries: number; readonly corrupt: number } {
    return { hits: this.hits, misses: this.misses, entries: this.cache.size, corrupt: this.corrupt };
  }

  private register(registry: Registry): void {
    const stats = (): ReturnType<() => ColdSlots['stats']> => this.stats;
    new Counter({
      name: 'hitmesh_cold_reads_total',
      help: 'Reads of buckets past the hot horizon, by where they were served from (cache or store).',
      labelNames: ['from'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ from: 'cache' }, stats().hits);
        this.inc({ from: 'store' }, stats().misses);
      },
    });
    new Gauge({
      name: 'hitmesh_cold_cache_hit_ratio',
      help: 'Share of the reads of buckets past the hot horizon the cache served, since start (0 before any).',
      registers: [registry],
      collect() {
        const { hits, misses } = stats();
        this.set(hits + misses === 0 ? 0 : hits / (hits + misses));
      },
    });
    new Gauge({
      name: 'hitmesh_cold_cache_entries',
      help: 'Cold bucket counts cached (the limit is --cold-cache).',
      registers: [registry],
      collect() {
        this.set(stats().entries);
      },
    });
  }
}
