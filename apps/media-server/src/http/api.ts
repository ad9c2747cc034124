/**
 * The media server's HTTP layer on fastify. Routes are registered from their contracts
 * (@hoard/protocol/api): the contract's schemas validate params, query and JSON bodies
 * before a handler runs, its access list is checked before the body is read, and the
 * OpenAPI document is generated from the same objects.
 *
 * Two kinds of handler:
 * - json: returns the answer; fastify sends it with the contract's success status.
 * - raw: the binary routes (batch upload, fingerprint queries, restore streams). They
 *   take over the node request and response (the body is never buffered by fastify), so
 *   uploads and restores stream exactly as fast as before the move to fastify.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import fastifySwagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  API_ROUTES,
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_JSON,
  ErrorBody,
  MAX_JSON_BYTES,
  RequestError,
  mayCall,
  type RouteBody,
  type RouteContract,
  type RouteParams,
  type RouteQuery,
  type RouteReply,
} from '@hoard/protocol';
import { describePrincipal, type Authenticator, type Principal } from '../auth.js';
import { clientGone } from '../client-gone.js';
import type { ServerMetrics } from '../metrics.js';
import { describeError, errorBody, validationMessage, type DescribedError } from './errors.js';
import { sendJson } from '../http-util.js';

export interface RouteRequest<R extends RouteContract> {
  params: RouteParams<R>;
  query: RouteQuery<R>;
  body: RouteBody<R>;
  who: Principal;
  raw: IncomingMessage;
  res: ServerResponse;
}

/** What a json handler returns to answer 204 No Content. */
export const NO_CONTENT = Symbol('no content');

export type JsonHandler<R extends RouteContract> = (req: RouteRequest<R>) => Promise<RouteReply<R> | typeof NO_CONTENT>;
export type RawHandler<R extends RouteContract> = (req: RouteRequest<R>) => Promise<void>;

export interface ApiOptions {
  auth: Authenticator;
  metrics: ServerMetrics;
  log: Logger;
  tls?: { certFile: string; keyFile: string };
  version: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    who?: Principal;
  }
  interface FastifyContextConfig {
    contract?: RouteContract;
  }
}

export class Api {
  private constructor(
    readonly app: FastifyInstance,
    private readonly options: ApiOptions,
  ) {}

  static async create(options: ApiOptions): Promise<Api> {
    let api: Api | undefined;
    const tls = options.tls ? await Promise.all([readFile(options.tls.certFile), readFile(options.tls.keyFile)]) : undefined;
    const app = Fastify({
      loggerInstance: options.log,
      // Requests are logged by the error path and the routes (at info only what matters).
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: MAX_JSON_BYTES,
      // Job names are up to 128 characters, source names longer (find-my-way's default is 100).
      routerOptions: { maxParamLength: 4096 },
      return503OnClosing: true,
      // A path fastify cannot decode (`%ZZ`) is the client's mistake: say which part.
      frameworkErrors: (error, request, reply) => {
        const bad =
          error.code === 'FST_ERR_BAD_URL'
            ? new RequestError('invalid_request', `malformed percent-encoding in the request path: ${JSON.stringify(request.url.split('?')[0])}`)
            : error;
        api?.sendError(request, reply, describeError(bad), error);
      },
      serverFactory: (handler) => {
        const server: Server = tls ? createHttpsServer({ cert: tls[0], key: tls[1] }, handler) : createHttpServer(handler);
        // A client that sends its request and then shuts down its write side (a TCP
        // half-close) still gets its answer: by default node:http aborts the request and ends
        // the socket at the client's FIN. `httpAllowHalfOpen` is node's (undocumented,
        // untyped) switch for it; with it, the socket ends once the pending answer is written.
        (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
        // Agents keep one connection open across a backup; long polls last up to a minute.
        server.keepAliveTimeout = 75_000;
        server.headersTimeout = 80_000;
        server.requestTimeout = 0;
        return server;
      },
    });
    api = new Api(app as unknown as FastifyInstance, options);
    await api.setUp();
    return api;
  }

  private async setUp(): Promise<void> {
    const { app } = this;
    // Answers are serialized with JSON.stringify: the reply schemas document and are tested
    // against the answers, but never silently drop a field (fast-json-stringify would).
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    // Query strings and path segments are text: "5" is the number 5 there. A JSON body is
    // typed already: 42 where a name belongs is refused, not turned into "42".
    const text = new Ajv({ coerceTypes: 'array', allErrors: true, verbose: true, strict: false });
    const json = new Ajv({ coerceTypes: false, allErrors: true, verbose: true, strict: false });
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? json : text).compile(schema));
    // Binary bodies are read by their handlers as streams, never buffered here.
    app.addContentTypeParser(CONTENT_TYPE_BINARY, (request, _payload, done) => {
      if (request.routeOptions.config.contract?.bodyPayload !== 'binary')
        done(new RequestError('unsupported_media_type', `this call takes Content-Type application/json; got ${CONTENT_TYPE_BINARY}`), undefined);
      else done(null, undefined);
    });
    app.decorateRequest('who', undefined);
    app.setErrorHandler((error, request, reply) => this.onError(error as FastifyError, request, reply));
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const others = Object.values(API_ROUTES as Record<string, RouteContract>).filter((r) => pathPattern(r.path).test(path));
      const e = describeError(
        others.length > 0
          ? new RequestError(
              'method_not_allowed',
              `${request.method} is not allowed on ${path}; it takes ${[...new Set(others.map((r) => r.method))].join(', ')}`,
            )
          : new RequestError('not_found', `no route ${request.method} ${path} (see docs/protocol.md, or GET /v1/openapi.json)`),
      );
      this.sendError(request, reply, e);
    });
    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'hoard media server',
          version: this.options.version,
          description: 'The media server API. Binary formats (batches, fingerprint queries, restore frames) are specified byte by byte in docs/protocol.md.',
        },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (admin, operator, viewer) or an agent token' } },
        },
      },
      transformObject: (documentObject) => {
        const document = (documentObject as { openapiObject: OpenApiDocument }).openapiObject;
        documentBinaryPayloads(document);
        return document as never;
      },
    });
  }

  /** Registers a route whose answer is JSON (or 204). */
  json<R extends RouteContract>(route: R, handler: JsonHandler<R>): void {
    this.register(route, async (request, reply) => {
      const result = await handler(this.routeRequest<R>(request, reply));
      if (result === NO_CONTENT) return reply.code(204).send();
      return reply.code(route.status ?? 200).send(result);
    });
  }

  /** Registers a route that reads or writes the raw request and response itself. */
  raw<R extends RouteContract>(route: R, handler: RawHandler<R>): void {
    this.register(route, async (request, reply) => {
      reply.hijack();
      try {
        await handler(this.routeRequest<R>(request, reply));
      } catch (err) {
        this.onRawError(err, request, reply.raw);
      }
    });
  }

  /** Registers a route the server answers itself (metrics, the OpenAPI document). */
  plain(route: RouteContract, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
    this.register(route, handler);
  }

  async listen(host: string, port: number): Promise<string> {
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
    const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.options.tls ? 'https' : 'http'}://${h}:${address.port}`;
  }

  /** Stops accepting connections; in-flight requests finish (or are cut after 2 s). */
  async close(): Promise<void> {
    const server = this.app.server;
    const cut = setTimeout(() => server.closeAllConnections(), 2_000);
    cut.unref();
    server.closeIdleConnections();
    await this.app.close();
    clearTimeout(cut);
  }

  private register(route: RouteContract, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
    const jsonBody = route.body !== undefined && route.bodyPayload !== 'binary';
    this.app.route({
      method: route.method,
      url: route.path,
      config: { contract: route },
      schema: {
        operationId: route.id,
        summary: route.summary,
        tags: [route.tag],
        ...(route.access === 'public' ? {} : { security: [{ bearer: [] }], description: `Who may call: ${route.access.join(', ')}.` }),
        ...(route.params ? { params: route.params } : {}),
        ...(route.query ? { querystring: route.query } : {}),
        ...(jsonBody ? { body: route.body } : {}),
        response: { ...(route.reply ? { [route.status ?? 200]: route.reply } : {}), '4XX': ErrorBody, '5XX': ErrorBody },
      },
      // Who is calling, and may they: before the body is read.
      onRequest: async (request) => {
        // An empty path segment (`/v1/jobs//history`) names nothing.
        if (Object.values((request.params ?? {}) as Record<string, string>).some((v) => v === ''))
          throw new RequestError('not_found', `no route ${request.method} ${request.url.split('?')[0]} (see docs/protocol.md, or GET /v1/openapi.json)`);
        if (route.access !== 'public') {
          const who = await this.options.auth.principal(request.raw);
          if (!mayCall(route, who.kind))
            throw new RequestError(
              'forbidden',
              `${describePrincipal(who)} may not call ${route.method} ${route.path}: it needs ${listRoles(route.access)} token`,
            );
          request.who = who;
        }
        if (jsonBody) {
          const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== CONTENT_TYPE_JSON)
            throw new RequestError('unsupported_media_type', `this call takes Content-Type ${CONTENT_TYPE_JSON}; got ${type === '' ? 'none' : type}`);
        }
      },
      handler,
    });
  }

  private routeRequest<R extends RouteContract>(request: FastifyRequest, reply: FastifyReply): RouteRequest<R> {
    return {
      params: (request.params ?? {}) as RouteParams<R>,
      query: (request.query ?? {}) as RouteQuery<R>,
      body: request.body as RouteBody<R>,
      // Public routes have no principal; they do not look at it.
      who: request.who ?? { kind: 'viewer', tokenId: '' },
      raw: request.raw,
      res: reply.raw,
    };
  }

  private onError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    if (clientGone(request.raw, error)) {
      this.clientLeft(request, error);
      reply.hijack();
      if (!reply.raw.destroyed) reply.raw.destroy();
      return;
    }
    const e: DescribedError = error.validation
      ? {
          code: 'invalid_request',
          status: 400,
          message: validationMessage(error.validationContext ?? 'request', error.validation, validatedValue(request, error.validationContext)),
        }
      : describeError(error);
    this.sendError(request, reply, e, error);
  }

  sendError(request: FastifyRequest, reply: FastifyReply, e: DescribedError, error?: unknown): void {
    this.count(request, e, error);
    // Leave the unread rest of a refused upload to be discarded, then close, so a client
    // still sending does not wedge the connection.
    if (!request.raw.complete) {
      reply.header('connection', 'close');
      request.raw.resume();
    }
    void reply.code(e.status).send(errorBody(e));
  }

  /** A raw route failed: answer if nothing was sent yet, else cut the connection. */
  private onRawError(err: unknown, request: FastifyRequest, res: ServerResponse): void {
    const req = request.raw;
    if (clientGone(req, err)) {
      this.clientLeft(request, err);
      if (!res.destroyed) res.destroy();
      return;
    }
    const e = describeError(err);
    this.count(request, e, err);
    if (res.headersSent) {
      // A restore stream that fails midway: cut the connection so the client sees an
      // incomplete body (Content-Length) instead of a short file that looks whole.
      res.destroy(err instanceof Error ? err : new Error(e.message));
      return;
    }
    if (!req.complete) res.setHeader('connection', 'close');
    sendJson(res, e.status, errorBody(e));
    if (!req.complete) req.resume();
  }

  private clientLeft(request: FastifyRequest, err: unknown): void {
    // Not an error of the server's: counted apart, and nobody is left to answer.
    this.options.metrics.clientDisconnects.inc();
    this.options.log.info({ method: request.method, path: request.url, error: (err as Error)?.message }, 'client disconnected');
  }

  private count(request: FastifyRequest, e: DescribedError, error: unknown): void {
    this.options.metrics.httpErrors.inc({ status: String(e.status) });
    const entry = { method: request.method, path: request.url.split('?')[0], status: e.status, code: e.code, error: e.message };
    if (e.status >= 500) this.options.log.error({ ...entry, stack: (error as Error)?.stack }, 'request failed');
    else this.options.log.info(entry, 'request refused');
  }
}

function listRoles(roles: readonly string[]): string {
  const names = roles.map((r) => (r === 'admin' || r === 'operator' || r === 'agent' ? `an ${r}` : `a ${r}`));
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

function validatedValue(request: FastifyRequest, context: string | undefined): unknown {
  if (context === 'body') return request.body;
  if (context === 'querystring') return request.query;
  if (context === 'params') return request.params;
  return undefined;
}

/** `/v1/runs/:id/finish` as a regular expression over request paths. */
function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/:[A-Za-z]+/g, '[^/]+')}$`);
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, { operationId?: string; requestBody?: unknown; responses?: Record<string, unknown> }>>;
}

/** Binary bodies and answers are read and written by their handlers; the document says so. */
function documentBinaryPayloads(document: OpenApiDocument): void {
  const byId = new Map(Object.values(API_ROUTES as Record<string, RouteContract>).map((r) => [r.id, r]));
  const binary = { schema: { type: 'string', format: 'binary' } };
  for (const methods of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(methods)) {
      const route = operation.operationId ? byId.get(operation.operationId) : undefined;
      if (!route) continue;
      if (route.bodyPayload === 'binary') operation.requestBody = { required: true, content: { [CONTENT_TYPE_BINARY]: binary } };
      const status = String(route.status ?? 200);
      operation.responses ??= {};
      if (route.replyPayload === 'binary')
        operation.responses[status] = { description: 'binary (docs/protocol.md)', content: { [CONTENT_TYPE_BINARY]: binary } };
      else if (route.replyPayload === 'events')
        operation.responses[status] = {
          description: 'server-sent events (docs/console.md)',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        };
      else if (route.replyPayload === 'text')
        operation.responses[status] = { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } };
      else if (!route.reply) operation.responses[status] ??= { description: 'OK' };
    }
  }
}
