/**
 * The client above HTTP, with a fake fetch: what it sends (paths, encoding,
 * tokens), what it retries and where, and how errors come out.
 */
import { describe, expect, it } from 'vitest';
import { HitmeshClient, HitmeshHttpError, HitmeshInputError, HitmeshTimeoutError, HitmeshUnavailableError, HitmeshAckTimeoutError, type HitmeshClientOptions } from '../../client/index.ts';

interface SeenRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

type Reply = { status: number; body: unknown } | 'network-error' | 'hang';

/** A fetch that records each request and answers from `script` (by request order, then `fallback`). */
function fakeFetch(script: (request: SeenRequest, index: number) => Reply): { fetch: typeof fetch; seen: SeenRequest[] } {
  const seen: SeenRequest[] = [];
  const impl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const request: SeenRequest = { url: input instanceof Request ? input.url : input.toString(), method: init?.method ?? 'GET', headers, body: typeof init?.body === 'string' ? init.body : undefined };
    seen.push(request);
    const reply = script(request, seen.length - 1);
    if (reply === 'network-error') throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    if (reply === 'hang') {
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'TimeoutError')));
      });
    }
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    return new Response(text, { status: reply.status, headers: { 'content-type': 'application/json' } });
  };
  return { fetch: impl, seen };
}

const URLS = ['http://n1.test:1', 'http://n2.test:2', 'http://n3.test:3'];
const fast = (extra: Partial<HitmeshClientOptions> & { fetch: typeof fetch }): HitmeshClient =>
  new HitmeshClient({ urls: URLS, retries: 5, backoff: { baseMs: 1, maxMs: 2 }, timeoutMs: 1_000, ...extra });
const hitAnswer = { key: 'k', n: 1, node: 'n', at: 1 };

describe('retries and failover', () => {
  it('reuses one Idempotency-Key on every attempt across nodes, moving on to the next node each time', async () => {
    const { fetch, seen } = fakeFetch((_r, i) => (i === 0 ? 'network-error' : i === 1 ? { status: 503, body: { error: 'shutting down' } } : i === 2 ? { status: 500, body: { error: 'x' } } : { status: 200, body: hitAnswer }));
    const client = fast({ fetch });
    await expect(client.hit('k')).resolves.toEqual(hitAnswer);
    expect(seen).toHaveLength(4);
    const tokens = new Set(seen.map((r) => r.headers['idempotency-key']));
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.map((r) => new URL(r.url).host)).toEqual(['n1.test:1', 'n2.test:2', 'n3.test:3', 'n1.test:1']);
    // A second logical hit gets a new token and starts on the next node.
    await client.hit('k');
    expect(seen[4]?.headers['idempotency-key']).not.toBe(seen[0]?.headers['idempotency-key']);
    expect(new URL(seen[4]?.url ?? '').host).toBe('n2.test:2');
  });

  it('sends a given idempotency key as it is', async () => {
    const { fetch, seen } = fakeFetch(() => ({ status: 200, body: hitAnswer }));
    await fast({ fetch }).hit('k', { idempotencyKey: 'mine-1' });
    expect(seen[0]?.headers['idempotency-key']).toBe('mine-1');
  });

  it('gives every batch item without an id one, the same on every retry, and keeps given ids', async () => {
    const { fetch, seen } = fakeFetch((_r, i) => (i < 2 ? { status: 429, body: { error: 'slow down' } } : { status: 200, body: { accepted: 3, duplicates: 0 } }));
    await expect(fast({ fetch }).hits([{ key: 'a', n: 2 }, { key: 'b', id: 'given' }])).resolves.toEqual({ accepted: 3, duplicates: 0 });
    expect(seen).toHaveLength(3);
    const bodies = seen.map((r) => JSON.parse(r.body ?? 'null') as { key: string; n?: number; id: string }[]);
    expect(new Set(seen.map((r) => r.body)).size).toBe(1);
    expect(bodies[0]?.[0]).toMatchObject({ key: 'a', n: 2 });
    expect(bodies[0]?.[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(bodies[0]?.[1]).toEqual({ key: 'b', id: 'given' });
    expect(seen[0]?.headers['content-type']).toBe('application/json');
  });

  it.each([400, 401, 404, 413, 415, 422])('throws a %i at once, without retrying', async (status) => {
    const { fetch, seen } = fakeFetch(() => ({ status, body: { error: 'what is wrong' } }));
    const error = await fast({ fetch }).hit('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HitmeshHttpError);
    expect(error).toMatchObject({ status, code: `HITMESH_HTTP_${status}`, serverMessage: 'what is wrong' });
    expect(seen).toHaveLength(1);
  });

  it('throws HitmeshUnavailableError with every cause when the retries run out', async () => {
    const { fetch, seen } = fakeFetch((_r, i) => (i % 2 === 0 ? 'network-error' : { status: 502, body: 'bad gateway' }));
    const error = await fast({ fetch, retries: 3 }).count('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HitmeshUnavailableError);
    const causes = (error as HitmeshUnavailableError).causes;
    expect(seen).toHaveLength(4);
    expect(causes.map((c) => c.error.code)).toEqual(['HITMESH_NETWORK', 'HITMESH_HTTP_502', 'HITMESH_NETWORK', 'HITMESH_HTTP_502']);
    expect(causes.map((c) => new URL(c.url).host)).toEqual(['n1.test:1', 'n2.test:2', 'n3.test:3', 'n1.test:1']);
    expect((error as HitmeshUnavailableError).code).toBe('HITMESH_UNAVAILABLE');
  });

  it('times out each attempt and fails over; the timeout is a typed cause', async () => {
    const { fetch, seen } = fakeFetch((_r, i) => (i === 0 ? 'hang' : { status: 200, body: { ready: true } }));
    await expect(fast({ fetch, timeoutMs: 30 }).ready()).resolves.toEqual({ ready: true });
    expect(seen).toHaveLength(2);
    const { fetch: hanging } = fakeFetch(() => 'hang');
    const error = await fast({ fetch: hanging, timeoutMs: 20, retries: 1 }).health().catch((e: unknown) => e);
    expect((error as HitmeshUnavailableError).causes.map((c) => c.error)).toEqual([expect.any(HitmeshTimeoutError), expect.any(HitmeshTimeoutError)]);
  });

  it('retries an ack= 504 with the same token and surfaces HitmeshAckTimeoutError when it runs out', async () => {
    const { fetch, seen } = fakeFetch(() => ({ status: 504, body: { error: '2 of the 3 members', acked: 2, needed: 3 } }));
    const error = await fast({ fetch, retries: 2 }).hit('k', { ack: 'all', timeoutMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HitmeshAckTimeoutError);
    expect(error).toMatchObject({ code: 'HITMESH_ACK_TIMEOUT', acked: 2, needed: 3 });
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(seen[0]?.url).toBe('http://n1.test:1/hit/k?ack=all&timeout=10ms');
  });

  it('sends the bearer token', async () => {
    const { fetch, seen } = fakeFetch(() => ({ status: 200, body: 'hitmesh_up 1\n' }));
    await expect(fast({ fetch, token: 's3cret' }).metrics()).resolves.toBe('hitmesh_up 1\n');
    expect(seen[0]?.headers.authorization).toBe('Bearer s3cret');
  });
});

describe('breakers in the client', () => {
  it('skips a node whose breaker is open and probes it again after openMs', async () => {
    let clock = 0;
    let n1Down = true;
    const { fetch, seen } = fakeFetch((r) => (r.url.includes('n1.test') && n1Down ? 'network-error' : { status: 200, body: hitAnswer }));
    const client = new HitmeshClient({ urls: URLS.slice(0, 2), retries: 1, backoff: { baseMs: 1, maxMs: 1 }, breaker: { failures: 2, openMs: 1_000 }, fetch, now: () => clock });
    // Requests start on n1, n2, n1, n2 ...: two of them fail on n1 first, which opens its breaker.
    for (let i = 0; i < 4; i++) await client.hit('k');
    expect(client.nodes().map((n) => n.breaker)).toEqual(['open', 'closed']);
    const before = seen.length;
    for (let i = 0; i < 4; i++) await client.hit('k');
    expect(seen.slice(before).every((r) => r.url.includes('n2.test'))).toBe(true);
    clock = 1_000;
    n1Down = false;
    expect(client.nodes()[0]?.breaker).toBe('half-open');
    await client.hit('k');
    await client.hit('k');
    expect(seen.slice(-2).some((r) => r.url.includes('n1.test'))).toBe(true);
    expect(client.nodes()[0]?.breaker).toBe('closed');
  });

  it('tries the longest-open node when every breaker is open, rather than failing untried', async () => {
    let clock = 0;
    const { fetch, seen } = fakeFetch(() => 'network-error');
    const client = new HitmeshClient({ urls: URLS.slice(0, 2), retries: 0, backoff: { baseMs: 1, maxMs: 1 }, breaker: { failures: 1, openMs: 60_000 }, fetch, now: () => clock });
    await expect(client.health()).rejects.toBeInstanceOf(HitmeshUnavailableError); // n1 opens at 0
    clock = 10;
    await expect(client.health()).rejects.toBeInstanceOf(HitmeshUnavailableError); // n2 opens at 10
    expect(client.nodes().map((n) => n.breaker)).toEqual(['open', 'open']);
    clock = 20;
    await expect(client.health()).rejects.toBeInstanceOf(HitmeshUnavailableError);
    expect(seen.map((r) => new URL(r.url).host)).toEqual(['n1.test:1', 'n2.test:2', 'n1.test:1']);
  });

  it('does not count a quorum 504 or a 4xx against the node', async () => {
    const { fetch } = fakeFetch((r) => (r.url.includes('/count/') ? { status: 504, body: { error: 'read', answered: ['n1'], needed: 2 } } : { status: 404, body: { error: 'no' } }));
    const client = new HitmeshClient({ urls: URLS.slice(0, 1), retries: 3, backoff: { baseMs: 1, maxMs: 1 }, breaker: { failures: 1, openMs: 60_000 }, fetch });
    await expect(client.count('k', { read: 'all' })).rejects.toBeInstanceOf(HitmeshUnavailableError);
    await expect(client.forgetMember('n9')).rejects.toMatchObject({ code: 'HITMESH_HTTP_404' });
    expect(client.nodes()[0]?.breaker).toBe('closed');
  });
});

describe('paths and encoding', () => {
  const recorder = () => fakeFetch(() => ({ status: 200, body: {} }));

  it('percent-encodes odd keys in paths the way the server decodes them', async () => {
    const { fetch, seen } = recorder();
    const client = fast({ fetch });
    const odd = ['a+b', 'a b', 'a/b', 'x,y', '100%', 'é ✓', 'q?x=1&y#z', '__proto__'];
    for (const key of odd) await client.hit(key, { n: 2 });
    const paths = seen.map((r) => new URL(r.url).pathname);
    expect(paths).toEqual(odd.map((key) => `/hit/${encodeURIComponent(key)}`));
    expect(paths[0]).toBe('/hit/a%2Bb');
    expect(paths[1]).toBe('/hit/a%20b');
    expect(seen.map((r) => decodeURIComponent(new URL(r.url).pathname.slice('/hit/'.length)))).toEqual(odd);
    expect(new URL(seen[0]?.url ?? '').search).toBe('?n=2');
  });

  it('names /counts keys with repeated key=, so commas and plus signs survive', async () => {
    const { fetch, seen } = recorder();
    await fast({ fetch }).counts(['a,b', 'c+d', 'e f'], { window: '5m', read: 'majority', timeoutMs: 250 });
    expect(seen[0]?.url).toBe('http://n1.test:1/counts?key=a%2Cb&key=c%2Bd&key=e%20f&window=5m&read=majority&timeout=250ms');
  });

  it('builds count and top queries with from/to, k and prefix', async () => {
    const { fetch, seen } = recorder();
    const client = fast({ fetch });
    await client.count('k', { from: 1000, to: 2000 });
    await client.top({ window: 'all', k: 3, prefix: 'p+q' });
    await client.cluster();
    await client.forgetMember('n 2');
    expect(seen.map((r) => `${r.method} ${r.url.replace(/^http:\/\/n[0-9]\.test:[0-9]/, '')}`)).toEqual([
      'GET /count/k?from=1000&to=2000',
      'GET /top?k=3&prefix=p%2Bq&window=all',
      'GET /cluster',
      'DELETE /cluster/members/n%202',
    ]);
  });

  it('refuses keys a path cannot carry before sending anything', async () => {
    const { fetch, seen } = recorder();
    const client = fast({ fetch });
    for (const key of ['.', '..', '']) await expect(client.hit(key)).rejects.toBeInstanceOf(HitmeshInputError);
    await expect(client.counts([])).rejects.toBeInstanceOf(HitmeshInputError);
    expect(seen).toHaveLength(0);
  });

  it('refuses bad options at construction', () => {
    const { fetch } = recorder();
    expect(() => new HitmeshClient({ urls: [], fetch })).toThrow(RangeError);
    expect(() => new HitmeshClient({ urls: ['ftp://x'], fetch })).toThrow(RangeError);
    expect(() => new HitmeshClient({ urls: URLS, retries: 21, fetch })).toThrow(RangeError);
    expect(() => new HitmeshClient({ urls: URLS, backoff: { baseMs: 10, maxMs: 5 }, fetch })).toThrow(RangeError);
    expect(() => new HitmeshClient({ urls: URLS, breaker: { failures: 0, openMs: 1 }, fetch })).toThrow(RangeError);
  });
});
