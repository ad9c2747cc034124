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
import { methodsFor, type Caller } from './call.js';
import { API_ROUTES, type ApiRoutes } from './routes.js';

export { callPath, methodsFor, type Caller, type RouteHead } from './call.js';

type Has<S> = S extends TSchema ? true : false;

/** What a method takes: `params` and `body` when the route has them, `query` always optional. */
export type CallInput<R extends RouteContract> = (Has<R['params']> extends true ? { params: RouteParams<R> } : { params?: undefined }) &
  (Has<R['body']> extends true ? { body: RouteBody<R> } : { body?: undefined }) &
  (Has<R['query']> extends true ? { query?: Partial<RouteQuery<R>> } : { query?: undefined }) & { signal?: AbortSignal };

/** Routes whose answer is JSON (or nothing). */
export type JsonRouteId = {
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

/** The methods object for a caller (every JSON route of API_ROUTES). */
export function apiMethods(call: Caller<RouteContract>): ApiMethods {
  return methodsFor(
    (Object.values(API_ROUTES) as RouteContract[]).filter((route) => isJsonRoute(route)),
    call,
  ) as unknown as ApiMethods;
}

/** Whether the typed client has a method for a route: JSON (or no) body and answer. */
export function isJsonRoute(route: RouteContract): boolean {
  return !(
    route.replyPayload === 'binary' ||
    route.replyPayload === 'text' ||
    route.replyPayload === 'frames' ||
    route.replyPayload === 'events' ||
    route.bodyPayload === 'binary'
  );
}
