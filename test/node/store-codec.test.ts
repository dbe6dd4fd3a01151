import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tier, type TimedTier } from '../../crdt/tiers.ts';
import { decodeLogEntry, decodeLogRecord } from '../../node/log-record.ts';
import { SlotDecoder, decodeSlot, logKey, logSeq, padStart, slotKey, slotValue } from '../../node/slot-codec.ts';
import { CorruptRecordError, shorten } from '../../node/store.ts';

const NUL = '\u0000';
const key = (origin: string, tier: string, start: string, hitKey: string): string => ['s', origin, tier, start, hitKey].join(NUL);

/** The error `run` throws; fails the test unless it is a CorruptRecordError. */
function corruption(run: () => unknown): CorruptRecordError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CorruptRecordError);
    return error as CorruptRecordError;
  }
  throw new Error('expected a CorruptRecordError, got a value');
}

describe('decodeSlot', () => {
  it('reads back what slotKey and slotValue write', () => {
    expect(decodeSlot(slotKey('n1#aa', Tier.hour, 7_200_000, 'ünï'), slotValue(12, 3))).toEqual({ origin: 'n1#aa', key: 'ünï', tier: Tier.hour, start: 7_200_000, count: 12, seq: 3 });
    expect(decodeSlot(slotKey('n1#aa', Tier.lifetime, 0, 'k'), slotValue(0, 0))).toMatchObject({ tier: Tier.lifetime, start: 0, count: 0 });
  });

  const cases: [what: string, dbKey: string, dbValue: string, reason: RegExp][] = [
    ['not a slot key', `m${NUL}seq`, '1:1', /not "s", origin/],
    ['too few parts', key('n1#aa', '0', '0000000001000', '').split(NUL).slice(0, 4).join(NUL), '1:1', /not "s", origin/],
    ['an origin with a NUL byte', slotKey(`n1${NUL}x#aa`, Tier.second, 1_000, 'k'), '1:1', /origin/],
    ['an origin without incarnation', slotKey('n1', Tier.second, 1_000, 'k'), '1:1', /origin "n1" is not id#incarnation/],
    ['an empty origin', slotKey('', Tier.second, 1_000, 'k'), '1:1', /origin/],
    ['tier 5', key('n1#aa', '5', '0000000001000', 'k'), '1:1', /tier "5"/],
    ['tier " 1"', key('n1#aa', ' 1', '0000000001000', 'k'), '1:1', /tier/],
    ['tier "01"', key('n1#aa', '01', '0000000060000', 'k'), '1:1', /tier/],
    ['a start of 2^53', slotKey('n1#aa', Tier.second, 2 ** 53, 'k'), '1:1', /start "9007199254740992" is not 13 digits/],
    ['a start of 10^13', slotKey('n1#aa', Tier.second, 1e13, 'k'), '1:1', /start/],
    ['a negative start', key('n1#aa', '0', '-000000001000', 'k'), '1:1', /start/],
    ['a start that is not padded', key('n1#aa', '0', '1000', 'k'), '1:1', /13 digits/],
    ['a misaligned second start', slotKey('n1#aa', Tier.second, 1_500, 'k'), '1:1', /second bucket/],
    ['a misaligned minute start', slotKey('n1#aa', Tier.minute, 90_000, 'k'), '1:1', /minute bucket/],
    ['a misaligned day start', slotKey('n1#aa', Tier.day, 3_600_000, 'k'), '1:1', /day bucket/],
    ['a lifetime start that is not 0', slotKey('n1#aa', Tier.lifetime, 86_400_000, 'k'), '1:1', /lifetime bucket/],
    ['an empty key', slotKey('n1#aa', Tier.second, 1_000, ''), '1:1', /must not be empty/],
    ['a key with a control character', slotKey('n1#aa', Tier.second, 1_000, 'a\u0007b'), '1:1', /control characters/],
    ['a key with a NUL byte', slotKey('n1#aa', Tier.second, 1_000, `a${NUL}b`), '1:1', /control characters/],
    ['a key with a lone surrogate', slotKey('n1#aa', Tier.second, 1_000, 'a\ud800'), '1:1', /UTF-8/],
    ['a key over 256 bytes', slotKey('n1#aa', Tier.second, 1_000, 'é'.repeat(129)), '1:1', /256 bytes/],
    ['a count past 2^53', slotKey('n1#aa', Tier.second, 1_000, 'k'), '9007199254740993:1', /count "9007199254740993" is past 2\^53/],
    ['a seq past 2^53', slotKey('n1#aa', Tier.second, 1_000, 'k'), '1:99999999999999999999', /seq .* past 2\^53/],
    ['a count with a fraction', slotKey('n1#aa', Tier.second, 1_000, 'k'), '1.5:1', /<count>:<seq>/],
    ['a count in exponent form', slotKey('n1#aa', Tier.second, 1_000, 'k'), '1e3:1', /<count>:<seq>/],
    ['a negative count', slotKey('n1#aa', Tier.second, 1_000, 'k'), '-1:1', /<count>:<seq>/],
    ['a leading zero', slotKey('n1#aa', Tier.second, 1_000, 'k'), '01:1', /canonical/],
    ['no seq', slotKey('n1#aa', Tier.second, 1_000, 'k'), '1', /<count>:<seq>/],
    ['a third field', slotKey('n1#aa', Tier.second, 1_000, 'k'), '1:2:3', /<count>:<seq>/],
    ['spaces', slotKey('n1#aa', Tier.second, 1_000, 'k'), ' 1:1', /<count>:<seq>/],
  ];
  it.each(cases)('refuses %s, saying what is wrong', (_what, dbKey, dbValue, reason) => {
    const error = corruption(() => decodeSlot(dbKey, dbValue));
    expect(error.code).toBe('HITMESH_CORRUPT_RECORD');
    expect(error.message).toMatch(reason);
  });

  it('for any strings, returns a slot that writes back to the same key and value, or throws CorruptRecordError', () => {
    // Hostile units: separators, digits, controls, lone surrogates, anything.
    const unit = fc.oneof(
      fc.constantFrom(NUL, ':', '#', '0', '1', '9', 's', 'l', '-', '.', 'e', ' ', '\u0007', '\ud800', '\udc00', '\uffff'),
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    const hostile = fc.string({ unit, maxLength: 40 });
    const tierOf = (text: string): TimedTier => (Number(text) % 4) as TimedTier;
    // Parts near the grammar, so that decoding also succeeds often.
    const part = {
      origin: fc.oneof(fc.constantFrom('n1#aa', 'node-2.x#Z9', `${'a'.repeat(64)}#${'b'.repeat(32)}`, `${'a'.repeat(65)}#b`), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,8}#[A-Za-z0-9]{1,4}$/), hostile),
      tier: fc.oneof(fc.constantFrom('0', '1', '2', '3', '4'), hostile),
      start: fc.oneof(
        fc.constant('0000000000000'),
        fc.integer({ min: 0, max: 115_740 }).map((day) => padStart(day * 86_400_000)),
        fc.tuple(fc.constantFrom('0', '1', '2', '3'), fc.integer({ min: 0, max: 1e9 })).map(([t, n]) => padStart(n * [1_000, 60_000, 3_600_000, 86_400_000][tierOf(t)]!)),
        fc.nat().map(padStart),
        fc.constant(padStart(2 ** 53)),
        hostile,
      ),
      key: fc.oneof(fc.constantFrom('home', 'ünï cøde', '😀', 'k'.repeat(256), 'k'.repeat(257)), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), hostile),
      value: fc.oneof(
        fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()).map(([c, s]) => `${c}:${s}`),
        fc.constantFrom('9007199254740992:1', '1:9007199254740992', '01:1', '1.5:1', '1e3:1', ''),
        hostile,
      ),
    };
    const structured = fc.tuple(part.origin, part.tier, part.start, part.key, part.value).map(([o, t, s, k, v]) => [key(o, t, s, k), v] as const);
    const anything = fc.tuple(hostile, hostile);
    let decoded = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 4, arbitrary: structured }, { weight: 1, arbitrary: anything }), ([dbKey, dbValue]) => {
        let slot;
        try {
          slot = decodeSlot(dbKey, dbValue);
        } catch (error) {
          expect(error).toBeInstanceOf(CorruptRecordError);
          return;
        }
        decoded++;
        expect(slotKey(slot.origin, slot.tier, slot.start, slot.key)).toBe(dbKey);
        expect(slotValue(slot.count, slot.seq)).toBe(dbValue);
      }),
      { numRuns: 3_000 },
    );
    // The success branch was exercised, not only the refusals (about 60 of 3,000 runs decode; 20 leaves room for the seed).
    expect(decoded).toBeGreaterThan(20);
  });
});

describe('SlotDecoder', () => {
  it('decodes a scan exactly as decodeSlot does each record, refusals and their reasons included', () => {
    // Few prefixes (good and bad), so that many records share the one before's; keys and values good and bad.
    const prefix = fc.constantFrom(
      ['n1#aa', '0', padStart(1_000)],
      ['n1#aa', '0', padStart(2_000)],
      ['n1#aa', '1', padStart(60_000)],
      ['n1#aa', '1', padStart(90_000)],
      ['n1#aa', '4', padStart(0)],
      ['n1#ab', '0', padStart(1_000)],
      ['n1\u0000#aa', '0', padStart(1_000)],
      ['n1#aa', '5', padStart(1_000)],
      ['n1#aa', '0', '1000'],
    );
    const hitKey = fc.oneof(fc.constantFrom('home', 'ünï', 'a\u0007b', `a${NUL}b`, '', 'k'.repeat(257)), fc.string({ minLength: 1, maxLength: 6 }));
    const value = fc.oneof(fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()).map(([c, q]) => `${c}:${q}`), fc.constantFrom('01:1', '1', '9007199254740993:1', ''));
    const entry = fc.tuple(prefix, hitKey, value).map(([[o, t, st], k, v]) => [key(o, t, st, k), v] as const);
    let sharedPrefixes = 0;
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 60 }), (entries) => {
        const decoder = new SlotDecoder();
        const sorted = [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        let previousOrigin: string | undefined;
        for (const [dbKey, dbValue] of sorted) {
          const outcome = (decode: (k: string, v: string) => unknown): unknown => {
            try {
              return decode(dbKey, dbValue);
            } catch (error) {
              expect(error).toBeInstanceOf(CorruptRecordError);
              return (error as Error).message;
            }
          };
          const got = outcome(decoder.decode);
          expect(got).toEqual(outcome(decodeSlot));
          if (typeof got === 'object' && got !== null) {
            const { origin } = got as { origin: string };
            if (origin === previousOrigin) sharedPrefixes++;
            previousOrigin = origin;
          }
        }
      }),
      { numRuns: 500 },
    );
    expect(sharedPrefixes).toBeGreaterThan(100);
  });
});

describe('decodeLogRecord and logSeq', () => {
  it('read back what the replica writes', () => {
    expect(decodeLogRecord(JSON.stringify(['a', 1_000, 1, 'ünï', 0, 1_000_000]))).toEqual([
      ['a', 1_000, 1],
      ['ünï', 0, 1_000_000],
    ]);
    expect(decodeLogRecord('[]')).toEqual([]);
    expect(logSeq(logKey(42))).toBe(42);
    expect(decodeLogEntry(logKey(3), '["k",2000,5]')).toEqual({ seq: 3, increments: [['k', 2_000, 5]] });
  });

  const records: [what: string, record: string, reason: RegExp][] = [
    ['not JSON', 'not json', /not JSON/],
    ['truncated JSON', '["a",1000', /not JSON/],
    ['an object', '{"a":1}', /flat array/],
    ['a triple cut short', '["a",1000]', /flat array/],
    ['a key that is not a string', '[1,1000,1]', /key is not a string/],
    ['an empty key', '["",1000,1]', /must not be empty/],
    ['a key with a control character', '["a\\u0001",1000,1]', /control characters/],
    ['a key with a lone surrogate', '["\\ud800",1000,1]', /UTF-8/],
    ['a second that is not a multiple of 1000', '["a",1500,1]', /second 1500/],
    ['a negative second', '["a",-1000,1]', /second/],
    ['a second of 10^13', '["a",10000000000000,1]', /second/],
    ['a second as a string', '["a","1000",1]', /second "1000"/],
    ['n = 0', '["a",1000,0]', /n 0/],
    ['a fractional n', '["a",1000,1.5]', /n 1.5/],
    ['n past 2^53', '["a",1000,9007199254740993]', /n /],
    ['n null', '["a",1000,null]', /n null/],
    ['a bad second triple', '["a",1000,1,"b",1,1]', /triple 1/],
  ];
  it.each(records)('decodeLogRecord refuses %s, saying what is wrong', (_what, record, reason) => {
    expect(corruption(() => decodeLogRecord(record)).message).toMatch(reason);
  });

  it.each([
    ['not a log key', `s${NUL}0000000000000001`],
    ['no digits', `l${NUL}`],
    ['not a number', `l${NUL}seven`],
    ['not padded', `l${NUL}7`],
    ['a sign', `l${NUL}-000000000000007`],
    ['past 2^53', `l${NUL}9999999999999999`],
    ['17 digits', `l${NUL}00000000000000001`],
  ])('logSeq refuses %s', (_what, dbKey) => {
    expect(corruption(() => logSeq(dbKey)).message).toMatch(/log (key|seq)/);
  });

  it('never throws anything but CorruptRecordError, whatever the stored strings', () => {
    const json = fc.jsonValue().map((v) => JSON.stringify(v));
    const triples = fc.array(fc.tuple(fc.oneof(fc.string(), fc.jsonValue()), fc.oneof(fc.integer(), fc.double(), fc.jsonValue()), fc.oneof(fc.integer(), fc.double(), fc.jsonValue()))).map((t) => JSON.stringify(t.flat()));
    fc.assert(
      fc.property(fc.oneof(fc.string(), json, triples), fc.oneof(fc.string(), fc.nat().map(logKey)), (record, dbKey) => {
        try {
          const { increments } = decodeLogEntry(dbKey, record);
          for (const [k, second, n] of increments) {
            expect(typeof k).toBe('string');
            expect(second % 1_000).toBe(0);
            expect(n).toBeGreaterThanOrEqual(1);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(CorruptRecordError);
        }
      }),
    );
  });
});

describe('shorten', () => {
  it('keeps short text, cuts long text to the limit with an ellipsis, and never splits a surrogate pair', () => {
    expect(shorten('abc', 200)).toBe('abc');
    expect(shorten('x'.repeat(300), 200)).toHaveLength(200);
    const cut = shorten(`${'x'.repeat(198)}😀😀`, 200);
    expect(cut.length).toBeLessThanOrEqual(200);
    expect(cut.isWellFormed()).toBe(true);
  });
});
