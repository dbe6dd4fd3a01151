import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { keyProblem } from '../../crdt/key.ts';
import { ReplicaState } from '../../crdt/replica-state.ts';
import { TIER_SIZE_MS, Tier, type TimedTier } from '../../crdt/tiers.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { proveIdentity, verifyIdentity } from '../../gossip/auth.ts';
import { DEFAULT_GOSSIP } from '../../gossip/config.ts';
import { decodeDelta, encodeDelta } from '../../gossip/delta-codec.ts';
import { LIMITS } from '../../gossip/limits.ts';
import { PROTOCOL_VERSION, ProtocolError, parseMessage, timeBounds, type Delta, type Message, type SyncEntry } from '../../gossip/messages.ts';
import { GossipCore, type Output } from '../../gossip/protocol.ts';
import type { Changes, HitRow, SlotRow, TokenChange } from '../../gossip/replica-view.ts';
import { mulberry32 } from '../../gossip/random.ts';
import { ReplicatedState } from '../../gossip/replicated-state.ts';

/** As on the wire (the transport and the simulator pack frames the same way). */
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const overTheWire = (message: Message): unknown => packr.unpack(packr.pack(message));
/** Bytes as plain arrays (msgpack gives Buffers back), for deep equality. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const DAY = TIER_SIZE_MS[Tier.day];

const keyArb = fc.oneof(fc.constantFrom('home', 'api/v1', 'ключ', '🙂', '__proto__', 'a'.repeat(256)), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((k) => keyProblem(k) === undefined));
const secondArb = fc.integer({ min: -3 * 365, max: -1 }).chain((day) => fc.integer({ min: 0, max: 86_399 }).map((s) => T0 + day * DAY + s * 1000));
const countArb = fc.nat({ max: 2 ** 40 });

const hitRowArb: fc.Arbitrary<HitRow> = fc.record({
  key: keyArb,
  second: secondArb,
  // One origin's five counts of one second nest: second ≤ minute ≤ hour ≤ day ≤ lifetime.
  counts: fc.tuple(countArb, countArb, countArb, countArb, countArb).map((c) => [...c].sort((x, y) => x - y) as unknown as HitRow['counts']),
});

const slotRowArb: fc.Arbitrary<SlotRow> = fc.oneof(
  fc.record({ key: keyArb, tier: fc.constantFrom<TimedTier>(Tier.second, Tier.minute, Tier.hour, Tier.day), t: secondArb, count: countArb }).map(({ key, tier, t, count }) => ({
    key,
    tier,
    start: Math.floor(t / TIER_SIZE_MS[tier]) * TIER_SIZE_MS[tier],
    count,
  })),
  fc.record({ key: keyArb, count: countArb }).map(({ key, count }): SlotRow => ({ key, tier: Tier.lifetime, start: 0, count })),
);

const tokenArb = fc.oneof(fc.constantFrom('a', ' ', '~', 'retry-1', 'x'.repeat(255)), fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 }));
const tokenChangeArb: fc.Arbitrary<TokenChange> = fc.record({ key: keyArb, token: tokenArb, at: secondArb.chain((s) => fc.integer({ min: s, max: s + 999 })), n: fc.integer({ min: 1, max: 2 ** 40 }) });

const changesArb: fc.Arbitrary<Changes> = fc
  .record({ hits: fc.array(hitRowArb, { maxLength: 20 }), slots: fc.array(slotRowArb, { maxLength: 20 }), tokens: fc.array(tokenChangeArb, { maxLength: 10 }) })
  .map((c) => (c.tokens.length === 0 ? { hits: c.hits, slots: c.slots } : c));

/** A valid delta to break one field of at a time. */
function validDelta(): Delta {
  return encodeDelta(
    'n1#a',
    { hits: [{ key: 'home', second: T0, counts: [1, 2, 3, 4, 5] }], slots: [{ key: 'api', tier: Tier.minute, start: T0 + 60_000, count: 7 }] },
    [9, T0 + 60_000],
    4,
  );
}

describe('delta codec', () => {
  it('decodeDelta(encodeDelta(changes)) gives back the changes, also after msgpack and parseMessage', () => {
    fc.assert(
      fc.property(changesArb, fc.nat(), fc.option(fc.nat(), { nil: null }), (changes, to, from0) => {
        const from = from0 === null ? null : Math.min(from0, to);
        const delta = encodeDelta('n1#a', changes, [to, T0], from);
        expect(delta).toMatchObject({ type: 'delta', origin: 'n1#a', from, to, at: T0 });
        expect(delta.base % 1000).toBe(0);
        expect(decodeDelta(delta, timeBounds(T0))).toEqual(changes);
        const parsed = parseMessage(overTheWire(delta), T0);
        expect(parsed.type).toBe('delta');
        expect(decodeDelta(parsed as Delta, timeBounds(T0))).toEqual(changes);
      }),
      { numRuns: 300 },
    );
  });

  it('spends small offsets on time: a fresh push of one second encodes offset 0', () => {
    const delta = encodeDelta('o', { hits: [{ key: 'k', second: T0, counts: [1, 1, 1, 1, 1] }], slots: [] }, [1, T0], 0);
    expect(delta.base).toBe(T0);
    expect(delta.hits).toEqual(['k', 0, 1, 1, 1, 1, 1]);
    expect(encodeDelta('o', { hits: [], slots: [] }, [1, T0], 0)).toMatchObject({ base: T0, hits: [], slots: [] });
  });

  it('decodes slot groups of one key and offsets in each tier; refuses a start out of range', () => {
    const delta = validDelta();
    expect(delta.slots).toEqual(['api', 1, Tier.minute, 1, 7]);
    const bounds = timeBounds(T0);
    expect(decodeDelta(delta, bounds).slots).toEqual([{ key: 'api', tier: Tier.minute, start: T0 + 60_000, count: 7 }]);
    // A day offset that lands past a day ahead of the receiver, or beyond safe integers.
    for (const offset of [2, Math.ceil(Number.MAX_SAFE_INTEGER / DAY) + 1]) {
      expect(() => decodeDelta({ ...delta, slots: ['k', 1, Tier.day, offset, 1] }, bounds), String(offset)).toThrow(/out of range/);
    }
    expect(() => decodeDelta({ ...delta, slots: ['k', 1, Tier.lifetime, 3, 1] }, bounds)).toThrow(/lifetime/);
  });
});

describe('parseMessage', () => {
  const nonce = new Uint8Array(16).fill(7);
  const valid: Record<Message['type'], Message> = {
    hello: { type: 'hello', protocol: PROTOCOL_VERSION, id: 'n1', origin: 'n1#a', address: '127.0.0.1:7001', nonce },
    auth: { type: 'auth', proof: new Uint8Array(32).fill(1) },
    sync: { type: 'sync', vv: { 'n1#a': [3, T0, 12345, 3] }, members: { n1: '127.0.0.1:7001', n2: 'node-2.example:7002' }, links: ['n2'], sent: T0, echo: 0, held: 0 },
    delta: validDelta(),
    flow: { type: 'flow', received: 123_456 },
    held: { type: 'held', origin: 'n1#a', seq: 42 },
    read: { type: 'read', id: 7, keys: ['a', 'b'], runs: [0, T0 - (T0 % 1000), 3, 4, 0, 1] },
    readReply: { type: 'readReply', id: 7, origins: ['n1#a', 'n2#b'], rows: [0, 0, 1, 5, 1, 1, 3, 9], tooBig: false },
  };
  const parse = (value: unknown): Message => parseMessage(value, T0);

  it('accepts each message type, as it comes off the wire', () => {
    for (const message of Object.values(valid)) {
      expect(plain(parse(overTheWire(message)))).toEqual(plain(message));
      expect(parse(message)).toBe(message);
    }
    // Variants that are still valid: an incomplete delta, an empty auth proof (no secret), empty vectors, IPv6.
    expect(() => parse({ ...valid.delta, from: null })).not.toThrow();
    expect(() => parse({ type: 'auth', proof: new Uint8Array(0) })).not.toThrow();
    expect(() => parse({ ...valid.sync, vv: {}, members: {}, links: [] })).not.toThrow();
    expect(() => parse({ ...valid.hello, address: '[::1]:7001' })).not.toThrow();
    expect(() => parse({ ...valid.sync, vv: { 'n1#a': [0, 0, 0, 0] } })).not.toThrow();
  });

  it('rejects what is not a message map, and unknown or missing types', () => {
    for (const value of [null, undefined, 1, 'hello', [], ['hello'], new Uint8Array(3), true]) {
      expect(() => parse(value), String(value)).toThrow(/not a map/);
    }
    for (const type of ['bye', 'HELLO', '', 1, null, undefined, ['hello'], 'ack']) {
      expect(() => parse({ ...valid.hello, type }), JSON.stringify(type)).toThrow(/unknown message type/);
    }
  });

  const AHEAD = 2 ** 53 - T0;
  const delta = valid.delta as Delta;
  /** Each entry: a message with one field broken (wrong type, out of range, bad grammar or missing). */
  const malformed: [string, Record<string, unknown>][] = [
    ['read: id negative', { ...valid.read, id: -1 }],
    ['read: a bad key', { ...valid.read, keys: ['a', ''] }],
    ['read: too many keys', { ...valid.read, keys: Array.from({ length: 1_001 }, (_, i) => `k${i}`) }],
    ['read: runs not triples', { ...valid.read, runs: [0, 1000] }],
    ['read: unknown tier', { ...valid.read, runs: [5, 0, 1] }],
    ['read: empty run', { ...valid.read, runs: [0, 1000, 0] }],
    ['read: lifetime run of two', { ...valid.read, runs: [4, 0, 2] }],
    ['read: keys × buckets over the limit', { ...valid.read, keys: Array.from({ length: 1_000 }, (_, i) => `k${i}`), runs: [0, 1000, 201] }],
    ['readReply: rows not quadruples', { ...valid.readReply, rows: [0, 0, 1] }],
    ['readReply: row names an unlisted origin', { ...valid.readReply, rows: [0, 2, 1, 5] }],
    ['readReply: bad origin', { ...valid.readReply, origins: ['nope'] }],
    ['readReply: tooBig missing', { type: 'readReply', id: 7, origins: [], rows: [] }],
    ['readReply: count past 2^53', { ...valid.readReply, rows: [0, 0, 1, 2 ** 53] }],
    ['held: origin not an origin', { ...valid.held, origin: 'n1' }],
    ['held: seq negative', { ...valid.held, seq: -1 }],
    ['held: seq past 2^53', { ...valid.held, seq: 2 ** 53 }],
    ['held: seq missing', { type: 'held', origin: 'n1#a' }],
    ['hello: protocol a string', { ...valid.hello, protocol: '1' }],
    ['hello: protocol fractional', { ...valid.hello, protocol: 1.5 }],
    ['hello: empty id', { ...valid.hello, id: '', origin: '#a' }],
    ['hello: id over 64', { ...valid.hello, id: 'x'.repeat(65), origin: `${'x'.repeat(65)}#a` }],
    ['hello: id with a space', { ...valid.hello, id: 'n 1', origin: 'n 1#a' }],
    ['hello: origin with a NUL', { ...valid.hello, origin: 'n1#a\u0000' }],
    ['hello: origin of another id', { ...valid.hello, origin: 'n2#a' }],
    ['hello: origin without an incarnation', { ...valid.hello, origin: 'n1' }],
    ['hello: address with port 99999', { ...valid.hello, address: 'host:99999' }],
    ['hello: address with port 0', { ...valid.hello, address: 'host:0' }],
    ['hello: address with a space', { ...valid.hello, address: 'ho st:7001' }],
    ['hello: address without a port', { ...valid.hello, address: 'host' }],
    ['hello: address a URL', { ...valid.hello, address: 'ws://host:7001/x' }],
    ['hello: missing address', { ...valid.hello, address: undefined }],
    ['hello: nonce a string', { ...valid.hello, nonce: 'abc' }],
    ['hello: nonce under 16 bytes', { ...valid.hello, nonce: new Uint8Array(15) }],
    ['hello: nonce over 64 bytes', { ...valid.hello, nonce: new Uint8Array(65) }],
    ['auth: proof missing', { type: 'auth' }],
    ['auth: proof a string', { type: 'auth', proof: 'deadbeef' }],
    ['auth: proof over 64 bytes', { type: 'auth', proof: new Uint8Array(65) }],
    ['sync: vv an array', { ...valid.sync, vv: [[1, 2, 3, 4]] }],
    ['sync: vv entry of two', { ...valid.sync, vv: { 'o#a': [1, T0] } }],
    ['sync: vv entry negative', { ...valid.sync, vv: { 'o#a': [-1, T0, 0, 0] } }],
    ['sync: vv entry fractional', { ...valid.sync, vv: { 'o#a': [1, T0 + 0.5, 0, 0] } }],
    ['sync: vv time 2^53', { ...valid.sync, vv: { 'o#a': [1, 2 ** 53, 0, 0] } }],
    ['sync: vv time two days ahead', { ...valid.sync, vv: { 'o#a': [1, T0 + 2 * DAY, 0, 0] } }],
    ['sync: vv digest over 32 bits', { ...valid.sync, vv: { 'o#a': [1, T0, 2 ** 32, 0] } }],
    ['sync: vv origin with a NUL', { ...valid.sync, vv: { 'o\u0000#a': [1, T0, 0, 0] } }],
    ['sync: vv origin without #', { ...valid.sync, vv: { o: [1, T0, 0, 0] } }],
    ['sync: member address a number', { ...valid.sync, members: { n1: 7001 } }],
    ['sync: member address host:99999', { ...valid.sync, members: { n3: 'host:99999' } }],
    ['sync: member address with a space', { ...valid.sync, members: { n3: 'a host:7001' } }],
    ['sync: member id with a control character', { ...valid.sync, members: { 'n\u0007': 'h:1' } }],
    ['sync: members missing', { ...valid.sync, members: undefined }],
    ['sync: links a map', { ...valid.sync, links: { 0: 'n2' } }],
    ['sync: link id empty', { ...valid.sync, links: [''] }],
    ['sync: link id over 64', { ...valid.sync, links: ['x'.repeat(65)] }],
    ['sync: sent fractional', { ...valid.sync, sent: T0 + 0.5 }],
    ['sync: sent before 2020', { ...valid.sync, sent: 1 }],
    ['sync: held over an hour', { ...valid.sync, held: 3_600_001 }],
    ['sync: echo negative', { ...valid.sync, echo: -1 }],
    ['delta: origin empty', { ...delta, origin: '' }],
    ['delta: origin with a NUL', { ...delta, origin: 'n1#a\u0000' }],
    ['delta: from a string', { ...delta, from: '4' }],
    ['delta: from after to', { ...delta, from: 10, to: 9 }],
    ['delta: to beyond safe integers', { ...delta, to: 2 ** 53 }],
    ['delta: at fractional', { ...delta, at: 1.5 }],
    ['delta: at two days ahead', { ...delta, at: T0 + 2 * DAY }],
    ['delta: base not a whole second', { ...delta, base: T0 + 1 }],
    ['delta: base missing', { ...delta, base: undefined }],
    ['delta: hits not a multiple of 7', { ...delta, hits: ['k', 0, 1, 1, 1, 1] }],
    ['delta: hit key a number', { ...delta, hits: [1, 0, 1, 1, 1, 1, 1] }],
    ['delta: hit key with a NUL', { ...delta, hits: ['a\u0000b', 0, 1, 1, 1, 1, 1] }],
    ['delta: hit key over 256 bytes', { ...delta, hits: ['k'.repeat(257), 0, 1, 1, 1, 1, 1] }],
    ['delta: hit key a lone surrogate', { ...delta, hits: ['\ud800', 0, 1, 1, 1, 1, 1] }],
    ['delta: hit row 2^53 ms ahead', { ...delta, hits: ['k', AHEAD / 1000, 1, 1, 1, 1, 1] }],
    ['delta: hit row two days ahead', { ...delta, hits: ['k', (2 * DAY) / 1000, 1, 1, 1, 1, 1] }],
    ['delta: hit count a string', { ...delta, hits: ['k', 0, 1, '1', 1, 1, 1] }],
    ['delta: hit count past 2^53', { ...delta, hits: ['k', 0, 1, 1, 1, 1, 2 ** 53] }],
    ['delta: hit counts that do not nest', { ...delta, hits: ['k', 0, 5, 1, 1, 1, 1] }],
    ['delta: slot group of zero', { ...delta, slots: ['k', 0] }],
    ['delta: slot group too short', { ...delta, slots: ['k', 2, 1, 0, 1] }],
    ['delta: slot tier 5', { ...delta, slots: ['k', 1, 5, 0, 1] }],
    ['delta: slot tier a string', { ...delta, slots: ['k', 1, 'minute', 0, 1] }],
    ['delta: slot offset fractional', { ...delta, slots: ['k', 1, 1, 0.5, 1] }],
    ['delta: slot key with a control character', { ...delta, slots: ['k\u001b', 1, 1, 0, 1] }],
    ['delta: slots a map', { ...delta, slots: { 0: 'k' } }],
    ['flow: received negative', { type: 'flow', received: -1 }],
    ['flow: received missing', { type: 'flow' }],
    ['flow: received past 2^53', { type: 'flow', received: 2 ** 53 }],
  ];

  it.each(malformed)('rejects %s', (_name, value) => {
    expect(() => parse(value)).toThrow(ProtocolError);
  });

  it(`bounds version vectors at ${LIMITS.maxOrigins} origins, members and links at ${LIMITS.maxMembers}`, () => {
    const vv = (n: number): Record<string, SyncEntry> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`n${i}#x`, [i, T0, 0, i]]));
    expect(() => parse({ ...valid.sync, vv: vv(LIMITS.maxOrigins) })).not.toThrow();
    expect(() => parse({ ...valid.sync, vv: vv(LIMITS.maxOrigins + 1) })).toThrow(ProtocolError);
    const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i}`);
    expect(() => parse({ ...valid.sync, links: ids(LIMITS.maxMembers) })).not.toThrow();
    expect(() => parse({ ...valid.sync, links: ids(LIMITS.maxMembers + 1) })).toThrow(ProtocolError);
    const members = (n: number): Record<string, string> => Object.fromEntries(ids(n).map((id, i) => [id, `10.0.${i >> 8}.${i & 255}:7001`]));
    expect(() => parse({ ...valid.sync, members: members(LIMITS.maxMembers) })).not.toThrow();
    expect(() => parse({ ...valid.sync, members: members(LIMITS.maxMembers + 1) })).toThrow(ProtocolError);
  });

  it('a sync of the largest size any node sends is far below the frame limit', () => {
    const long = (i: number): string => `${'n'.repeat(58)}${String(i).padStart(6, '0')}`;
    const vv = Object.fromEntries(Array.from({ length: LIMITS.maxOrigins }, (_, i) => [`${long(i)}#${'f'.repeat(32)}`, [2 ** 52, T0, 2 ** 32 - 1, 2 ** 52]]));
    const members = Object.fromEntries(Array.from({ length: LIMITS.maxMembers }, (_, i) => [long(i), `${'h'.repeat(250)}.io:65535`]));
    const links = Array.from({ length: LIMITS.maxMembers }, (_, i) => long(i));
    const frame = packr.pack({ ...valid.sync, vv, members, links });
    expect(parse(packr.unpack(frame))).toMatchObject({ type: 'sync' });
    expect(frame.length).toBeLessThan(LIMITS.maxFrameBytes / 4);
  });

  it('never throws anything but a ProtocolError, whatever the value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ type: fc.constantFrom('hello', 'auth', 'sync', 'delta') }, { requiredKeys: [] }).chain((t) => fc.dictionary(fc.string(), fc.anything()).map((d) => ({ ...d, ...t })))), (value) => {
        try {
          parse(value);
        } catch (error) {
          expect(error).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('handshake proofs', () => {
  const nonce = Uint8Array.from({ length: 16 }, (_, i) => i);

  it('the right secret verifies', () => {
    const proof = proveIdentity('s3cret', nonce, 'n1#a', 'dialer');
    expect(proof).toHaveLength(32);
    expect(verifyIdentity('s3cret', nonce, 'n1#a', proof, 'dialer')).toBe(true);
  });

  it('a wrong secret, nonce or origin, or a damaged or cut proof, fails', () => {
    const proof = proveIdentity('s3cret', nonce, 'n1#a', 'dialer');
    expect(verifyIdentity('other', nonce, 'n1#a', proof, 'dialer')).toBe(false);
    expect(verifyIdentity('s3cret', Uint8Array.from(nonce, (b) => b ^ 1), 'n1#a', proof, 'dialer')).toBe(false);
    // A proof names the prover's end of the connection: a dialer's proof is no acceptor's.
    expect(verifyIdentity('s3cret', nonce, 'n1#a', proof, 'acceptor')).toBe(false);
    expect(verifyIdentity('s3cret', new Uint8Array(16), 'n1#a', proof, 'dialer')).toBe(false);
    // A proof binds the prover's origin: it cannot be reflected back under another one.
    expect(verifyIdentity('s3cret', nonce, 'n2#b', proof, 'dialer')).toBe(false);
    const flipped = Uint8Array.from(proof);
    flipped[31] = (flipped[31] ?? 0) ^ 0x80;
    expect(verifyIdentity('s3cret', nonce, 'n1#a', flipped, 'dialer')).toBe(false);
    expect(verifyIdentity('s3cret', nonce, 'n1#a', proof.subarray(0, 31), 'dialer')).toBe(false);
    expect(verifyIdentity('s3cret', nonce, 'n1#a', new Uint8Array(0), 'dialer')).toBe(false);
  });

  it('is a function of secret, nonce and origin, and differs when any differs', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (secret, n, origin, other) => {
        const proof = proveIdentity(secret, n, origin, 'dialer');
        expect(proveIdentity(secret, n, origin, 'dialer')).toEqual(proof);
        expect(verifyIdentity(secret, n, origin, proof, 'dialer')).toBe(true);
        if (other !== origin) expect(verifyIdentity(secret, n, other, proof, 'dialer')).toBe(false);
        if (other !== secret) expect(verifyIdentity(other, n, origin, proof, 'dialer')).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('without a secret the proof is empty and anything is accepted', () => {
    expect(proveIdentity(undefined, nonce, 'n1#a', 'dialer')).toHaveLength(0);
    expect(verifyIdentity(undefined, nonce, 'n1#a', new Uint8Array(0), 'dialer')).toBe(true);
    expect(verifyIdentity(undefined, nonce, 'n1#a', new Uint8Array(32), 'dialer')).toBe(true);
  });
});

describe('handshake (GossipCore)', () => {
  const NOW = T0;

  function core(id: string, secret: string | undefined, seed: number): { core: GossipCore; origin: string; replicated: ReplicatedState } {
    const origin = `${id}#x`;
    const random = mulberry32(seed);
    const replicated = new ReplicatedState(origin, new ReplicaState());
    const c = new GossipCore({ id, origin, address: `mem-${id}:1` }, replicated, DEFAULT_GOSSIP, {
      seeds: [],
      secret,
      randomBytes: (k) => Uint8Array.from({ length: k }, () => Math.floor(random() * 256)),
      random,
    });
    return { core: c, origin, replicated };
  }

  const sent = (outs: readonly Output[]): Message[] => outs.flatMap((o) => (o.kind === 'send' ? [o.message] : []));
  const only = <T extends Message['type']>(outs: readonly Output[], type: T): Extract<Message, { type: T }> => {
    const m = sent(outs).find((x) => x.type === type);
    if (m === undefined) throw new Error(`no ${type} in ${JSON.stringify(outs)}`);
    return m as Extract<Message, { type: T }>;
  };

  const wire = (m: Message): Message => parseMessage(overTheWire(m), NOW);

  it('two nodes with the same secret open the connection; a wrong secret is a rejected handshake', () => {
    const a = core('a', 's3cret', 1);
    const b = core('b', 's3cret', 2);
    const helloA = only(a.core.connected(1, NOW, 'mem-b:1'), 'hello');
    const helloB = only(b.core.connected(1, NOW), 'hello');
    const authB = only(b.core.received(1, wire(helloA), NOW), 'auth');
    const authA = only(a.core.received(1, wire(helloB), NOW), 'auth');
    expect(sent(a.core.received(1, wire(authB), NOW)).map((m) => m.type)).toEqual(['sync']);
    expect(sent(b.core.received(1, wire(authA), NOW)).map((m) => m.type)).toEqual(['sync']);
    expect(a.core.peerOf(1)).toBe('b');

    const c = core('c', 'wrong', 3);
    const helloC = only(c.core.connected(2, NOW, 'mem-b:1'), 'hello');
    const helloB2 = only(b.core.connected(2, NOW), 'hello');
    b.core.received(2, wire(helloC), NOW);
    const authC = only(c.core.received(2, wire(helloB2), NOW), 'auth');
    expect(b.core.received(2, wire(authC), NOW)).toEqual([expect.objectContaining({ kind: 'close', conn: 2, rejected: 'handshake' })]);
    expect(b.core.stats.rejectedHandshakes).toBe(1);
  });

  it('a stranger without the secret cannot join by having one member sign the nonce another member sent it', () => {
    const a = core('a', 's3cret', 1);
    const b = core('b', 's3cret', 2);
    // The stranger connects to b and reads b's challenge...
    const challenge = only(b.core.connected(1, NOW), 'hello').nonce;
    // ...connects to a and hands a that challenge as its own nonce: a answers with a proof before the stranger proved anything...
    a.core.connected(1, NOW);
    const stolen = only(a.core.received(1, wire({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'm', origin: 'm#x', address: 'mem-m:1', nonce: challenge }), NOW), 'auth').proof;
    // ...and presents a's proof to b as a, under a's origin.
    b.core.received(1, wire({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'a', origin: a.origin, address: 'mem-m:1', nonce: new Uint8Array(16) }), NOW);
    const verdict = b.core.received(1, wire({ type: 'auth', proof: stolen }), NOW);
    // Were it let in, it could write any origin's counts, and max-merge would spread them to the whole cluster.
    b.core.received(1, wire(encodeDelta('forged#x', { hits: [], slots: [{ key: 'home', tier: Tier.lifetime, start: 0, count: 1_000_000 }] }, [1, NOW], 0)), NOW);
    expect(verdict).toEqual([expect.objectContaining({ kind: 'close', rejected: 'handshake' })]);
    expect(b.replicated.state.sum('home', LIFETIME_PLAN)).toBe(0);
  });
});
