/**
 * One encoding for keys on every route (SPEC section 3): UTF-8 as given,
 * percent-decoded the same way in paths and query strings, `+` a plus sign
 * everywhere, `%2C` a comma. Every valid key hit through POST /hit/:key and
 * POST /hits reads back identically through GET /count/:key, GET /counts?key=
 * and (when it holds no comma) GET /counts?keys=, on a real listening node
 * with a real HTTP client.
 */
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyProblem, MAX_KEY_BYTES } from '../../crdt/key.ts';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

let node: RunningNode | undefined;
let dataDir: string | undefined;
let base = '';

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hitmesh-keys-'));
  const cli = parseCli(['--id', 'keys', '--port', '0', '--data', dataDir, '--log-level', 'silent'], {});
  if (cli.kind !== 'run') throw new Error('expected a run config');
  node = await startNode(cli.config);
  base = node.url;
});

afterAll(async () => {
  await node?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const enc = encodeURIComponent;

/**
 * A path segment that is exactly "." or ".." is resolved away by every URL
 * client (fetch, curl, browsers) before it is sent; node:http sends a path as
 * given, so those two keys go that way (README: keys).
 */
const dotSegment = (key: string): boolean => key === '.' || key === '..';

async function send(method: 'GET' | 'POST', path: string, json?: unknown): Promise<Answer> {
  const init = json === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) };
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The same with the path sent byte for byte as given. */
function sendVerbatim(method: 'GET' | 'POST', path: string): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}

const pathRequest = (key: string, method: 'GET' | 'POST', path: string): Promise<Answer> => (dotSegment(key) ? sendVerbatim(method, path) : send(method, path));

function ok(answer: Answer, what: string): Record<string, unknown> {
  expect(answer.status, `${what}: ${JSON.stringify(answer.body)}`).toBe(200);
  return answer.body as Record<string, unknown>;
}

/** The counts of an answer of GET /counts, as [key, count] pairs in the answer's order. */
const countsOf = (body: Record<string, unknown>): [string, unknown][] => Object.entries(body.counts as Record<string, unknown>);

// Characters that mean something in a URL or to a parser, and text a JSON or object parser may treat specially.
const special = ['+', '%', ',', ' ', '/', '?', '#', '&', '=', ';', ':', '@', '.', '~', '%2B', '%2C', '%25', '%zz', '\\', '"', "'", '<', '>', '[', ']', '{', '}', '|', '^', '`'];
const words = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'c++', 'a b', 'a+b', '1+1=2', 'x,y', '.', '..', 'ä', 'ß', 'é', 'e\u0301', '😀', '𝄞', '中文', 'ﬁ', 'İ', '\u200b', '\ufeff'];
const longKeys = ['k'.repeat(MAX_KEY_BYTES), 'é'.repeat(MAX_KEY_BYTES / 2), '😀'.repeat(MAX_KEY_BYTES / 4), `${'+'.repeat(MAX_KEY_BYTES - 4)}😀`, '%'.repeat(MAX_KEY_BYTES)];

const piece = fc.oneof(
  fc.constantFrom(...special),
  fc.constantFrom(...words),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }),
);
const validKey = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...words, ...special, ...longKeys) },
  { weight: 6, arbitrary: fc.array(piece, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')) },
).filter((key) => keyProblem(key) === undefined);

describe('keys read the same through every route', () => {
  it('the longest and most special keys are valid keys (the generator is not vacuous)', () => {
    for (const key of [...longKeys, ...words]) expect(keyProblem(key), JSON.stringify(key)).toBeUndefined();
  });

  it('every valid key hit through /hit/:key and /hits reads back through /count/:key, /counts?key= and /counts?keys=', async () => {
    const totals = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(validKey, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 9 }), async (keys, n) => {
        for (const key of keys) {
          const single = ok(await pathRequest(key, 'POST', `/hit/${enc(key)}?n=${n}`), `POST /hit/${enc(key)}`);
          expect(single.key).toBe(key);
        }
        ok(await send('POST', '/hits', keys.map((key) => ({ key }))), 'POST /hits');
        for (const key of keys) totals.set(key, (totals.get(key) ?? 0) + n + 1);

        for (const key of keys) {
          const one = ok(await pathRequest(key, 'GET', `/count/${enc(key)}?window=all`), `GET /count/${enc(key)}`);
          expect(one).toMatchObject({ key, count: totals.get(key) });
          const byKey = ok(await send('GET', `/counts?window=all&key=${enc(key)}`), `GET /counts?key=${enc(key)}`);
          expect(countsOf(byKey)).toEqual([[key, totals.get(key)]]);
          if (!key.includes(',')) {
            const byKeys = ok(await send('GET', `/counts?window=all&keys=${enc(key)}`), `GET /counts?keys=${enc(key)}`);
            expect(countsOf(byKeys)).toEqual([[key, totals.get(key)]]);
          }
        }
        // Several at once: repeated key= holds any key; keys= any without a comma.
        const expected = Object.fromEntries(keys.map((key) => [key, totals.get(key)]));
        const repeated = ok(await send('GET', `/counts?window=all&${keys.map((key) => `key=${enc(key)}`).join('&')}`), 'GET /counts?key=…&key=…');
        expect(Object.fromEntries(countsOf(repeated))).toEqual(expected);
        if (keys.every((key) => !key.includes(','))) {
          const listed = ok(await send('GET', `/counts?window=all&keys=${keys.map(enc).join(',')}`), 'GET /counts?keys=a,b');
          expect(Object.fromEntries(countsOf(listed))).toEqual(expected);
        }
      }),
      // The named cases always run, whatever the seed.
      { numRuns: 120, examples: [[['.', '..', '__proto__', 'c++'], 1], [longKeys, 2], [[...special.slice(0, 4)], 3], [['a,b', 'x y', '%2C', '😀,𝄞'], 1]] },
    );
  });

  it('+ is a plus sign in the path and the query; %2C is a comma; a comma in keys= separates', async () => {
    // Keys of their own (the property above may hit "c++" too).
    ok(await send('POST', '/hit/x-c++'), 'POST /hit/x-c++');
    ok(await send('POST', '/hit/x-a%2Cb?n=2'), 'POST /hit/x-a%2Cb');
    ok(await send('POST', '/hit/x-a%20b?n=3'), 'POST /hit/x-a%20b');
    expect(ok(await send('GET', '/counts?window=all&keys=x-c++'), 'keys=x-c++').counts).toEqual({ 'x-c++': 1 });
    expect(ok(await send('GET', '/counts?window=all&keys=x-c%2B%2B'), 'keys=x-c%2B%2B').counts).toEqual({ 'x-c++': 1 });
    expect(ok(await send('GET', '/counts?window=all&key=x-a,b'), 'key=x-a,b').counts).toEqual({ 'x-a,b': 2 });
    expect(ok(await send('GET', '/counts?window=all&key=x-a%2Cb&key=x-c%2B%2B'), 'key=x-a%2Cb&key=x-c%2B%2B').counts).toEqual({ 'x-a,b': 2, 'x-c++': 1 });
    // keys= splits on the decoded comma: two other keys, never hit here (the
    // property may hit "b", so their counts are read first, one key= each).
    const apart = ok(await send('GET', '/counts?window=all&key=x-a&key=b'), 'key=x-a&key=b').counts;
    expect(ok(await send('GET', '/counts?window=all&keys=x-a%2Cb'), 'keys=x-a%2Cb').counts).toEqual(apart);
    expect(Object.keys(apart as object).sort()).toEqual(['b', 'x-a']);
    expect(ok(await send('GET', '/counts?window=all&keys=x-a%20b,x-c++'), 'keys=x-a%20b,x-c++').counts).toEqual({ 'x-a b': 3, 'x-c++': 1 });
    expect(ok(await send('GET', '/counts?window=all&keys=x-a+b'), 'keys=x-a+b').counts).toEqual({ 'x-a+b': 0 });
  });

  it('bad percent-encoding in a query is a 400 that says so; a parameter given twice is a 400 that names it', async () => {
    for (const path of ['/counts?keys=%zz', '/counts?key=%FF', '/counts?keys=a%ED%A0%80', '/count/k?window=%', '/hit/k?n=%zz', '/counts?keys=a&%zz=1']) {
      const answer = await send(path.startsWith('/hit') ? 'POST' : 'GET', path);
      expect(answer.status, `${path}: ${JSON.stringify(answer.body)}`).toBe(400);
      expect((answer.body as { error: string }).error, path).toMatch(/percent-encod/);
    }
    for (const [path, name] of [['/counts?keys=a&keys=b', 'keys'], ['/count/k?window=1h&window=2h', 'window'], ['/hit/twice?n=1&n=2', 'n']] as const) {
      const answer = await send(path.startsWith('/hit') ? 'POST' : 'GET', path);
      expect(answer.status, `${path}: ${JSON.stringify(answer.body)}`).toBe(400);
      expect((answer.body as { error: string }).error, path).toMatch(new RegExp(`"${name}".*more than once`));
    }
    const neither = await send('GET', '/counts?window=all');
    expect(neither.status).toBe(400);
    expect((neither.body as { error: string }).error).toMatch(/keys=.*key=/);
    const unknown = await send('GET', '/count/k?key=k');
    expect(unknown.status).toBe(400);
    expect((unknown.body as { error: string }).error).toMatch(/unknown parameter "key"/);
    const tooMany = await send('GET', `/counts?${Array.from({ length: 600 }, (_, i) => `key=k${i}`).join('&')}&keys=${Array.from({ length: 401 }, (_, i) => `j${i}`).join(',')}`);
    expect(tooMany.status).toBe(400);
    expect(ok(await send('GET', '/count/twice?window=all'), 'twice').count).toBe(0);
  });
});
