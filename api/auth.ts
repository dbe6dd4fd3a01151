import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/**
 * Routes open without a token: the probes (SPEC section 3), and the pages
 * that hold no counts (the dashboard's shell and files, the API document and
 * its page). A browser cannot send a Bearer header when it opens a page, so
 * the dashboard asks for the token itself and sends it on every call for
 * data; /docs has its Authorize button. Everything else needs the token,
 * /metrics and /cluster included, and so does a path no route matches.
 */
export function isOpenRoute(route: string): boolean {
  return OPEN_ROUTES.has(route) || route.startsWith('/dashboard/') || route === '/docs' || route.startsWith('/docs/');
}

const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/', '/openapi.json']);

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Does an Authorization header carry the token? Compared as SHA-256 digests
 * with timingSafeEqual: the time taken depends on neither how much of the
 * token matched nor its length.
 */
export function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const given = header === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
  // A missing token is compared too, so a wrong one and none take the same time.
  return timingSafeEqual(digest(given ?? ''), expected) && given !== undefined;
}

export const UNAUTHORIZED = 'missing or wrong API token: send Authorization: Bearer <token> (the node runs with --api-token)';

/** --api-token: every route but the open ones answers 401 without `Authorization: Bearer <token>`. */
export function requireApiToken(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  // Synchronous and first: a refused request learns nothing else (not even that its query is bad).
  app.addHook('onRequest', (request, reply, done) => {
    const route = request.routeOptions.url;
    if ((route !== undefined && isOpenRoute(route)) || bearerMatches(request.headers.authorization, expected)) {
      done();
      return;
    }
    void reply.code(401).header('www-authenticate', 'Bearer realm="hitmesh"').send({ error: UNAUTHORIZED });
  });
}
