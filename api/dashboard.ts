import type { FastifyPluginAsync } from 'fastify';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { ApiDeps } from './deps.ts';

/** One file the dashboard page loads: its bytes (read once, at start-up) and content type. */
interface DashboardAsset {
  readonly body: Buffer;
  readonly type: string;
}

const PAGE_DIR = new URL('./dashboard/', import.meta.url);
const resolvePackage = createRequire(import.meta.url).resolve;

/** Where each served path comes from: our page under api/dashboard/, uPlot from node_modules (no CDN). */
const ASSET_SOURCES: Readonly<Record<string, { readonly file: URL | string; readonly type: string }>> = {
  '/': { file: new URL('index.html', PAGE_DIR), type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: new URL('dashboard.js', PAGE_DIR), type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: new URL('dashboard.css', PAGE_DIR), type: 'text/css; charset=utf-8' },
  '/dashboard/uPlot.iife.min.js': { file: resolvePackage('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/uPlot.min.css': { file: resolvePackage('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/**
 * The page may load only what this node serves and talk only to it: the
 * browser enforces "no external resources" even if a later edit adds one.
 * uPlot sets element styles from script, hence 'unsafe-inline' for styles
 * only; no script runs that is not one of the files above.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

async function loadAssets(): Promise<Map<string, DashboardAsset>> {
  const entries = await Promise.all(
    Object.entries(ASSET_SOURCES).map(async ([path, { file, type }]) => [path, { body: await readFile(file), type }] as const),
  );
  return new Map(entries);
}

/** GET /: the live dashboard (SPEC section 3), and the few static files it loads under /dashboard/. */
export const dashboardRoutes: FastifyPluginAsync<ApiDeps> = async (app) => {
  const assets = await loadAssets();
  for (const [path, asset] of assets) {
    app.get(path, async (_request, reply) =>
      reply
        .type(asset.type)
        // Small files that change with the node's version: revalidating costs little, a stale script would confuse.
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .send(asset.body),
    );
  }
};
