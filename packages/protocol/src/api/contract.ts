/**
 * A route of the media server's API, declared once as data: method, path, who may call
 * it, and the JSON Schemas (TypeBox) of its params, query, body and reply. The server
 * registers its handlers against these contracts (validation, access, OpenAPI), and the
 * typed client (api-client.ts) derives one method per route from the same objects, so a
 * field added to a schema reaches both sides and the OpenAPI document at once.
 */
import type { Static, TSchema } from '@sinclair/typebox';

/**
 * Who may call a route. admin: everything. operator: lists, runs backups now, restores;
 * never changes policies or agents and never deletes. viewer: read-only lists and reports,
 * no data. agent: its own runs, sessions and the snapshots of its own jobs (handlers check
 * ownership). docs/operations.md, "Roles".
 */
export type Role = 'admin' | 'operator' | 'viewer' | 'agent';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer', 'agent'];

/** Roles that read: the lists and reports every human token may see. */
export const READERS: readonly Role[] = ['admin', 'operator', 'viewer'];

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * What the body and the answer are on the wire. json: validated against the schema.
 * binary: `application/octet-stream` read or written as a stream by the handler (the
 * formats are in docs/protocol.md byte by byte). text: Prometheus' exposition format.
 * events: a `text/event-stream` of server-sent events (the console's live updates).
 */
export type Payload = 'json' | 'binary' | 'frames' | 'text' | 'events' | 'none';

export interface RouteContract {
  /** The OpenAPI operationId and the typed client's method name. */
  readonly id: string;
  readonly method: HttpMethod;
  /** fastify/OpenAPI-style path with `:param` segments. */
  readonly path: string;
  /** 'public': no token (health, metrics, the OpenAPI document). */
  readonly access: readonly Role[] | 'public';
  readonly summary: string;
  /** OpenAPI tag: the concern (agents, policies, runs, ...). */
  readonly tag: string;
  readonly params?: TSchema;
  readonly query?: TSchema;
  readonly body?: TSchema;
  /** Content of the body when it is not JSON (default json when `body` is set). */
  readonly bodyPayload?: Payload;
  readonly reply?: TSchema;
  /** Content of the answer (default json). */
  readonly replyPayload?: Payload;
  /** Success status (default 200). */
  readonly status?: number;
}

/** Keeps the literal types of a contract (for the typed server handlers and client). */
export function defineRoute<const R extends RouteContract>(route: R): R {
  return route;
}

type StaticOr<S, Fallback> = S extends TSchema ? Static<S> : Fallback;

export type RouteParams<R extends RouteContract> = StaticOr<R['params'], Record<string, never>>;
export type RouteQuery<R extends RouteContract> = StaticOr<R['query'], Record<string, never>>;
export type RouteBody<R extends RouteContract> = StaticOr<R['body'], undefined>;
export type RouteReply<R extends RouteContract> = StaticOr<R['reply'], unknown>;

/** A role may call a route when the route lists it, or the route is public. */
export function mayCall(route: RouteContract, role: Role | undefined): boolean {
  if (route.access === 'public') return true;
  return role !== undefined && route.access.includes(role);
}
