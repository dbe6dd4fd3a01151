/**
 * A gossip fuzzer: an authenticated peer sends random sequences of messages
 * built from boundary values (times at the edges of what is accepted, counts
 * at 2^53, hostile keys, origins and addresses, messages out of order) to a
 * real replica on real LevelDB files, through the same pack/parse path as the
 * wire. Properties: the node never throws, its store always reopens with
 * nothing skipped, the counts of keys the peer never named are unchanged,
 * and what it holds of its own origin is only what it wrote.
 */
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EARLIEST_MS } from '../../crdt/replica-state.ts';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { DEFAULT_GOSSIP } from '../../gossip/config.ts';
import { LIMITS } from '../../gossip/limits.ts';
import { PROTOCOL_VERSION, ProtocolError, parseMessage } from '../../gossip/messages.ts';
import { GossipCore, type Output } from '../../gossip/protocol.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { ManualClock } from '../../node/clock.ts';
import { LevelStore } from '../../node/level-store.ts';
import { NodeMetrics } from '../../node/metrics.ts';
import { Replica } from '../../node/replica.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const logger = pino({ level: 'silent' });
const NOW = Date.UTC(2026, 11, 1, 12);
const DAY = 86_400_000;
const HONEST = ['home', 'api', 'ключ'];

const timeArb = fc.constantFrom(0, 1, EARLIEST_MS - 1000, EARLIEST_MS, NOW - 10 * DAY, NOW, NOW + LIMITS.maxAheadMs, NOW + LIMITS.maxAheadMs + 1000, 2 ** 53 - 1, 2 ** 53);
const countArb = fc.oneof({ weight: 25, arbitrary: fc.nat({ max: 10 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, 0.5) });
const keyArb = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('evil', 'evil/2', '__proto__', 'constructor', 'e'.repeat(256), 'ok-🙂') }, { weight: 1, arbitrary: fc.constantFrom('e'.repeat(257), 'a\u0000b', 'tab\t', '\ud800', '') });
/** SELF stands for the node's own origin, known only once it is open. */
const SELF = 'SELF';
const originArb = fc.constantFrom('evil#1', 'evil#2', 'x'.repeat(64) + '#f', SELF, 'n1#a\u0000', 'bad', '#', 'evil#' + 'f'.repeat(33));
const addressArb = fc.constantFrom('127.0.0.1:7001', 'host:99999', 'a host:7001', '[::1]:7002', 'h:0', 'x'.repeat(300) + ':1', 'ok.example:65535');
const seqArb = fc.oneof(fc.nat({ max: 20 }), fc.constantFrom(2 ** 53 - 1, 2 ** 53, -1));

/** A delta that is well formed but for what the boundary values make of it: times near the edges, counts up to 2^53. */
const deltaArb = fc
  .record({
    type: fc.constant('delta'),
    origin: fc.oneof({ weight: 5, arbitrary: fc.constantFrom('evil#1', 'evil#2', SELF) }, { weight: 1, arbitrary: originArb }),
    to: fc.nat({ max: 20 }),
    complete: fc.boolean(),
    nest: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    at: fc.oneof({ weight: 4, arbitrary: fc.constant(NOW) }, { weight: 1, arbitrary: timeArb }),
    base: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 * 86_400 }).map((s) => NOW - (NOW % 1000) - s * 1000) }, { weight: 1, arbitrary: timeArb.map((t) => t - (t % 1000)) }),
    hits: fc.array(fc.tuple(keyArb, fc.integer({ min: 0, max: 90_000 }), fc.array(countArb, { minLength: 5, maxLength: 5 })), { maxLength: 4 }),
    slots: fc.array(fc.tuple(keyArb, fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constant(5) }), fc.oneof({ weight: 8, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 5_000 }) }), countArb), { maxLength: 4 }),
    // Idempotency tokens: the same few a lot (so origins collide on them), now and then one that is not a token.
    tokens: fc.option(
      fc.array(
        fc.tuple(
          // Honest keys too: a peer's duplicates may only ever be taken off that peer's own hits.
          fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...HONEST, 'evil') }, { weight: 1, arbitrary: keyArb }),
          fc.oneof({ weight: 20, arbitrary: fc.constantFrom('t1', 't2', ' ', '~'.repeat(255)) }, { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(256), 'é', 'a\u0000', 7) }),
          // Stamps are ms after the frame's base (up to 3 days before now): mostly a day at most, now and then anything.
          fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: DAY }) }, { weight: 1, arbitrary: timeArb }),
          fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 1, max: 5 }) }, { weight: 1, arbitrary: countArb }),
        ),
        { maxLength: 3 },
      ),
      { nil: undefined, freq: 2 },
    ),
  })
  .map(({ to, complete, nest, hits, slots, tokens, ...d }) => ({
    ...(tokens === undefined ? {} : { tokens: tokens.flat() }),
    ...d,
    to,
    from: complete ? Math.max(0, to - 3) : null,
    // Counts in a hit row nest when sorted; one delta in ten keeps them as drawn.
    hits: hits.flatMap(([key, offset, counts]) => [key, offset, ...(nest ? [...counts].sort((x, y) => x - y) : counts)]),
    slots: slots.flatMap(([key, tier, offset, count]) => [key, 1, tier, tier === 4 ? 0 : offset, count]),
  }));

const messageArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: deltaArb },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('sync'),
      vv: fc.dictionary(originArb, fc.tuple(seqArb, fc.oneof(fc.constant(NOW), timeArb), fc.nat(), seqArb), { maxKeys: 3 }),
      members: fc.dictionary(fc.constantFrom('n2', 'n3', 'bad id', 'x'.repeat(65)), addressArb, { maxKeys: 3 }),
      links: fc.array(fc.constantFrom('n2', 'n1', ''), { maxLength: 3 }),
      sent: fc.oneof(fc.constant(NOW), timeArb),
      echo: fc.oneof(fc.constant(0), timeArb),
      held: fc.constantFrom(0, 5, 3_600_001),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('hello'), protocol: fc.constantFrom(PROTOCOL_VERSION, 1), id: fc.constant('evil'), origin: originArb, address: addressArb, nonce: fc.constant(new Uint8Array(16)) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('auth'), proof: fc.constant(new Uint8Array(0)) }) },
  // Fresh reads asked of the node and answers to reads it never asked: answered or ignored, never a count changed.
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('read'),
      id: fc.nat(),
      keys: fc.array(fc.constantFrom('k', 'a', '__proto__', ''), { maxLength: 5 }),
      runs: fc.constantFrom([0, NOW - (NOW % 1000), 3], [4, 0, 1], [3, 0, 5], [9, 0, 1], [0, 0, 300_000], [4, 0, 2]),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('readReply'), id: fc.nat({ max: 3 }), origins: fc.array(originArb, { maxLength: 3 }), rows: fc.array(fc.nat({ max: 5 }), { maxLength: 12 }), tooBig: fc.boolean() }) },
  // What a peer says it holds of an origin, ours (SELF) included: a lie must not change any count.
  { weight: 1, arbitrary: fc.record({ type: fc.constant('held'), origin: fc.oneof(fc.constant(SELF), originArb), seq: fc.oneof(fc.nat(), fc.constantFrom(2 ** 53, -1, 1.5)) }) },
  { weight: 1, arbitrary: fc.anything() },
);

/** The message with SELF replaced by the node's origin (as a delta's origin, or a vector's key). */
function withSelf(message: unknown, self: string): unknown {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return message;
  const m = { ...(message as Record<string, unknown>) };
  if (m.origin === SELF) m.origin = self;
  if (typeof m.vv === 'object' && m.vv !== null) m.vv = Object.fromEntries(Object.entries(m.vv).map(([k, v]) => [k === SELF ? self : k, v]));
  return m;
}

describe('gossip fuzzer (in memory, real LevelDB)', () => {
  it('an authenticated peer sending anything: the node never throws, its store reopens whole, honest counts stay', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-fuzz-'));
    let run = 0;
    const seen = { applied: 0, rejected: 0 };
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(messageArb, { minLength: 5, maxLength: 40 }), async (seed, messages) => {
          const data = join(dir, String(run++));
          const clock = new ManualClock(NOW);
          const replica = await Replica.open({ store: new LevelStore(data), id: 'n1', retention: DEFAULT_RETENTION, clock, logger });
          for (const [i, key] of HONEST.entries()) await replica.hit(key, i + 1);
          const ownBefore = [...replica.state.slots()].filter((s) => s.origin === replica.identity.origin).length;
          const random = mulberry32(seed);
          const core = new GossipCore({ id: 'n1', origin: replica.identity.origin, address: '127.0.0.1:7001' }, replica.view, DEFAULT_GOSSIP, {
            seeds: [],
            secret: undefined,
            randomBytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256)),
            random,
          });
          let conn = 0;
          const open = (): void => {
            conn++;
            core.connected(conn, clock.now());
            deliver({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'evil', origin: 'evil#1', address: '127.0.0.1:7009', nonce: new Uint8Array(16) });
            deliver({ type: 'auth', proof: new Uint8Array(0) });
          };
          const deliver = (value: unknown): void => {
            let message;
            try {
              message = parseMessage(packr.unpack(packr.pack(value)), clock.now());
            } catch (error) {
              expect(error).toBeInstanceOf(ProtocolError);
              seen.rejected++;
              return reconnect([{ kind: 'close', conn, reason: 'bad frame' }]);
            }
            reconnect(core.received(conn, message, clock.now()));
          };
          const reconnect = (out: readonly Output[]): void => {
            if (!out.some((o) => o.kind === 'close' && o.conn === conn)) return;
            core.disconnected(conn, clock.now());
            open();
          };
          open();
          for (const message of messages) {
            deliver(withSelf(message, replica.identity.origin));
            clock.advance(Math.floor(random() * 300));
            core.tick(clock.now());
          }
          seen.applied += core.stats.deltasApplied;
          seen.rejected += core.stats.rejectedFrames + core.stats.rejectedHandshakes;
          const counts = new Map(HONEST.map((k) => [k, replica.count(k, LIFETIME_PLAN)]));
          expect([...counts.values()]).toEqual([1, 2, 3]);
          const ownAfter = [...replica.state.slots()].filter((s) => s.origin === replica.identity.origin).length;
          expect(ownAfter, 'nothing but this node writes its own origin').toBe(ownBefore);
          await replica.expire(); // what retention drops at the next start anyway (old buckets a peer sent)
          const held = [...replica.state.slots()];
          const everything = new Map(held.map((s) => [`${s.origin}|${s.key}|${s.tier}|${s.start}`, s.count]));
          await replica.close();

          const metrics = new NodeMetrics({ node: 'n1' });
          const again = await Replica.open({ store: new LevelStore(data), id: 'n1', retention: DEFAULT_RETENTION, clock, logger, metrics });
          // Every slot reads back, held or (past the hot horizon) from the store; nothing is held that was not there.
          const reopened = new Map(held.map((s) => [`${s.origin}|${s.key}|${s.tier}|${s.start}`, again.state.get(s.origin, s.key, s.tier, s.start)]));
          expect(reopened).toEqual(everything);
          for (const s of again.state.slots()) expect(everything.get(`${s.origin}|${s.key}|${s.tier}|${s.start}`)).toBe(s.count);
          expect((await metrics.registry.getSingleMetric('hitmesh_store_corrupt_records_total')?.get())?.values.length ?? 0, 'nothing skipped at reopen').toBe(0);
          await again.close();
        }),
        { numRuns: 40 },
      );
      // The fuzzer reaches both sides of the grammar: deltas that were applied, frames that were refused.
      expect(seen.applied, JSON.stringify(seen)).toBeGreaterThan(20);
      expect(seen.rejected).toBeGreaterThan(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
