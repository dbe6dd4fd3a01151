/**
 * The dashboard at GET /, in a real browser (Debian's chromium driven by
 * playwright-core) against a real 2-node cluster: hits show in the top list
 * and as hits/s per node, a clicked key gets its chart, keys are shown as
 * text, and a peer killed with SIGKILL turns to the down state.
 * With HITMESH_SCREENSHOT=<path> a full-page screenshot is saved there.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, getJson, httpRequest, killAllNodes, makeTempDir, removeTempDirs, sleep, spawnNode, type NodeProcess } from '../process/node-process.ts';

/** Suspect after 3 and down after 6 sync intervals (README, Running a node): down 1.5 s after the last contact. */
const SYNC_INTERVAL = '250ms';
/** An upper bound for the page to show a state (failure detection + one poll + slack on 2 busy cores), not a speed claim. */
const SHOWN_WITHIN_MS = 15_000;
/** A key that would run script if it were ever put in as HTML. */
const HOSTILE_KEY = '<img src=x onerror="window.__pwned=1">';

interface ClusterAnswer {
  readonly node: { readonly id: string; readonly hits: number };
  readonly peers: readonly { readonly id: string; readonly state: string; readonly hits: number | null }[];
}

async function hit(node: NodeProcess, key: string, n: number): Promise<void> {
  const res = await httpRequest('POST', `${node.url}/hit/${encodeURIComponent(key)}?n=${n}`);
  if (res.status !== 200) throw new Error(`hit ${key} on ${node.id}: ${res.status} ${res.body}`);
}

async function cluster(node: NodeProcess): Promise<ClusterAnswer> {
  return (await getJson(`${node.url}/cluster`)) as ClusterAnswer;
}

async function until(what: string, check: () => Promise<boolean>, deadlineMs = SHOWN_WITHIN_MS): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await sleep(100);
  }
}

/** What the test reads of a canvas (the test is compiled without the DOM types). */
interface CanvasLike {
  readonly width: number;
  readonly height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { readonly data: ArrayLike<number> } } | null;
}

/** The text of the cell of `column` (by class) in the row of node `id`. */
const nodeCell = (page: Page, id: string, column: string) => page.locator(`#nodes tr[data-node="${id}"] td.${column}`);

describe('dashboard at GET /', () => {
  let n1: NodeProcess;
  let n2: NodeProcess;
  let browser: Browser;
  let page: Page;
  const foreignRequests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const [p1, p2, d1, d2] = await Promise.all([freePort(), freePort(), makeTempDir(), makeTempDir()]);
    const flags = (peer: number) => ['--peers', `127.0.0.1:${peer}`, '--sync-interval', SYNC_INTERVAL];
    [n1, n2] = await Promise.all([
      spawnNode({ id: 'n1', port: p1, dataDir: d1, extraArgs: flags(p2) }),
      spawnNode({ id: 'n2', port: p2, dataDir: d2, extraArgs: flags(p1) }),
    ]);
    await until('n1 sees n2 up', async () => (await cluster(n1)).peers.some((p) => p.id === 'n2' && p.state === 'up'));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('request', (request) => {
      if (!request.url().startsWith(`${n1.url}/`)) foreignRequests.push(request.url());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await killAllNodes();
    await removeTempDirs();
  });

  it('shows hits, top keys, a key chart and a peer going down', async () => {
    const response = await page.goto(`${n1.url}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
    // The first poll is in: both nodes listed and up, so every hit from here on makes a rate.
    await page.locator('#nodes tr[data-node="n2"][data-state="up"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    await expect(page.locator('#nodes tr[data-node="n1"]').getAttribute('data-state')).resolves.toBe('up');

    await hit(n1, 'alpha', 5);
    await hit(n2, 'beta', 3);
    await hit(n1, HOSTILE_KEY, 2);

    // /cluster totals: n1's own hits, and n2's as n1 holds them once replicated.
    await until('n1 holds n2 hits', async () => (await cluster(n1)).peers.find((p) => p.id === 'n2')?.hits === 3);
    expect((await cluster(n1)).node.hits).toBe(7);

    // The top list: counts of both nodes' hits, the hostile key as plain text.
    const countOf = (key: string) => page.locator('#top tbody tr').filter({ has: page.getByRole('button', { name: key, exact: true }) }).locator('td.count');
    await expect.poll(() => countOf('alpha').textContent(), { timeout: SHOWN_WITHIN_MS }).toBe('5');
    await expect.poll(() => countOf('beta').textContent(), { timeout: SHOWN_WITHIN_MS }).toBe('3');
    await expect.poll(() => countOf(HOSTILE_KEY).textContent(), { timeout: SHOWN_WITHIN_MS }).toBe('2');
    expect(await page.locator('#top img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    await expect.poll(() => nodeCell(page, 'n2', 'hits-total').textContent(), { timeout: SHOWN_WITHIN_MS }).toBe('3');

    // Hits/s per node: a steady trickle into n2 shows as a rate above 0 in n2's row, seen through n1.
    let trickling = true;
    const trickle = (async () => {
      while (trickling) {
        await hit(n2, 'steady', 1);
        await sleep(100);
      }
    })();
    try {
      await expect.poll(async () => Number(await nodeCell(page, 'n2', 'rate').textContent()), { timeout: SHOWN_WITHIN_MS }).toBeGreaterThan(0);
    } finally {
      trickling = false;
      await trickle;
    }

    // A click on a key: its chart, per second, holds exactly its hits, drawn on a canvas.
    await page.getByRole('button', { name: 'alpha', exact: true }).click();
    const chart = page.locator('#key-chart[data-key="alpha"]');
    await expect.poll(() => chart.getAttribute('data-total'), { timeout: SHOWN_WITHIN_MS }).toBe('5');
    expect(await page.locator('#key-name').textContent()).toBe('alpha');
    const inkedPixels = await page.locator('#key-chart canvas').first().evaluate((element) => {
      const canvas = element as unknown as CanvasLike;
      const pixels = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
      let inked = 0;
      for (let i = 3; i < pixels.length; i += 4) if ((pixels[i] ?? 0) > 0) inked++;
      return inked;
    });
    expect(inkedPixels).toBeGreaterThan(0);

    // The hostile key's chart is named as text too.
    await page.getByRole('button', { name: HOSTILE_KEY, exact: true }).click();
    await expect.poll(() => page.locator('#key-chart').getAttribute('data-total'), { timeout: SHOWN_WITHIN_MS }).toBe('2');
    expect(await page.locator('#key-name').textContent()).toBe(HOSTILE_KEY);
    await page.getByRole('button', { name: 'alpha', exact: true }).click();
    await expect.poll(() => page.locator('#key-chart').getAttribute('data-total'), { timeout: SHOWN_WITHIN_MS }).toBe('5');

    // The peer dies: its row turns to down; this node stays up.
    expect(await n2.kill()).toMatchObject({ signal: 'SIGKILL' });
    await page.locator('#nodes tr[data-node="n2"][data-state="down"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.locator('#nodes tr[data-node="n1"]').getAttribute('data-state')).toBe('up');
    expect(await page.locator('#connection').getAttribute('data-state')).toBe('up');

    const screenshot = process.env.HITMESH_SCREENSHOT;
    if (screenshot !== undefined && screenshot !== '') await page.screenshot({ path: screenshot, fullPage: true });

    expect(foreignRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
