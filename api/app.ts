import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { requireApiToken } from './auth.ts';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HTTP_TIMEOUTS, type HttpTimeouts } from '../node/config.ts';
import { formatDuration } from '../node/duration.ts';
import type { NodeMetrics } from '../node/metrics.ts';
import { HitWriteFailedError, HitsRefusedError, ShuttingDownError } from '../node/replica.ts';
import { ColdReadError } from '../node/cold-slots.ts';
import { clusterRoutes } from './cluster.ts';
import { countRoutes } from './counts.ts';
import { dashboardRoutes } from './dashboard.ts';
import { topRoutes } from './top.ts';
import type { ApiDeps } from './deps.ts';
import { healthRoutes } from './health.ts';
import { hitRoutes } from './hits.ts';
import { badRequest, type HttpError } from './http-error.ts';
import { parseQueryString, QUERY_PROBLEM, type ParsedQuery } from './inputs.ts';
import { metricsRoutes } from './metrics.ts';
import { registerOpenApi } from './openapi.ts';

/** How the HTTP server guards itself against clients (README, Limits). */
export interface HttpServerLimits {
  readonly timeouts: HttpTimeouts;
  /** Most connections at once (server.maxConnections); unset: no limit. */
  readonly maxConnections?: number;
}

/** What the server is reached with: TLS (--tls-cert, --tls-key, --tls-ca) and the API token. */
export interface HttpServerAccess {
  /** Serve HTTPS with these; with `ca`, a client certificate is asked for (gossip requires one that chains to it). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer | undefined } | undefined;
  /** --api-token; undefined: the API is open. */
  readonly apiToken?: string | undefined;
}

/** Build the HTTP app without listening, so tests can inject requests. */
export async function buildApp(deps: ApiDeps, limits: HttpServerLimits = { timeouts: HTTP_TIMEOUTS }, access: HttpServerAccess = {}): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = deps.logger;
  const { timeouts } = limits;
  const serverTimeouts = { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: timeouts.checkIntervalMs };
  // Fastify hands `https` alone to https.createServer (not `http`), so the timeouts go in with it.
  // The certificate request is optional (rejectUnauthorized: false): HTTP clients need none; gossip checks it on the upgrade.
  const server = access.tls === undefined
    ? { http: serverTimeouts }
    : {
        https: {
          cert: access.tls.cert,
          key: access.tls.key,
          ...(access.tls.ca === undefined ? {} : { ca: access.tls.ca, requestCert: true, rejectUnauthorized: false }),
          ...serverTimeouts,
          // The header timeout starts once TLS is up; a socket that never says hello must not hold a slot for tls's default 120 s.
          handshakeTimeout: timeouts.headersMs,
        },
      };
  // Typed as an HTTP server's app: https.Server answers the same calls (listen, close, maxConnections, connection events).
  const app = (Fastify as (options: FastifyServerOptions & { http?: object; https?: object }) => FastifyInstance)({
    ...server,
    loggerInstance: logger,
    // Per-request log lines would cost more than the hit itself; metrics cover requests.
    logController: new LogController({ disableRequestLogging: true }),
    // A child logger per request (pino serializes its bindings) cost a microsecond and a half of every
    // answer; with request logging off, the few lines a request may log go out through the node's logger.
    childLoggerFactory: (parent) => parent,
    bodyLimit: deps.bodyLimitBytes,
    return503OnClosing: true,
    // JSON.parse makes "__proto__" an own property, not a prototype, and nothing here merges bodies into
    // other objects: such a property is then an unknown parameter (400) like any other, and "__proto__" a key.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // Slow or stuck clients are cut off: a request (headers and body) must arrive within requestTimeout,
    // its headers within headersTimeout, both checked every connectionsCheckingInterval (Node's default,
    // 30 s, let them hold a socket up to that much longer). Upgraded gossip sockets leave all of these.
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.socketIdleMs,
    routerOptions: {
      // A 256-byte key may take 3 characters a byte percent-encoded; longer paths are refused outright.
      maxParamLength: 1024,
      // Query strings decode like paths (+ is a plus sign) and only key= may repeat (README: keys).
      querystringParser: parseQueryString,
      onMaxParamLength: (_path, _req, res) => {
        res.statusCode = 414;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: 'path too long: a key is at most 256 bytes' }));
      },
    },
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).code(400).send({ error: error.code === 'FST_ERR_BAD_URL' ? 'the path is not valid percent-encoded UTF-8' : error.message });
    },
    clientErrorHandler: (error, socket) => answerClientError(error, socket, timeouts),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(describeSchemaError(errors[0], dataVar)),
  });

  watchConnections(app, deps.metrics, limits);
  if (access.apiToken !== undefined) requireApiToken(app, access.apiToken);

  app.setErrorHandler((error: FastifyError | HttpError | Error, request, reply) => {
    if (error instanceof ShuttingDownError || error instanceof HitsRefusedError || error instanceof ColdReadError) return reply.code(503).send({ error: error.message });
    // Not a refusal: the bytes may have reached the disk (see HitWriteFailedError); already logged by the replica.
    if (error instanceof HitWriteFailedError) return reply.code(500).send({ error: error.message });
    const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error, url: request.url }, 'request failed');
      return reply.code(status).send({ error: HIT_ROUTES.has(`${request.method} ${request.routeOptions.url ?? ''}`) ? 'internal error; the hit was not counted' : 'internal error' });
    }
    return reply.code(status).send({ error: clientErrorMessage(error, request.method, request.routeOptions.url) });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));

  // Synchronous: this runs on every hit, and an async hook costs a promise each time.
  app.addHook('onRequest', (request, _reply, done) => {
    const problem = (request.query as ParsedQuery)[QUERY_PROBLEM];
    done(problem === undefined ? undefined : badRequest(problem));
  });

  app.addHook('onResponse', (request, reply, done) => {
    // Unmatched URLs share one label value: they must not create a series each.
    deps.metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  // First: it documents the routes registered after it.
  await registerOpenApi(app);
  await app.register(hitRoutes, deps);
  await app.register(countRoutes, deps);
  await app.register(topRoutes, deps);
  await app.register(healthRoutes, deps);
  await app.register(clusterRoutes, deps);
  await app.register(metricsRoutes, deps);
  await app.register(dashboardRoutes, deps);
  return app;
}

/** Routes that count hits: only their 5xx answers say that nothing was counted. */
const HIT_ROUTES = new Set(['POST /hit/:key', 'POST /hits']);

/** Fastify's own 4xx errors, said the way our other errors are. */
function clientErrorMessage(error: Error & { code?: string }, method: string, route: string | undefined): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `${method} ${route ?? ''} takes a JSON body (content-type: application/json)`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'the body is over the size limit';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return `the body is not valid JSON: ${error.message}`;
    default:
      return error.message;
  }
}

/**
 * Requests Node's HTTP parser rejects before fastify sees them (bad request
 * line, bad framing, headers too large): answer in our error shape on the raw
 * socket, then close it, since the framing can no longer be trusted.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex & { _httpMessage?: { headersSent?: boolean } | null }, timeouts: HttpTimeouts): void {
  // Nothing can be said on a socket that is gone, or in the middle of a response already begun.
  // A TLS failure (handshake timeout, a hello that is not TLS) comes here too, on a socket with no secure channel
  // to write an answer on: writing would wait for a handshake that never comes.
  const tlsFailure = error.code?.startsWith('ERR_TLS_') === true || error.code?.startsWith('ERR_SSL_') === true;
  if (tlsFailure || error.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request headers too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, `the request did not arrive in time: headers within ${formatDuration(timeouts.headersMs)}, the whole request within ${formatDuration(timeouts.requestMs)}`]
        : [400, `malformed HTTP request (${error.code ?? 'parse error'})`];
  const body = JSON.stringify({ error: message });
  // Then closed for good: a client that ignores our end must not keep the socket half open.
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** Apply the connection limit and keep its metrics: limits and timeouts in force, connections open and refused. */
function watchConnections(app: FastifyInstance, metrics: NodeMetrics, limits: HttpServerLimits): void {
  const { timeouts } = limits;
  if (limits.maxConnections !== undefined) app.server.maxConnections = limits.maxConnections;
  // Node closes a connection over maxConnections as it is accepted, and says so with 'drop'.
  app.server.on('drop', () => metrics.httpConnectionsRefused.inc());
  let open = 0;
  app.server.on('connection', (socket: Duplex) => {
    open++;
    socket.once('close', () => open--);
  });
  metrics.beforeScrape(() => metrics.httpConnections.set(open));
  const seconds = { headers: timeouts.headersMs, request: timeouts.requestMs, keep_alive: timeouts.keepAliveMs, socket_idle: timeouts.socketIdleMs, check_interval: timeouts.checkIntervalMs };
  for (const [name, ms] of Object.entries(seconds)) metrics.httpTimeoutSeconds.labels(name).set(ms / 1000);
}

interface SchemaErrorLike {
  readonly instancePath?: string;
  readonly message?: string;
  readonly keyword?: string;
  readonly params?: Record<string, unknown>;
}

/** One readable sentence for a schema violation: where, and what is wrong. */
function describeSchemaError(error: SchemaErrorLike | undefined, dataVar: string): string {
  if (error === undefined) return `invalid ${dataVar}`;
  const where = `${dataVar}${error.instancePath ?? ''}`;
  if (error.keyword === 'additionalProperties') return `${where}: unknown parameter ${JSON.stringify(error.params?.additionalProperty)}`;
  if (error.keyword === 'required') return `${where}: missing ${JSON.stringify(error.params?.missingProperty)}`;
  return `${where} ${error.message ?? 'is invalid'}`;
}
