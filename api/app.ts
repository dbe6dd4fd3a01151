import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HitWriteFailedError, HitsRefusedError, ShuttingDownError } from '../node/replica.ts';
import { clusterRoutes } from './cluster.ts';
import { countRoutes } from './counts.ts';
import type { ApiDeps } from './deps.ts';
import { healthRoutes } from './health.ts';
import { hitRoutes } from './hits.ts';
import type { HttpError } from './http-error.ts';
import { metricsRoutes } from './metrics.ts';

/** Build the HTTP app without listening, so tests can inject requests. */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance: logger,
    // Per-request log lines would cost more than the hit itself; metrics cover requests.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimitBytes,
    return503OnClosing: true,
    // A request (headers and body) must arrive within this; slow or stuck clients are cut off.
    requestTimeout: 30_000,
    routerOptions: {
      // A 256-byte key may take 3 characters a byte percent-encoded; longer paths are refused outright.
      maxParamLength: 1024,
      onMaxParamLength: (_path, _req, res) => {
        res.statusCode = 414;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: 'path too long: a key is at most 256 bytes' }));
      },
    },
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).code(400).send({ error: error.code === 'FST_ERR_BAD_URL' ? 'the path is not valid percent-encoded UTF-8' : error.message });
    },
    clientErrorHandler: answerClientError,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(describeSchemaError(errors[0], dataVar)),
  });

  app.setErrorHandler((error: FastifyError | HttpError | Error, request, reply) => {
    if (error instanceof ShuttingDownError || error instanceof HitsRefusedError) return reply.code(503).send({ error: error.message });
    // Not a refusal: the bytes may have reached the disk (see HitWriteFailedError); already logged by the replica.
    if (error instanceof HitWriteFailedError) return reply.code(500).send({ error: error.message });
    const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error, url: request.url }, 'request failed');
      return reply.code(status).send({ error: 'internal error; the hit was not counted' });
    }
    return reply.code(status).send({ error: clientErrorMessage(error, request.method, request.routeOptions.url) });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));

  app.addHook('onResponse', (request, reply, done) => {
    // Unmatched URLs share one label value: they must not create a series each.
    deps.metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  await app.register(hitRoutes, deps);
  await app.register(countRoutes, deps);
  await app.register(healthRoutes, deps);
  await app.register(clusterRoutes, deps);
  await app.register(metricsRoutes, deps);
  return app;
}

/** Fastify's own 4xx errors, said the way our other errors are. */
function clientErrorMessage(error: Error & { code?: string }, method: string, route: string | undefined): string {
  // secure-json-parse refuses prototype-poisoning keys with an error of its own.
  if (/forbidden prototype property/.test(error.message)) return 'the body must not contain "__proto__" or "constructor.prototype" keys';
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
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify({ error: tooLarge ? 'request headers too large' : `malformed HTTP request (${error.code ?? 'parse error'})` });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
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
