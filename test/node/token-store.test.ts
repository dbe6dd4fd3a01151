/**
 * Idempotency tokens in the store, on real LevelDB files: a token counted
 * survives a reopen whether it was still in the write-ahead log or already
 * checkpointed; a peer's token is made durable with the checkpoint; expired
 * tokens are deleted from disk; a token record the store did not write is
 * skipped and reported, and the store still opens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { ManualClock } from '../../node/clock.ts';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { openReplica, peerTakes } from './token-helpers.ts';
import { decodeKeptToken, decodeTokenChunk } from '../../node/token-codec.ts';
import type { CorruptRecord, StoredToken } from '../../node/store.ts';
import { TokenConflictError } from '../../node/token-plan.ts';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempStore(): Promise<LevelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-tokens-'));
  dirs.push(dir);
  return new LevelStore(dir);
}


async function tokensOf(store: LevelStore | MemoryStore): Promise<StoredToken[]> {
  const out: StoredToken[] = [];
  if (!store.isOpen) await store.open();
  for await (const t of store.scanTokens()) out.push(t);
  return out;
}

describe('idempotency tokens in the store', () => {
  it('a token counted once stays counted once across reopens, from the log and from a checkpoint', async () => {
    const clock = new ManualClock(T0);
    const disk = await tempStore();
    let replica = await openReplica(disk, clock);
    expect((await replica.hitOnce('k', 2, 'req-1')).value.duplicate).toBe(false);
    expect((await replica.hitOnce('k', 2, 'req-1')).value.duplicate).toBe(true);
    // Closed without a checkpoint: only the log holds the token (a crash right after the 200).
    await disk.close();
    replica = await openReplica(new LevelStore(disk.location), clock);
    expect((await replica.hitOnce('k', 2, 'req-1')).value.duplicate).toBe(true);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(2);
    await expect(replica.hitOnce('k', 3, 'req-1')).rejects.toBeInstanceOf(TokenConflictError);
    await replica.checkpoint();
    await replica.close();
    const store = new LevelStore(disk.location);
    expect((await tokensOf(store)).map((t) => [t.key, t.token, t.n])).toEqual([['k', 'req-1', 2]]);
    await store.close();
    replica = await openReplica(new LevelStore(disk.location), clock);
    expect((await replica.hitOnce('k', 2, 'req-1')).value.duplicate).toBe(true);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(2);
    await replica.close();
  });

  it('a peer\'s token is written with the checkpoint; the duplicates it proves count once after a reopen', async () => {
    const clock = new ManualClock(T0);
    const disk = await tempStore();
    let replica = await openReplica(disk, clock);
    await replica.hitOnce('k', 1, 'both-sides');
    const at = T0 + 5_000;
    // The other side of a partition took the same token later: its hit and its observation arrive by gossip.
    peerTakes(replica, 'n2#bb', 'k', 'both-sides', at, true);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(1);
    await replica.close();
    replica = await openReplica(new LevelStore(disk.location), clock);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(1);
    expect(replica.state.tokens.first('k', 'both-sides')?.origin).toBe(replica.identity.origin);
    await replica.close();
  });

  it('deletes expired tokens from disk, and keeps one that proves a duplicate while coarser tiers need it', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore();
    const replica = await openReplica(store, clock);
    await replica.hitOnce('k', 1, 'lone');
    await replica.hitOnce('k', 1, 'twice');
    peerTakes(replica, 'n2#bb', 'k', 'twice', T0 + 2_000);
    await replica.checkpoint();
    // Three observations in a chunk, and the token that proved a duplicate in a record of its own.
    expect((await tokensOf(store)).length).toBe(5);
    clock.advance(DEFAULT_RETENTION[0] + 3 * 3_600_000);
    await replica.expire();
    expect((await tokensOf(store)).map((t) => `${t.token}@${t.origin.split('#')[0] ?? ''}`).sort()).toEqual(['twice@n1', 'twice@n2']);
    expect(replica.state.tokens.first('k', 'lone')).toBeUndefined();
    expect(replica.count('k', LIFETIME_PLAN)).toBe(2);
    await replica.close();
  });

  it('skips and reports a token record the store did not write, and still opens', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore();
    const replica = await openReplica(store, clock);
    await replica.hitOnce('k', 1, 'good');
    await replica.checkpoint();
    await replica.close();
    const origin = replica.identity.origin;
    const id = '0123456789abcdef-1';
    const chunk = (rows: unknown[], latest = T0): [string, string] => [`t\u0000${String(latest).padStart(13, '0')}\u0000${id}`, JSON.stringify(rows)];
    const bad: [string, string][] = [
      chunk([origin, 'k', 'tab\there', T0, 1]),
      chunk([origin, 'k', 'zero', T0, 0], T0 + 1),
      chunk([origin, 'k', 'old', 5, 1], T0 + 2),
      chunk(['no-origin', 'k', 'x', T0, 1], T0 + 3),
      chunk([origin, 'k', 'late', T0 + 10, 1], T0 + 4),
      chunk([origin, 'k', 'short', T0], T0 + 5),
      [`t\u0000${T0}\u0000${id}\u0000extra`, JSON.stringify([origin, 'k', 'x', T0, 1])],
      [`t\u0000${String(T0).padStart(13, '0')}\u0000${id}x`, 'not json'],
      ['d\u0000k\u0000kept', JSON.stringify([[origin, T0, 0]])],
      ['d\u0000k\u0000kept2', JSON.stringify([])],
      ['d\u0000k\u0000é', JSON.stringify([[origin, T0, 1]])],
    ];
    for (const [key, value] of bad) store.plantRaw('token', key, value);
    await store.open();
    const corrupt: CorruptRecord[] = [];
    const scanned: StoredToken[] = [];
    for await (const t of store.scanTokens((r) => corrupt.push(r))) scanned.push(t);
    expect(scanned.map((t) => t.token)).toEqual(['good']);
    expect(corrupt).toHaveLength(bad.length);
    for (const [key, value] of bad) expect(() => (key.startsWith('d') ? decodeKeptToken(key, value) : decodeTokenChunk(key, value)), key).toThrow();
    await store.close();
    const again = await openReplica(store, clock);
    expect((await again.hitOnce('k', 1, 'good')).value.duplicate).toBe(true);
    expect(again.count('k', LIFETIME_PLAN)).toBe(1);
    await again.close();
  });

  it('a clock that jumps back 2 h: the retry is still a repeat, across the new incarnation and a reopen; one that jumps ahead past the window counts it again (a lone node has no peers to refuse it)', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore();
    let replica = await openReplica(store, clock);
    expect((await replica.hitOnce('k', 2, 'req')).value.duplicate).toBe(false);
    const before = replica.identity.origin;
    clock.jump(-2 * 3_600_000);
    const retry = await replica.hitOnce('k', 2, 'req');
    expect(retry.value.duplicate).toBe(true);
    await replica.hit('other', 1); // a plain hit after the jump: the replica goes on as a new incarnation
    expect(replica.identity.origin).not.toBe(before);
    expect((await replica.hitOnce('k', 2, 'req')).value.duplicate).toBe(true);
    await replica.close();
    replica = await openReplica(store, clock);
    expect((await replica.hitOnce('k', 2, 'req')).value.duplicate).toBe(true);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(2);
    clock.jump(2 * 3_600_000 + DEFAULT_RETENTION[0] + 1_000);
    expect((await replica.hitOnce('k', 2, 'req')).value.duplicate).toBe(false);
    expect(replica.count('k', LIFETIME_PLAN)).toBe(4);
    await replica.close();
  });
});
