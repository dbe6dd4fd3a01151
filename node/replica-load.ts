import { isOrigin } from '../crdt/names.ts';
import { ReplicaState } from '../crdt/replica-state.ts';
import { TOKEN_KEPT } from '../crdt/token-state.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import type { VersionEntry, VersionVector } from '../gossip/messages.ts';
import { AT_META, SEQ_META, VV_META } from './checkpointer.ts';
import { DirtySlots } from './dirty-slots.ts';
import { DirtyTokens } from './dirty-tokens.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { logSeq } from './slot-codec.ts';
import { skippable, type CorruptRecord, type LogRecord, type SkipBefore, type Store } from './store.ts';

export interface Loaded {
  readonly identity: Identity;
  readonly created: boolean;
  readonly state: ReplicaState;
  readonly dirty: DirtySlots;
  readonly dirtyTokens: DirtyTokens;
  readonly slots: number;
  readonly replayed: number;
  readonly seq: number;
  readonly lastAt: number;
  readonly vv: VersionVector;
  /** Records that did not decode and were skipped, and meta entries that were unusable. */
  readonly corrupt: readonly CorruptRecord[];
}

/**
 * Rebuild a replica from its store: every slot, then the log records not yet
 * checkpointed. A record is applied to a slot only if the slot's stored seq
 * is older than the record, so nothing is counted twice whatever point a
 * crash interrupted a checkpoint at. Records that do not decode are skipped
 * and returned in `corrupt` (the store opens whatever it holds); a skipped
 * log record's seq still counts as used, so it is never handed out again.
 * Buckets `skipBefore` says have expired are neither read nor replayed.
 */
export async function loadReplica(store: Store, id: string, now: number, tokenWindowMs: number, topIndex = true, skipBefore?: SkipBefore, hotHorizonMs?: number): Promise<Loaded> {
  const { identity, created } = await loadOrCreateIdentity(store, id, now);
  const origin = identity.origin;
  const corrupt: CorruptRecord[] = [];
  let seq = metaNumber(await store.getMeta(SEQ_META), SEQ_META, corrupt);
  const onCorrupt = (record: CorruptRecord): void => {
    corrupt.push(record);
    if (record.kind !== 'log') return;
    try {
      seq = Math.max(seq, logSeq(record.key));
    } catch {
      // Not even the seq is readable; the records around it bound what was used.
    }
  };
  const records: LogRecord[] = [];
  for await (const record of store.scanLog(onCorrupt)) records.push(record);
  // The stored seq of each own slot the log touches (0: not stored).
  const storedSeq = new Map<string, Map<number, number>>();
  for (const { increments } of records) {
    for (const [key, second] of increments) {
      const slots = storedSeq.get(key) ?? new Map<number, number>();
      for (const tier of ALL_TIERS) slots.set(bucketStart(tier, second) + tier, 0);
      storedSeq.set(key, slots);
    }
  }
  const state = new ReplicaState(tokenWindowMs, { topIndex });
  if (hotHorizonMs !== undefined) {
    // Buckets already past the hot horizon are left in the store (the log replay below reads the few it touches).
    state.attachColdReader((o, key, tier, start) => store.readSlot(o, tier, start, key)?.count ?? 0);
    state.cold.raise(now - hotHorizonMs);
  }
  let slots = 0;
  for await (const chunk of store.scanSlots(onCorrupt, skipBefore)) {
    for (const slot of chunk) {
      if (state.cold.isCold(slot.tier, slot.start)) state.loadCold(slot.origin, slot.key, slot.tier, slot.start, slot.count, slot.seq);
      else state.mergeCount(slot.origin, slot.key, slot.tier, slot.start, slot.count, slot.seq);
      const touched = slot.origin === origin ? storedSeq.get(slot.key) : undefined;
      if (touched?.has(slot.start + slot.tier) === true) touched.set(slot.start + slot.tier, slot.seq);
    }
    slots += chunk.length;
  }
  const dirtyTokens = new DirtyTokens();
  for await (const t of store.scanTokens(onCorrupt)) {
    // Two observations in chunks whose kept record a crash cut off: write it now, before the chunks expire.
    if ((state.observe(t.key, t.token, { origin: t.origin, at: t.at, n: t.n }) & TOKEN_KEPT) !== 0) dirtyTokens.keep(t.key, t.token);
  }
  const dirty = new DirtySlots();
  let lastAt = metaNumber(await store.getMeta(AT_META), AT_META, corrupt);
  const vv = metaVector(await store.getMeta(VV_META), corrupt);
  for (const { seq: recordSeq, increments, tokens } of records) {
    // A token is one observation whatever the slots hold: joining it again changes nothing.
    for (const t of tokens ?? []) {
      const joined = state.observe(t.key, t.token, { origin, at: t.at, n: t.n });
      if (joined === 0) continue;
      dirtyTokens.add(origin, t);
      if ((joined & TOKEN_KEPT) !== 0) dirtyTokens.keep(t.key, t.token);
    }
    for (const [key, second, n] of increments) {
      lastAt = Math.max(lastAt, second);
      for (const tier of ALL_TIERS) {
        const start = bucketStart(tier, second);
        // A skipped slot's stored seq is unknown: its bucket has expired, so it is not replayed either.
        if (skippable(tier, start, skipBefore) || (storedSeq.get(key)?.get(start + tier) ?? 0) >= recordSeq) continue;
        state.add(origin, key, tier, start, n, recordSeq);
        dirty.mark(key, second, recordSeq);
      }
    }
    seq = Math.max(seq, recordSeq);
  }
  // The arrays grew a bucket at a time: give their spare room back (a fifth of the RSS at a million keys).
  state.trim();
  // The own origin's slots from before the last checkpoint carry seqs too: never go below them.
  seq = Math.max(seq, state.summary(origin)?.high ?? 0);
  return { identity, created, state, dirty, dirtyTokens, slots, replayed: records.length, seq, lastAt, vv, corrupt };
}

function metaNumber(text: string | undefined, name: string, corrupt: CorruptRecord[]): number {
  if (text === undefined) return 0;
  const value = Number(text);
  if (/^[0-9]{1,16}$/.test(text) && Number.isSafeInteger(value)) return value;
  corrupt.push({ kind: 'meta', key: name, reason: `not a non-negative integer: ${JSON.stringify(text.slice(0, 60))}` });
  return 0;
}

/** The persisted vector of other origins; entries that are not [seq, at] of a valid origin are dropped (claiming less is safe: peers resend). */
function metaVector(text: string | undefined, corrupt: CorruptRecord[]): VersionVector {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    corrupt.push({ kind: 'meta', key: VV_META, reason: 'not JSON' });
    return {};
  }
  const vv: Record<string, VersionEntry> = {};
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    corrupt.push({ kind: 'meta', key: VV_META, reason: 'not a map' });
    return vv;
  }
  for (const [origin, entry] of Object.entries(parsed)) {
    const ok = isOrigin(origin) && Array.isArray(entry) && entry.length === 2 && entry.every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
    if (ok) vv[origin] = [entry[0] as number, entry[1] as number];
    else corrupt.push({ kind: 'meta', key: `${VV_META}.${origin.slice(0, 100)}`, reason: 'not [seq, at] of an origin' });
  }
  return vv;
}
