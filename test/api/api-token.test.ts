/**
 * --api-token (SPEC section 3) on a real listening node: every route but the
 * probes and the static pages answers 401 with {"error"} without the token,
 * with a wrong one, or under another scheme, and a refused request changes
 * nothing; with the token every route answers as it would on an open node.
 * The client sends it, and the dashboard asks for it in a real browser.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMatches, isOpenRoute } from '../../api/auth.ts';
import { registeredRoutes } from '../../api/openapi.ts';
import { HitmeshClient, HitmeshHttpError } from '../../client/index.ts';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

const TOKEN = 'c0ffee-0123456789abcdef-token';

let node: RunningNode;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hitmesh-token-'));
  const cli = parseCli(['--id', 'guarded', '--port', '0', '--data', dataDir, '--log-level', 'silent', '--api-token', TOKEN], {});
  if (cli.kind !== 'run') throw new Error('expected a run config');
  node = await startNode(cli.config);
});

afterAll(async () => {
  await node?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function send(method: string, path: string, authorization?: string, body?: unknown): Promise<{ status: number; body: unknown; challenge: string | null }> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${node.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // HTML and metrics stay text.
  }
  return { status: res.status, body: parsed, challenge: res.headers.get('www-authenticate') };
}

/** A concrete path for a route pattern. */
const pathOf = (url: string): string => url.replace(':key', 'k').replace(':id', 'nobody').replace('*', 'index.html');

const WRONG = [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer ', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`, TOKEN, `Bearer ${TOKEN} extra`];

describe('--api-token', () => {
  it('every route but the open ones is a 401 without the right token, and answers as usual with it', async () => {
    const routes = registeredRoutes(node.app);
    const guarded = routes.filter((r) => !isOpenRoute(r.url));
    // The guard must cover the API, not just exist: these are what hold or change counts.
    for (const must of ['POST /hit/:key', 'POST /hits', 'GET /count/:key', 'GET /counts', 'GET /top', 'GET /cluster', 'DELETE /cluster/members/:id', 'GET /metrics']) {
      expect(guarded.map((r) => `${r.method} ${r.url}`), must).toContain(must);
    }
    for (const route of guarded) {
      for (const authorization of WRONG) {
        const answer = await send(route.method, pathOf(route.url), authorization);
        expect(answer.status, `${route.method} ${route.url} with ${String(authorization)}`).toBe(401);
        expect((answer.body as { error: string }).error).toMatch(/API token/);
        expect(answer.challenge).toMatch(/^Bearer/);
      }
      const allowed = await send(route.method, pathOf(route.url), `Bearer ${TOKEN}`);
      expect(allowed.status, `${route.method} ${route.url} with the token`).not.toBe(401);
    }
    // The scheme is case-insensitive (RFC 7235); the token is not.
    expect((await send('GET', '/count/k', `bearer ${TOKEN}`)).status).toBe(200);
    expect((await send('GET', '/count/k', `Bearer ${TOKEN.toUpperCase()}`)).status).toBe(401);
  });

  it('the probes and the static pages are open; a path no route has is a 401, then a 404 with the token', async () => {
    for (const path of ['/healthz', '/readyz', '/', '/dashboard/dashboard.js', '/openapi.json', '/docs']) {
      const answer = await send('GET', path);
      expect(answer.status, path).not.toBe(401);
      expect(answer.status, path).toBeLessThan(400);
    }
    expect((await send('GET', '/no/such/route')).status).toBe(401);
    expect((await send('GET', '/no/such/route', `Bearer ${TOKEN}`)).status).toBe(404);
    // A bad query on a guarded route says nothing of the query to a stranger.
    expect((await send('GET', '/counts?keys=%zz')).status).toBe(401);
  });

  it('a refused hit or batch changes nothing, and the 401s are counted in /metrics', async () => {
    expect((await send('POST', '/hit/refused?n=5')).status).toBe(401);
    expect((await send('POST', '/hits', 'Bearer nope-nope-nope-nope', [{ key: 'refused', n: 7 }])).status).toBe(401);
    const count = await send('GET', '/count/refused?window=all', `Bearer ${TOKEN}`);
    expect((count.body as { count: number }).count).toBe(0);
    expect((await send('POST', '/hit/refused?n=2', `Bearer ${TOKEN}`)).status).toBe(200);
    expect(((await send('GET', '/count/refused?window=all', `Bearer ${TOKEN}`)).body as { count: number }).count).toBe(2);
    const metrics = String((await send('GET', '/metrics', `Bearer ${TOKEN}`)).body);
    const refused = /hitmesh_http_errors_total\{[^}]*status_code="401"[^}]*\} (\d+)/.exec(metrics);
    expect(Number(refused?.[1] ?? 0)).toBeGreaterThan(0);
  });

  it('the client sends its token; without one it gets a HitmeshHttpError 401, not retries', async () => {
    const withToken = new HitmeshClient({ urls: [node.url], token: TOKEN, retries: 0 });
    await withToken.hit('from-client', { n: 3 });
    expect((await withToken.count('from-client', { window: 'all' })).count).toBe(3);
    const without = new HitmeshClient({ urls: [node.url], retries: 2 });
    const error = await without.hit('from-client').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HitmeshHttpError);
    expect((error as HitmeshHttpError).status).toBe(401);
    expect((await withToken.count('from-client', { window: 'all' })).count).toBe(3);
  });

  it('bearerMatches: the exact token after Bearer, nothing else', () => {
    const expected = createHash('sha256').update(TOKEN).digest();
    expect(bearerMatches(`Bearer ${TOKEN}`, expected)).toBe(true);
    expect(bearerMatches(`BEARER \t${TOKEN} `, expected)).toBe(true);
    for (const header of [...WRONG, `Bearer  ${TOKEN}x`, `Bearer\n${TOKEN}`, `xBearer ${TOKEN}`]) expect(bearerMatches(header, expected), String(header)).toBe(false);
    // The empty token's digest must not open the door to a header with no token.
    expect(bearerMatches(undefined, createHash('sha256').update('').digest())).toBe(false);
  });
});

describe('the dashboard on a node with --api-token', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('asks for the token, drops a wrong one, and shows the node once given the right one', async () => {
    const page = await browser.newPage();
    await page.goto(node.url);
    const form = page.locator('#token-form');
    await form.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#connection').textContent()).toMatch(/API token/);
    expect(await page.locator('#node-id').textContent()).toBe('');
    await page.fill('#token', 'wrong-token-wrong-token');
    await page.click('#token-form button');
    // Refused: asked again, and nothing of the node is shown.
    await form.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem('hitmesh-api-token'))).toBeNull();
    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    await page.locator('#node-id', { hasText: /^guarded/ }).waitFor({ timeout: 10_000 });
    expect(await form.isVisible()).toBe(false);
    // Kept for this tab: a reload does not ask again.
    await page.reload();
    await page.locator('#node-id', { hasText: /^guarded/ }).waitFor({ timeout: 10_000 });
    expect(await form.isVisible()).toBe(false);
    await page.close();
  });
});
