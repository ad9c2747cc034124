/**
 * The console's API client: one typed method per JSON route, derived from the route
 * contracts of @hoard/protocol (its browser-safe `api` entry: schemas and route data, no
 * Node modules), so a field added to a reply schema reaches these callers' types at once.
 *
 * Every request carries the session cookie (same origin) and the console header, which
 * the server demands of cookie-authenticated changes (CSRF; docs/console.md).
 */
import { API_ROUTES, apiMethods, callPath, CONSOLE_HEADER, mayCall, type ApiMethods, type RouteContract, type RouteId } from '@hoard/protocol/api';

export type Role = 'admin' | 'operator' | 'viewer';

/** An error answer of the server: its status, code and one-line message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The error body's other fields (e.g. a policy error's line and column). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Called when the server says the session is gone (401): the app shows the sign-in page. */
let onSignedOut: () => void = () => undefined;
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

/** The headers of every console request. */
export function consoleHeaders(json: boolean): Record<string, string> {
  return { [CONSOLE_HEADER]: '1', accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}) };
}

async function send(route: RouteContract, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const res = await fetch(path, {
    method: route.method,
    credentials: 'same-origin',
    headers: consoleHeaders(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.status === 204) return undefined;
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    if (!res.ok) throw new ApiError(res.status, 'http_error', `HTTP ${res.status}: ${text.slice(0, 200)}`);
    throw new ApiError(res.status, 'bad_reply', `the server's answer to ${route.method} ${route.path} is not JSON`);
  }
  if (!res.ok) {
    const { code, error, message, status: _status, ...details } = json;
    if (res.status === 401 && route.id !== 'signIn') onSignedOut();
    throw new ApiError(res.status, String(code ?? 'http_error'), String(error ?? message ?? `HTTP ${res.status}`), details);
  }
  return json;
}

/** `api.listJobs()`, `api.runJob({ params: { job }, body: {...} })`: one method per JSON route. */
export const api: ApiMethods = apiMethods(send);

/** The URL of a route (downloads, the event stream), with its params and query filled in. */
export function routeUrl(id: RouteId, input: { params?: Record<string, unknown>; query?: Record<string, unknown> } = {}): string {
  return callPath(API_ROUTES[id] as RouteContract, input);
}

/**
 * Whether `role` may call route `id`: the same access lists the server enforces, so the
 * console offers nothing the server would refuse (and the server refuses it anyway).
 */
export function may(role: Role | undefined, id: RouteId): boolean {
  return role !== undefined && mayCall(API_ROUTES[id] as RouteContract, role);
}

/** A message for an error caught anywhere in the console. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.name === 'AbortError' ? 'cancelled' : err.message;
  return String(err);
}
