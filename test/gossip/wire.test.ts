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
import { PROTOCOL_VERSION, ProtocolError, parseMessage, type Delta, type Message } from '../../gossip/messages.ts';
import { GossipCore, type Output } from '../../gossip/protocol.ts';
import type { Changes, HitRow, SlotRow } from '../../gossip/replica-view.ts';
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
const secondArb = fc.integer({ min: -3 * 365, max: 3 * 365 }).chain((day) => fc.integer({ min: 0, max: 86_399 }).map((s) => T0 + day * DAY + s * 1000));
const countArb = fc.nat({ max: 2 ** 40 });

const hitRowArb: fc.Arbitrary<HitRow> = fc.record({
  key: keyArb,
  second: secondArb,
  counts: fc.tuple(countArb, countArb, countArb, countArb, countArb),
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

const changesArb: fc.Arbitrary<Changes> = fc.record({ hits: fc.array(hitRowArb, { maxLength: 20 }), slots: fc.array(slotRowArb, { maxLength: 20 }) });

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
      fc.property(changesArb, fc.nat(), fc.option(fc.nat(), { nil: null }), (changes, to, from) => {
        const delta = encodeDelta('n1#a', changes, [to, T0], from);
        expect(delta).toMatchObject({ type: 'delta', origin: 'n1#a', from, to, at: T0 });
        expect(delta.base % 1000).toBe(0);
        expect(decodeDelta(delta)).toEqual(changes);
        const parsed = parseMessage(overTheWire(delta));
        expect(parsed.type).toBe('delta');
        expect(decodeDelta(parsed as Delta)).toEqual(changes);
      }),
      { numRuns: 300 },
    );
  });

  it('spends small offsets on time: a fresh push of one second encodes offset 0', () => {
    const delta = encodeDelta('o', { hits: [{ key: 'k', second: T0, counts: [1, 1, 1, 1, 1] }], slots: [] }, [1, T0], 0);
    expect(delta.base).toBe(T0);
    expect(delta.hits).toEqual(['k', 0, 1, 1, 1, 1, 1]);
    expect(encodeDelta('o', { hits: [], slots: [] }, [1, T0], 0)).toMatchObject({ base: 0, hits: [], slots: [] });
  });

  it('rejects keys with control characters, empty, malformed or too long, in hit and slot rows', () => {
    const bad = ['a\u0000b', 'tab\there', 'nl\n', 'del\u007f', 'c1\u0085', '', 'lone\ud800', 'x'.repeat(257)];
    for (const key of bad) {
      const hits = [...validDelta().hits];
      hits[0] = key;
      expect(() => decodeDelta({ ...validDelta(), hits }), JSON.stringify(key)).toThrow(ProtocolError);
      const slots = [...validDelta().slots];
      slots[0] = key;
      expect(() => decodeDelta({ ...validDelta(), slots }), JSON.stringify(key)).toThrow(ProtocolError);
    }
  });

  it('rejects unknown tiers', () => {
    for (const tier of [5, 6, 255, -1, 1.5]) {
      const slots = [...validDelta().slots];
      slots[1] = tier;
      expect(() => decodeDelta({ ...validDelta(), slots }), String(tier)).toThrow(/unknown tier/);
    }
  });

  it('rejects a base that is not a whole second', () => {
    for (const base of [T0 + 1, T0 + 999, T0 - 500]) {
      expect(() => decodeDelta({ ...validDelta(), base }), String(base)).toThrow(/whole second/);
    }
  });

  it('rejects a slot start beyond safe integers', () => {
    const slots = ['k', Tier.day, Math.ceil(Number.MAX_SAFE_INTEGER / DAY) + 1, 1];
    expect(() => decodeDelta({ ...validDelta(), slots }), 'day offset').toThrow(/out of range/);
  });
});

describe('parseMessage', () => {
  const nonce = new Uint8Array(16).fill(7);
  const valid: Record<Message['type'], Message> = {
    hello: { type: 'hello', protocol: PROTOCOL_VERSION, id: 'n1', origin: 'n1#a', address: '127.0.0.1:7001', nonce },
    auth: { type: 'auth', proof: new Uint8Array(32).fill(1) },
    sync: { type: 'sync', vv: { 'n1#a': [3, T0] }, members: { n1: '127.0.0.1:7001', n2: '127.0.0.1:7002' }, links: ['n2'], sent: T0, echo: 0, held: 0 },
    delta: validDelta(),
    ack: { type: 'ack', vv: { 'n1#a': [3, T0], 'n2#b': [0, 0] } },
  };

  it('accepts each message type, as it comes off the wire', () => {
    for (const message of Object.values(valid)) {
      expect(plain(parseMessage(overTheWire(message)))).toEqual(plain(message));
      expect(parseMessage(message)).toBe(message);
    }
    // Variants that are still valid: an incomplete delta, an empty auth proof (no secret), empty vectors.
    expect(() => parseMessage({ ...valid.delta, from: null })).not.toThrow();
    expect(() => parseMessage({ type: 'auth', proof: new Uint8Array(0) })).not.toThrow();
    expect(() => parseMessage({ ...valid.sync, vv: {}, members: {}, links: [] })).not.toThrow();
    expect(() => parseMessage({ type: 'ack', vv: {} })).not.toThrow();
  });

  it('rejects what is not a message map, and unknown or missing types', () => {
    for (const value of [null, undefined, 1, 'hello', [], ['hello'], new Uint8Array(3), true]) {
      expect(() => parseMessage(value), String(value)).toThrow(/not a map/);
    }
    for (const type of ['bye', 'HELLO', '', 1, null, undefined, ['hello']]) {
      expect(() => parseMessage({ ...valid.hello, type }), JSON.stringify(type)).toThrow(/unknown message type/);
    }
    const untyped: Record<string, unknown> = { ...valid.sync };
    delete untyped.type;
    expect(() => parseMessage(untyped)).toThrow(ProtocolError);
  });

  /** Each entry: a message with one field broken (wrong type, out of range or missing). */
  const malformed: [string, Record<string, unknown>][] = [
    ['hello: protocol a string', { ...valid.hello, protocol: '1' }],
    ['hello: protocol negative', { ...valid.hello, protocol: -1 }],
    ['hello: protocol fractional', { ...valid.hello, protocol: 1.5 }],
    ['hello: empty id', { ...valid.hello, id: '' }],
    ['hello: id over 64', { ...valid.hello, id: 'x'.repeat(65) }],
    ['hello: origin over 128', { ...valid.hello, origin: 'x'.repeat(129) }],
    ['hello: address over 300', { ...valid.hello, address: 'x'.repeat(301) }],
    ['hello: missing address', { ...valid.hello, address: undefined }],
    ['hello: nonce a string', { ...valid.hello, nonce: 'abc' }],
    ['hello: nonce an array', { ...valid.hello, nonce: [1, 2, 3] }],
    ['hello: nonce over 64 bytes', { ...valid.hello, nonce: new Uint8Array(65) }],
    ['auth: proof missing', { type: 'auth' }],
    ['auth: proof a string', { type: 'auth', proof: 'deadbeef' }],
    ['auth: proof over 64 bytes', { type: 'auth', proof: new Uint8Array(65) }],
    ['sync: vv an array', { ...valid.sync, vv: [[1, 2]] }],
    ['sync: vv entry of three', { ...valid.sync, vv: { o: [1, 2, 3] } }],
    ['sync: vv entry negative', { ...valid.sync, vv: { o: [-1, 2] } }],
    ['sync: vv entry fractional', { ...valid.sync, vv: { o: [1, 2.5] } }],
    ['sync: vv entry not an array', { ...valid.sync, vv: { o: 3 } }],
    ['sync: member address a number', { ...valid.sync, members: { n1: 7001 } }],
    ['sync: member address empty', { ...valid.sync, members: { n1: '' } }],
    ['sync: members missing', { ...valid.sync, members: undefined }],
    ['sync: links missing', { ...valid.sync, links: undefined }],
    ['sync: links a map', { ...valid.sync, links: { 0: 'n2' } }],
    ['sync: link id empty', { ...valid.sync, links: [''] }],
    ['sync: link id a number', { ...valid.sync, links: [2] }],
    ['sync: link id over 64', { ...valid.sync, links: ['x'.repeat(65)] }],
    ['sync: sent fractional', { ...valid.sync, sent: T0 + 0.5 }],
    ['sync: held fractional', { ...valid.sync, held: 999.7 }],
    ['sync: echo negative', { ...valid.sync, echo: -1 }],
    ['sync: held missing', { ...valid.sync, held: undefined }],
    ['delta: origin empty', { ...valid.delta, origin: '' }],
    ['delta: from missing', { ...valid.delta, from: undefined }],
    ['delta: from a string', { ...valid.delta, from: '4' }],
    ['delta: to negative', { ...valid.delta, to: -1 }],
    ['delta: at fractional', { ...valid.delta, at: 1.5 }],
    ['delta: base missing', { ...valid.delta, base: undefined }],
    ['delta: base beyond safe integers', { ...valid.delta, base: 2 ** 53 }],
    ['delta: hits not a multiple of 7', { ...valid.delta, hits: ['k', 0, 1, 1, 1, 1] }],
    ['delta: hit key a number', { ...valid.delta, hits: [1, 0, 1, 1, 1, 1, 1] }],
    ['delta: hit count a string', { ...valid.delta, hits: ['k', 0, 1, '1', 1, 1, 1] }],
    ['delta: hit count negative', { ...valid.delta, hits: ['k', 0, 1, 1, 1, 1, -1] }],
    ['delta: hit key over 1024', { ...valid.delta, hits: ['k'.repeat(1025), 0, 1, 1, 1, 1, 1] }],
    ['delta: slots not a multiple of 4', { ...valid.delta, slots: ['k', 1, 0] }],
    ['delta: slot tier a string', { ...valid.delta, slots: ['k', 'minute', 0, 1] }],
    ['delta: slot offset fractional', { ...valid.delta, slots: ['k', 1, 0.5, 1] }],
    ['delta: slots a map', { ...valid.delta, slots: { 0: 'k' } }],
    ['ack: vv missing', { type: 'ack' }],
    ['ack: vv entry of one', { type: 'ack', vv: { o: [1] } }],
  ];

  it.each(malformed)('rejects %s', (_name, value) => {
    expect(() => parseMessage(value)).toThrow(ProtocolError);
  });

  it('bounds version vectors at 10 000 origins', () => {
    const vv = (n: number): Record<string, [number, number]> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`n${i}#x`, [i, T0]]));
    expect(() => parseMessage({ type: 'ack', vv: vv(10_000) })).not.toThrow();
    expect(() => parseMessage({ type: 'ack', vv: vv(10_001) })).toThrow(ProtocolError);
    expect(() => parseMessage({ ...valid.sync, vv: vv(10_001) })).toThrow(ProtocolError);
  });

  it('bounds links at 10 000 ids', () => {
    const links = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i}`);
    expect(() => parseMessage({ ...valid.sync, links: links(10_000) })).not.toThrow();
    expect(() => parseMessage({ ...valid.sync, links: links(10_001) })).toThrow(ProtocolError);
  });

  it('never throws anything but a ProtocolError, whatever the value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ type: fc.constantFrom('hello', 'auth', 'sync', 'delta', 'ack') }, { requiredKeys: [] }).chain((t) => fc.dictionary(fc.string(), fc.anything()).map((d) => ({ ...d, ...t })))), (value) => {
        try {
          parseMessage(value);
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
    const c = new GossipCore({ id, origin, address: `mem:${id}` }, replicated, DEFAULT_GOSSIP, {
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

  const wire = (m: Message): Message => parseMessage(overTheWire(m));

  it('two nodes with the same secret open the connection; a wrong secret is a rejected handshake', () => {
    const a = core('a', 's3cret', 1);
    const b = core('b', 's3cret', 2);
    const helloA = only(a.core.connected(1, NOW, 'mem:b'), 'hello');
    const helloB = only(b.core.connected(1, NOW), 'hello');
    const authB = only(b.core.received(1, wire(helloA), NOW), 'auth');
    const authA = only(a.core.received(1, wire(helloB), NOW), 'auth');
    expect(sent(a.core.received(1, wire(authB), NOW)).map((m) => m.type)).toEqual(['sync']);
    expect(sent(b.core.received(1, wire(authA), NOW)).map((m) => m.type)).toEqual(['sync']);
    expect(a.core.peerOf(1)).toBe('b');

    const c = core('c', 'wrong', 3);
    const helloC = only(c.core.connected(2, NOW, 'mem:b'), 'hello');
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
    const stolen = only(a.core.received(1, wire({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'm', origin: 'm#x', address: 'mem:m', nonce: challenge }), NOW), 'auth').proof;
    // ...and presents a's proof to b under a's origin.
    b.core.received(1, wire({ type: 'hello', protocol: PROTOCOL_VERSION, id: 'm', origin: a.origin, address: 'mem:m', nonce: new Uint8Array(16) }), NOW);
    const verdict = b.core.received(1, wire({ type: 'auth', proof: stolen }), NOW);
    // Were it let in, it could write any origin's counts, and max-merge would spread them to the whole cluster.
    b.core.received(1, wire(encodeDelta('forged#x', { hits: [], slots: [{ key: 'home', tier: Tier.lifetime, start: 0, count: 1_000_000 }] }, [1, NOW], 0)), NOW);
    expect(verdict).toEqual([expect.objectContaining({ kind: 'close', rejected: 'handshake' })]);
    expect(b.replicated.state.sum('home', LIFETIME_PLAN)).toBe(0);
  });
});
