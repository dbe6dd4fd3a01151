// Bad input never crashes a node or changes a count (SPEC section 3): every
// malformed request below gets a 4xx with a JSON {"error": "..."} body, and
// afterwards the node is healthy and every count is exactly what it was.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

interface Case {
  readonly name: string;
  readonly send: () => Promise<Answer>;
}

let node: RunningNode | undefined;
let dataDir: string | undefined;
let base = '';
let port = 0;

/** An ordinary request with fetch. */
async function http(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { method, headers: init.headers, body: init.body });
  return { status: response.status, headers: Object.fromEntries(response.headers.entries()), body: await response.text() };
}

const post = (path: string): Promise<Answer> => http('POST', path);
const get = (path: string): Promise<Answer> => http('GET', path);
const postJson = (body: string, contentType = 'application/json'): Promise<Answer> =>
  http('POST', '/hits', { headers: { 'content-type': contentType }, body });

/** One response out of raw bytes, or undefined while it is incomplete. */
function parseResponse(data: Buffer, closed: boolean): Answer | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) return undefined;
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (size === 0) break;
      if (eol + 2 + size > body.length) return undefined;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 4 + size;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (body.length < length) return undefined;
    body = body.subarray(0, length);
  } else if (!closed) {
    return undefined;
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN), headers, body: body.toString('utf8') };
}

/**
 * Write raw bytes to the node and read the first response. `halfClose` ends our
 * side after writing. Write errors (EPIPE, ECONNRESET) are ignored: the server
 * may answer and stop reading before it has the whole body; what it answered is the point.
 */
function raw(parts: readonly (string | Buffer)[], halfClose = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    let settled = false;
    const check = (closed: boolean): void => {
      if (settled) return;
      const answer = parseResponse(data, closed);
      if (answer !== undefined || closed) {
        settled = true;
        socket.destroy();
        if (answer !== undefined) resolve(answer);
        else reject(new Error(`the connection closed without a complete response; got ${JSON.stringify(data.toString('latin1'))}`));
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      check(false);
    });
    socket.on('close', () => check(true));
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
      if (halfClose) socket.end();
    });
  });
}

const head = (requestLine: string, ...headers: string[]): string =>
  [requestLine, 'Host: 127.0.0.1', ...headers, '', ''].join('\r\n');

/** A raw POST /hits: the headers as written, then the body bytes as given. */
const rawHits = (headers: string[], body: string, halfClose = false): Promise<Answer> =>
  raw([head('POST /hits HTTP/1.1', ...headers), body], halfClose);
const JSON_TYPE = 'Content-Type: application/json';

const enc = encodeURIComponent;
const OVER_LIMIT = 1024 * 1024 + 1024; // just over the default 1 MiB body limit

/** A batch that is valid JSON and valid items, padded with whitespace to over 1 MiB. */
const bigBatch = `[{"key":"big-body","n":1}${' '.repeat(OVER_LIMIT)}]`;

/** Keys that only bad requests named: each must still count zero at the end. */
const untouched = [
  'n-zero', 'n-neg', 'n-frac', 'n-exp', 'n-abc', 'n-over', 'n-huge', 'n-twice', 'n-empty', 'n-unknown',
  'batch-victim', 'batch-victim-2', 'batch-victim-3', 'str-n', 'frac-n', 'extra', 'tenk', 'big-body', 'big-hit',
  'text-plain', 'form', 'no-type', 'lie-short', 'lie-long', 'chunk-garbage', 'te-cl', 'obj', 'trailing',
  '\u00ff', '\u00c3\u00a9', 'é', 'k'.repeat(256),
];

const cases: Case[] = [
  // Keys in the path.
  { name: 'empty key: POST /hit/', send: () => post('/hit/') },
  { name: 'empty key: POST /hit (no slash)', send: () => post('/hit') },
  { name: 'key of 257 ASCII bytes', send: () => post(`/hit/${'k'.repeat(257)}`) },
  { name: 'key of 129 chars but 258 UTF-8 bytes (é)', send: () => post(`/hit/${enc('é'.repeat(129))}`) },
  { name: 'key of 65 emoji: 130 UTF-16 units, 260 UTF-8 bytes', send: () => post(`/hit/${enc('😀'.repeat(65))}`) },
  { name: 'key with %00', send: () => post('/hit/a%00b') },
  { name: 'key with %1F', send: () => post('/hit/a%1Fb') },
  { name: 'key with %7F (DEL)', send: () => post('/hit/a%7Fb') },
  { name: 'key with %C2%80 (U+0080, a C1 control)', send: () => post('/hit/a%C2%80b') },
  { name: 'key with %0A (newline)', send: () => post('/hit/a%0Ab') },
  { name: 'key with a lone surrogate %ED%A0%80', send: () => post('/hit/a%ED%A0%80b') },
  { name: 'key with invalid UTF-8 %FF', send: () => post('/hit/a%FFb') },
  { name: 'key with invalid UTF-8 %C3%28', send: () => post('/hit/a%C3%28b') },
  { name: 'key with bad percent-encoding %zz', send: () => post('/hit/a%zzb') },
  { name: 'key with a trailing %', send: () => post('/hit/ab%') },
  { name: 'path of over 1024 chars of key', send: () => post(`/hit/${'x'.repeat(1100)}`) },
  { name: 'GET /count/ with an empty key', send: () => get('/count/?window=all') },
  { name: 'GET /count/ with a control char key', send: () => get('/count/a%01b?window=all') },
  { name: 'GET /count/ with a 257-byte key', send: () => get(`/count/${'k'.repeat(257)}?window=all`) },
  // Raw bytes a client library would not send.
  { name: 'raw byte 0xFF (invalid UTF-8) in the path', send: () => raw([Buffer.from(head('POST /hit/\xff HTTP/1.1', 'Content-Length: 0'), 'latin1')]) },
  { name: 'raw UTF-8 bytes of é (not percent-encoded) in the path', send: () => raw([Buffer.from(head('POST /hit/é HTTP/1.1', 'Content-Length: 0'), 'utf8')]) },
  { name: 'raw NUL byte in the path', send: () => raw([Buffer.from(head('POST /hit/a\x00b HTTP/1.1', 'Content-Length: 0'), 'latin1')]) },
  { name: 'garbage request line', send: () => raw(['THIS IS NOT HTTP\r\n\r\n']) },
  { name: 'a 20 KiB header', send: () => raw([head('POST /hit/seed HTTP/1.1', `X-Big: ${'h'.repeat(20 * 1024)}`, 'Content-Length: 0')]) },
  // n.
  { name: 'n=0', send: () => post('/hit/n-zero?n=0') },
  { name: 'n=-1', send: () => post('/hit/n-neg?n=-1') },
  { name: 'n=1.5', send: () => post('/hit/n-frac?n=1.5') },
  { name: 'n=1e3', send: () => post('/hit/n-exp?n=1e3') },
  { name: 'n=abc', send: () => post('/hit/n-abc?n=abc') },
  { name: 'n=1000001', send: () => post('/hit/n-over?n=1000001') },
  { name: 'n=99999999999', send: () => post('/hit/n-huge?n=99999999999') },
  { name: 'n=%zz (bad percent-encoding in the query)', send: () => post('/hit/n-abc?n=%zz') },
  { name: 'n repeated: ?n=1&n=2', send: () => post('/hit/n-twice?n=1&n=2') },
  { name: 'n empty: ?n=', send: () => post('/hit/n-empty?n=') },
  { name: 'n=0 on a seeded key', send: () => post('/hit/seed?n=0') },
  { name: 'unknown query parameter on a hit', send: () => post('/hit/n-unknown?foo=1') },
  { name: 'a body over 1 MiB on POST /hit', send: () => http('POST', '/hit/big-hit', { headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(OVER_LIMIT) }) },
  // Windows and ranges.
  ...['5x', '0s', '500ms', '', '-1s', '1w', '1y', '999999999999d', '1.5s', 'ALL'].map((w) => ({
    name: `window=${w}`,
    send: () => get(`/count/seed?window=${enc(w)}`),
  })),
  { name: 'window repeated', send: () => get('/count/seed?window=all&window=60s') },
  { name: 'from > to', send: () => get('/count/seed?from=2000&to=1000') },
  { name: 'from without to', send: () => get('/count/seed?from=1000') },
  { name: 'to without from', send: () => get('/count/seed?to=1000') },
  { name: 'from=abc', send: () => get('/count/seed?from=abc&to=1000') },
  { name: 'from=-1', send: () => get('/count/seed?from=-1&to=1000') },
  { name: 'window together with from/to', send: () => get('/count/seed?window=60s&from=0&to=1000') },
  { name: 'unknown query parameter on a count', send: () => get('/count/seed?foo=1') },
  // GET /counts.
  { name: 'GET /counts without keys', send: () => get('/counts?window=all') },
  { name: 'GET /counts with 1001 keys', send: () => get(`/counts?window=all&keys=${Array.from({ length: 1001 }, (_, i) => `k${i}`).join(',')}`) },
  { name: 'GET /counts with an empty key in the list', send: () => get('/counts?window=all&keys=seed,,seed-b') },
  { name: 'GET /counts with a control char key', send: () => get('/counts?window=all&keys=seed,a%01') },
  { name: 'GET /counts with keys repeated', send: () => get('/counts?window=all&keys=seed&keys=seed-b') },
  { name: 'GET /counts with a bad window', send: () => get('/counts?window=5x&keys=seed') },
  // POST /hits: bodies.
  { name: 'malformed JSON', send: () => postJson('[{"key":"batch-victim","n":1}') },
  { name: 'JSON followed by garbage', send: () => postJson('[{"key":"trailing"}] x') },
  { name: 'empty body with content-type JSON', send: () => postJson('') },
  { name: 'a JSON object instead of an array', send: () => postJson('{"key":"obj","n":1}') },
  { name: 'JSON null', send: () => postJson('null') },
  { name: 'JSON with __proto__', send: () => postJson('[{"key":"obj","__proto__":{"n":5}}]') },
  { name: 'an item without key', send: () => postJson('[{"n":3}]') },
  { name: 'an item that is null', send: () => postJson('[null]') },
  { name: 'an item with n=0', send: () => postJson('[{"key":"batch-victim","n":0}]') },
  { name: 'an item with n="3" (a string)', send: () => postJson('[{"key":"str-n","n":"3"}]') },
  { name: 'an item with n=1.5', send: () => postJson('[{"key":"frac-n","n":1.5}]') },
  { name: 'an item with n=1000001', send: () => postJson('[{"key":"batch-victim","n":1000001}]') },
  { name: 'an item with n=null', send: () => postJson('[{"key":"batch-victim","n":null}]') },
  { name: 'an item with an extra field', send: () => postJson('[{"key":"extra","n":1,"at":0}]') },
  { name: 'an item with an empty key', send: () => postJson('[{"key":""}]') },
  { name: 'an item with a 257-byte ASCII key', send: () => postJson(JSON.stringify([{ key: 'k'.repeat(257) }])) },
  { name: 'an item with a 129-char, 258-byte key', send: () => postJson(JSON.stringify([{ key: 'é'.repeat(129) }])) },
  { name: 'an item with a control char key', send: () => postJson(JSON.stringify([{ key: 'a\u0001b' }])) },
  { name: 'an item with a lone surrogate key', send: () => postJson('[{"key":"a\\ud800b"}]') },
  { name: '10,001 items', send: () => postJson(JSON.stringify(Array.from({ length: 10_001 }, () => ({ key: 'tenk' })))) },
  { name: 'all-or-nothing: the last item has a control char', send: () => postJson(JSON.stringify([{ key: 'batch-victim', n: 5 }, { key: 'seed', n: 1 }, { key: 'bad\u0007' }])) },
  { name: 'all-or-nothing: the last item has a 258-byte key', send: () => postJson(JSON.stringify([{ key: 'batch-victim-2', n: 5 }, { key: 'seed-b' }, { key: 'é'.repeat(129) }])) },
  { name: 'all-or-nothing: the last item has n=0', send: () => postJson(JSON.stringify([{ key: 'batch-victim-3', n: 5 }, { key: 'seed' }, { key: 'seed-c', n: 0 }])) },
  { name: 'a body over 1 MiB (Content-Length)', send: () => rawHits([JSON_TYPE, `Content-Length: ${bigBatch.length}`], bigBatch) },
  {
    name: 'a body over 1 MiB (chunked, no Content-Length)',
    send: () => rawHits([JSON_TYPE, 'Transfer-Encoding: chunked'], `${bigBatch.length.toString(16)}\r\n${bigBatch}\r\n0\r\n\r\n`),
  },
  { name: 'content-type text/plain', send: () => postJson('[{"key":"text-plain"}]', 'text/plain') },
  { name: 'content-type application/x-www-form-urlencoded', send: () => postJson('key=form&n=1', 'application/x-www-form-urlencoded') },
  { name: 'content-type that does not parse', send: () => postJson('[{"key":"form"}]', 'nonsense') },
  { name: 'no content-type', send: () => rawHits(['Content-Length: 19'], '[{"key":"no-type"}]') },
  { name: 'no content-type, no body', send: () => rawHits(['Content-Length: 0'], '') },
  { name: 'lying Content-Length: shorter than the body', send: () => rawHits([JSON_TYPE, 'Content-Length: 10'], '[{"key":"lie-short","n":5}]') },
  { name: 'lying Content-Length: longer than the body, then EOF', send: () => rawHits([JSON_TYPE, 'Content-Length: 1000'], '[{"key":"lie-long","n":5}]', true) },
  { name: 'Content-Length that is not a number', send: () => rawHits([JSON_TYPE, 'Content-Length: abc'], '[]') },
  { name: 'chunked garbage', send: () => rawHits([JSON_TYPE, 'Transfer-Encoding: chunked'], 'zz\r\n[{"key":"chunk-garbage"}]\r\n0\r\n\r\n') },
  {
    name: 'both Content-Length and Transfer-Encoding',
    send: () => rawHits([JSON_TYPE, 'Content-Length: 20', 'Transfer-Encoding: chunked'], '14\r\n[{"key":"te-cl"}]  \r\n0\r\n\r\n'),
  },
  // Routes and methods.
  { name: 'unknown route', send: () => get('/nope') },
  { name: 'wrong method: GET /hit/x', send: () => get('/hit/x') },
  { name: 'wrong method: DELETE /count/x', send: () => http('DELETE', '/count/x') },
  { name: 'wrong method: PUT /hits', send: () => http('PUT', '/hits', { headers: { 'content-type': 'application/json' }, body: '[]' }) },
];

/** Counts to compare before and after: per key, window=all, window=60s and a fixed range around the seeding. */
async function snapshot(keys: readonly string[], range: string): Promise<Record<string, number[]>> {
  const result: Record<string, number[]> = {};
  for (const key of keys) {
    const counts: number[] = [];
    for (const query of ['window=all', 'window=60s', range]) {
      const answer = await get(`/count/${enc(key)}?${query}`);
      expect(answer.status, `GET /count/${key}?${query}`).toBe(200);
      counts.push((JSON.parse(answer.body) as { count: number }).count);
    }
    result[key] = counts;
  }
  return result;
}

const seeded = ['seed', 'seed-b', 'seed-c', 'ünï', 'é'.repeat(128)];
let seedRange = '';
let before: Record<string, number[]> = {};

describe('bad input: 4xx with a JSON error, no crash, no count changes', () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hitmesh-bad-input-'));
    const cli = parseCli(['--id', 'bad', '--port', '0', '--data', dataDir, '--log-level', 'silent'], {});
    if (cli.kind !== 'run') throw new Error('parseCli did not return a run config');
    node = await startNode(cli.config);
    base = node.url;
    port = Number(new URL(base).port);

    const from = Date.now() - 1_000;
    // The last key is exactly 256 bytes of UTF-8: the longest key there is.
    for (const path of ['/hit/seed?n=7', '/hit/seed', `/hit/${enc('é'.repeat(128))}`]) {
      expect((await post(path)).status, path).toBe(200);
    }
    const batch = await postJson(JSON.stringify([{ key: 'seed-b', n: 3 }, { key: 'seed-c' }, { key: 'ünï', n: 2 }, { key: 'seed', n: 4 }]));
    expect(batch.status).toBe(200);
    expect(JSON.parse(batch.body)).toEqual({ accepted: 10 });
    seedRange = `from=${from}&to=${Date.now() + 2_000}`;
    before = await snapshot([...seeded, ...untouched], seedRange);
    expect(before).toMatchObject({ seed: [12, 12, 12], 'seed-b': [3, 3, 3], 'seed-c': [1, 1, 1], ünï: [2, 2, 2], ['é'.repeat(128)]: [1, 1, 1] });
    for (const key of untouched) expect(before[key], key).toEqual([0, 0, 0]);
  });

  afterAll(async () => {
    await node?.stop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it.each(cases)('$name', async ({ send }) => {
    const answer = await send();
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(400);
    expect(answer.status, answer.body).toBeLessThan(500);
    expect(answer.headers['content-type'], answer.body).toMatch(/^application\/json/);
    const body: unknown = JSON.parse(answer.body);
    const error = (body as { error?: unknown } | null)?.error;
    expect(typeof error, answer.body).toBe('string');
    // It says what is wrong, not just the status line, and nothing else rides along.
    expect(Object.keys(body as object), answer.body).toEqual(['error']);
    expect(['Bad Request', 'Not Found', 'Client Error', ''], answer.body).not.toContain(error);
  });

  it('is still healthy and every count is unchanged', async () => {
    const health = await get('/healthz');
    expect(health.status).toBe(200);
    expect(await snapshot([...seeded, ...untouched], seedRange)).toEqual(before);
  });
});
