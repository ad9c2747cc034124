/**
 * The typed client's methods, one per JSON route, derived from the route contracts: the
 * method name is the route's id, its input the route's params, query and body types, its
 * result the reply type. Nothing here is written per route, so a route added to
 * routes.ts is a client method at once, and a changed schema changes the callers' types.
 *
 * Binary routes (batch upload, fingerprint queries, restore streams, metrics) have
 * hand-written methods on HoardClient: they stream.
 */
import type { TSchema } from '@sinclair/typebox';
import type { RouteBody, RouteContract, RouteParams, RouteQuery, RouteReply } from './contract.js';
import { API_ROUTES, type ApiRoutes } from './routes.js';

type Has<S> = S extends TSchema ? true : false;

/** What a method takes: `params` and `body` when the route has them, `query` always optional. */
export type CallInput<R extends RouteContract> = (Has<R['params']> extends true ? { params: RouteParams<R> } : { params?: undefined }) &
  (Has<R['body']> extends true ? { body: RouteBody<R> } : { body?: undefined }) &
  (Has<R['query']> extends true ? { query?: Partial<RouteQuery<R>> } : { query?: undefined }) & { signal?: AbortSignal };

/** Routes whose answer is JSON (or nothing). */
type JsonRouteId = {
  [K in keyof ApiRoutes]: ApiRoutes[K] extends { replyPayload: 'binary' | 'text' | 'frames' | 'events' }
    ? never
    : ApiRoutes[K] extends { bodyPayload: 'binary' }
      ? never
      : K;
}[keyof ApiRoutes];

/** Inputs that may be left out entirely: routes with no params and no body. */
type Args<R extends RouteContract> =
  Has<R['params']> extends true ? [input: CallInput<R>] : Has<R['body']> extends true ? [input: CallInput<R>] : [input?: CallInput<R>];

export type ApiMethods = {
  [K in JsonRouteId]: (...args: Args<ApiRoutes[K]>) => Promise<RouteReply<ApiRoutes[K]>>;
};

/** Sends one call; the client (HTTP, errors, token) provides it. */
export type Caller = (route: RouteContract, path: string, body: unknown, signal?: AbortSignal) => Promise<unknown>;

/** The path of a call: params put into the route's path, the query appended (undefined values left out). */
export function callPath(route: RouteContract, input: { params?: Record<string, unknown>; query?: Record<string, unknown> } = {}): string {
  const path = route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = input.params?.[name];
    if (value === undefined || value === null || value === '') throw new TypeError(`${route.id}: path parameter ${name} is missing`);
    return encodeURIComponent(String(value));
  });
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(input.query ?? {})) {
    if (value === undefined || value === null) continue;
    query.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  const text = query.toString();
  return text === '' ? path : `${path}?${text}`;
}

/** The methods object for a caller. */
export function apiMethods(call: Caller): ApiMethods {
  const methods: Record<
    string,
    (input?: { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; signal?: AbortSignal }) => Promise<unknown>
  > = {};
  for (const route of Object.values(API_ROUTES) as RouteContract[]) {
    if (
      route.replyPayload === 'binary' ||
      route.replyPayload === 'text' ||
      route.replyPayload === 'frames' ||
      route.replyPayload === 'events' ||
      route.bodyPayload === 'binary'
    )
      continue;
    methods[route.id] = (input = {}) => call(route, callPath(route, input), route.body !== undefined ? (input.body ?? {}) : undefined, input.signal);
  }
  return methods as unknown as ApiMethods;
}
