import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { LevelStore } from '../../node/level-store.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { HitWriteFailedError, HitsRefusedError, Replica } from '../../node/replica.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 28, 12, 0, 0, 250);
const ALL = { kind: 'all' } as const;

function open(store: MemoryStore, metrics?: NodeMetrics): Promise<Replica> {
  // Timers far off: the test decides when checkpoints happen.
  return Replica.open({
    store,
    id: 'n1',
    retention: DEFAULT_RETENTION,
    clock: new ManualClock(T0),
    logger,
    checkpointIntervalMs: 1e9,
    gcIntervalMs: 1e9,
    storeRetryMs: 5,
    ...(metrics ? { metrics } : {}),
  });
}

/** kill -9: the process is gone without a last checkpoint; the next open recovers what the store holds. */
async function crashAndReopen(store: MemoryStore): Promise<Replica> {
  await store.close();
  return open(store);
}

async function settle(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof HitWriteFailedError) return 'write-failed';
    if (error instanceof HitsRefusedError) return 'refused';
    return String(error);
  }
}

describe('a store write error stops the hit path until the store is reopened', () => {
  it('no hit acknowledged after a failed write is lost to a crash, though the store tears its log at the failure', async () => {
    const store = new MemoryStore();
    const replica = await open(store);
    let acked = 0;
    for (let i = 0; i < 5; i++) if ((await settle(replica.hit('k', 1))) === 'ok') acked++;
    store.failWrites(new Error('ENOSPC: no space left on device'));
    expect(await settle(replica.hit('k', 1))).toBe('write-failed');
    // While the store is failed, hits are refused at once (503) and readiness says why.
    expect(await settle(replica.hit('k', 1))).toBe('refused');
    expect(replica.notTakingHits).toMatch(/store failed a write \(ENOSPC/);
    expect(replica.isAccepting).toBe(true);
    store.heal();
    await replica.storeSettled();
    expect(replica.notTakingHits).toBeUndefined();
    for (let i = 0; i < 200; i++) if ((await settle(replica.hit('k', 1))) === 'ok') acked++;
    expect(acked).toBe(205);
    const after = await crashAndReopen(store);
    expect(after.count('k', after.plan(ALL))).toBe(205);
    await after.close();
  });

  it('a batch whose failed write still reached the disk is dropped at the reopen: it never counts once the node goes on', async () => {
    const store = new MemoryStore();
    const metrics = new NodeMetrics({ node: 'n1' });
    const replica = await open(store, metrics);
    await replica.hit('k', 1);
    store.failWrites(new Error('EIO'), { written: true });
    expect(await settle(replica.hit('k', 7))).toBe('write-failed');
    expect(await metrics.registry.getSingleMetricAsString('hitmesh_store_failed')).toMatch(/ 1$/m);
    store.heal();
    await replica.storeSettled();
    await replica.hit('k', 2);
    expect(replica.count('k', replica.plan(ALL))).toBe(3);
    const after = await crashAndReopen(store);
    expect(after.count('k', after.plan(ALL))).toBe(3);
    expect(await metrics.registry.getSingleMetricAsString('hitmesh_store_failed')).toMatch(/ 0$/m);
    expect(await metrics.registry.getSingleMetricAsString('hitmesh_store_reopens_total')).toMatch(/ 1$/m);
    await after.close();
  });

  it('a store that stays broken keeps the node refusing hits, retrying, until it heals', async () => {
    const store = new MemoryStore();
    const replica = await open(store);
    store.failWrites(new Error('EROFS: read-only file system'));
    expect(await settle(replica.hit('k', 1))).toBe('write-failed');
    await new Promise((resolve) => setTimeout(resolve, 100)); // several reopen tries, each failing its first write
    expect(await settle(replica.hit('k', 1))).toBe('refused');
    expect(replica.notTakingHits).toMatch(/EROFS/);
    store.heal();
    await replica.storeSettled();
    expect(await settle(replica.hit('k', 1))).toBe('ok');
    await replica.close();
  });
});

/**
 * Flip a byte in the payload of the `index`th record of a LevelDB log file
 * (records: crc32c 4 bytes, length 2 bytes LE, type 1 byte, payload; the file
 * here is under one 32 KiB block, so records follow each other).
 */
function rotPayloadOfRecord(log: Buffer, index: number): void {
  let offset = 0;
  for (let i = 0; i < index; i++) offset += 7 + log.readUInt16LE(offset + 4);
  const length = log.readUInt16LE(offset + 4);
  if (offset + 7 + length > log.length) throw new Error(`the log holds fewer than ${index + 1} records`);
  const at = offset + 7 + Math.floor(length / 2);
  log.writeUInt8(log.readUInt8(at) ^ 0xff, at);
}

describe("LevelDB's own recovery", () => {
  it('dropping records of a damaged log is said in the log and the metrics, and the node still opens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-torn-'));
    try {
      const first = await Replica.open({ store: new LevelStore(dir), id: 'n1', retention: DEFAULT_RETENTION, clock: new ManualClock(T0), logger, checkpointIntervalMs: 1e9 });
      for (let i = 0; i < 50; i++) await first.hit(`k${i}`, 1);
      // A crash: the store is closed without the last checkpoint, so the hits are only in LevelDB's log.
      await (first as unknown as { store: { inner: LevelStore } }).store.inner.close();
      const log = (await readdir(dir)).filter((name) => name.endsWith('.log')).sort().at(-1);
      if (log === undefined) throw new Error('no LevelDB log');
      const bytes = await readFile(join(dir, log));
      expect(bytes.length).toBeGreaterThan(1_000);
      rotPayloadOfRecord(bytes, 20); // a rotten record in the middle of the log: its checksum no longer matches
      await writeFile(join(dir, log), bytes);

      const lines: string[] = [];
      const capture = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
      const metrics = new NodeMetrics({ node: 'n1' });
      const second = await Replica.open({ store: new LevelStore(dir), id: 'n1', retention: DEFAULT_RETENTION, clock: new ManualClock(T0), logger: capture, metrics });
      let total = 0;
      for (let i = 0; i < 50; i++) total += second.count(`k${i}`, second.plan(ALL));
      expect(total).toBeLessThan(50);
      expect(lines.join('\n')).toMatch(/checksum mismatch[^\n]*recovery dropped records/);
      expect(await metrics.registry.getSingleMetricAsString('hitmesh_store_recovery_problems_total')).toMatch(/ [1-9]\d*$/m);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
