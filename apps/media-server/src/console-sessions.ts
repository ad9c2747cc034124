/**
 * The web console's sign-in sessions (docs/console.md): an admin, operator or viewer
 * token is exchanged once for a random session id in an HttpOnly, SameSite=Strict cookie,
 * so the token never stays in the browser (no localStorage a script could read).
 *
 * Kept in memory, not in the catalog: the catalog is mirrored into the bucket (state-
 * mirror.ts), and a session id is a credential that has no business in object storage or
 * in backups of the data directory; a restart signs people out, which costs one sign-in.
 * Each request re-reads the session's API token from the catalog, so revoking the token
 * (`hoard token revoke`) ends its sessions at once. The map is bounded (oldest dropped).
 *
 * CSRF: a cookie is sent by the browser whatever page caused the request, so a
 * cookie-authenticated request that changes anything must carry the console header
 * (`X-Hoard-Console: 1`; a cross-site page cannot set a custom header without a CORS
 * preflight the server never grants) and an Origin that is this server's own.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Catalog } from '@hoard/catalog';
import { CONSOLE_HEADER, RequestError, SESSION_COOKIE, type ConsoleSession } from '@hoard/protocol';
import { hashToken, tokenId, type Principal } from './auth.js';

/** Default session lifetime: a working day. */
export const DEFAULT_CONSOLE_SESSION_MS = 8 * 3600_000;
const MAX_SESSIONS = 10_000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface SessionEntry {
  tokenHash: string;
  expiresAt: number;
}

export class ConsoleSessions {
  /** By the SHA-256 of the cookie's session id (the map holds no usable credential). */
  private readonly sessions = new Map<string, SessionEntry>();
  readonly ttlMs: number;

  constructor(
    private readonly catalog: Catalog,
    options: { ttlMs?: number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_CONSOLE_SESSION_MS;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A new session for an API token; refuses agent tokens and unknown ones. Returns the cookie to set. */
  async signIn(req: IncomingMessage, token: string): Promise<{ session: ConsoleSession; cookie: string }> {
    checkCrossSite(req, 'sign-in');
    const hash = hashToken(token);
    const record = await this.catalog.getAdminToken(hash);
    if (!record) {
      if (await this.catalog.agentByTokenHash(hash))
        throw new RequestError('forbidden', 'an agent token cannot sign in to the console: use an admin, operator or viewer token (hoard token add)');
      throw new RequestError('unauthenticated', 'unknown or revoked token: sign in with an admin, operator or viewer token');
    }
    this.sweep();
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const expiresAt = Date.now() + this.ttlMs;
    this.sessions.set(sessionKey(id), { tokenHash: hash, expiresAt });
    return {
      session: { role: record.role ?? 'admin', label: record.label ?? '', expiresAt: new Date(expiresAt).toISOString() },
      cookie: sessionCookie(id, Math.floor(this.ttlMs / 1000), isTls(req)),
    };
  }

  /** The principal of a request that carries the session cookie, after the CSRF checks. */
  async principal(req: IncomingMessage, id: string): Promise<Principal> {
    const { hash } = await this.lookup(id);
    if (!SAFE_METHODS.has(req.method ?? 'GET')) checkCrossSite(req, `${req.method} ${req.url?.split('?')[0]}`);
    const record = await this.catalog.getAdminToken(hash);
    return { kind: record?.role ?? 'admin', tokenId: tokenId(hash) };
  }

  /** The session behind a cookie, as the console shows it. */
  async describe(id: string): Promise<ConsoleSession> {
    const { hash, entry } = await this.lookup(id);
    const record = await this.catalog.getAdminToken(hash);
    return { role: record?.role ?? 'admin', label: record?.label ?? '', expiresAt: new Date(entry.expiresAt).toISOString() };
  }

  /** Forgets a session; true when there was one. */
  signOut(id: string): boolean {
    return this.sessions.delete(sessionKey(id));
  }

  private async lookup(id: string): Promise<{ hash: string; entry: SessionEntry }> {
    const key = sessionKey(id);
    const entry = this.sessions.get(key);
    if (!entry || entry.expiresAt <= Date.now()) {
      if (entry) this.sessions.delete(key);
      throw new RequestError('unauthenticated', 'the console session has ended (expired, signed out, or the server restarted): sign in again');
    }
    // The token may have been revoked since the sign-in: the session ends with it.
    if (!(await this.catalog.getAdminToken(entry.tokenHash))) {
      this.sessions.delete(key);
      throw new RequestError('unauthenticated', 'the API token of this console session was revoked: sign in again');
    }
    return { hash: entry.tokenHash, entry };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.sessions) if (entry.expiresAt <= now) this.sessions.delete(key);
  }
}

function sessionKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

function isTls(req: IncomingMessage): boolean {
  return (req.socket as TLSSocket).encrypted === true;
}

/** The Set-Cookie value of a session (maxAge 0 clears it). */
export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that clears the session cookie. */
export function clearedSessionCookie(req: IncomingMessage): string {
  return sessionCookie('', 0, isTls(req));
}

/** The session id in the request's Cookie header, if any. */
export function sessionIdOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) {
      const value = part.slice(at + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/**
 * Refuses a request another site's page could have made: it must carry the console header
 * and, when the browser names an Origin (every browser does on a POST, PUT or DELETE from
 * fetch), that origin must be this server's.
 */
function checkCrossSite(req: IncomingMessage, what: string): void {
  if (req.headers[CONSOLE_HEADER] !== '1')
    throw new RequestError('forbidden', `${what} with the console's session cookie needs the header "X-Hoard-Console: 1" (cross-site request refused)`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = `${isTls(req) ? 'https' : 'http'}://${req.headers.host ?? ''}`;
  if (origin !== own) throw new RequestError('forbidden', `${what} from origin ${origin} refused: the console's requests come from ${own}`);
}
