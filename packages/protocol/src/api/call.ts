/**
 * How a typed method becomes a call: the path filled from the input's params and query,
 * the body sent when the route takes one. Plain code with no schema library, so a client
 * that only calls (the `hoard` CLI, the agent) loads none: see route-heads.ts.
 */
import type { HttpMethod } from './contract.js';

/** What a call needs of a route: every RouteContract is one. */
export interface RouteHead {
  readonly id: string;
  readonly method: HttpMethod;
  /** fastify/OpenAPI-style path with `:param` segments. */
  readonly path: string;
  /** Whether the route takes a body (its contract has a body schema). */
  readonly body?: unknown;
}

/** Sends one call; the client (HTTP, errors, token) provides it. */
export type Caller<R extends RouteHead = RouteHead> = (route: R, path: string, body: unknown, signal?: AbortSignal) => Promise<unknown>;

/** The path of a call: params put into the route's path, the query appended (undefined values left out). */
export function callPath(route: RouteHead, input: { params?: Record<string, unknown>; query?: Record<string, unknown> } = {}): string {
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

type CallFn = (input?: { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; signal?: AbortSignal }) => Promise<unknown>;

/** One method per route, named by its id (the caller gives JSON routes only). */
export function methodsFor<R extends RouteHead>(routes: Iterable<R>, call: Caller<R>): Record<string, CallFn> {
  const methods: Record<string, CallFn> = {};
  for (const route of routes)
    methods[route.id] = (input = {}) => call(route, callPath(route, input), route.body !== undefined ? (input.body ?? {}) : undefined, input.signal);
  return methods;
}
