/**
 * Bearer tokens. A token is 32 random bytes (base64url) behind a readable prefix; the
 * catalog stores only its SHA-256 (a token has 256 bits of entropy, so a fast hash is
 * enough: there is nothing to brute-force). People and scripts hold API tokens with a role
 * (admin, operator, viewer); each agent holds its own agent token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Catalog, TokenRole } from '@hoard/catalog';
import { RequestError, type Role } from '@hoard/protocol';
import { sessionIdOf, type ConsoleSessions } from './console-sessions.js';
import { TokenCache } from './token-cache.js';

export type Principal = { kind: TokenRole; tokenId: string } | { kind: 'agent'; name: string };

export function newToken(kind: Role): string {
  return `hoard_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** How tokens are named in lists and `DELETE /v1/tokens/ID`: a prefix of the hash, never the token. */
export function tokenId(hash: string): string {
  return hash.slice(0, 16);
}

export class Authenticator {
  /** Who holds which token, without a LevelDB get per request (dropped on every token change). */
  private readonly tokens: TokenCache;

  constructor(
    catalog: Catalog,
    /** The web console's sessions: a request without a Bearer header may carry their cookie. */
    private readonly consoleSessions?: ConsoleSessions,
  ) {
    this.tokens = new TokenCache(catalog);
  }

  async principal(req: IncomingMessage): Promise<Principal> {
    const header = req.headers.authorization;
    const session = header ? undefined : sessionIdOf(req);
    if (session !== undefined && this.consoleSessions) return this.consoleSessions.principal(req, session);
    if (!header)
      throw new RequestError('unauthenticated', 'no token: send "Authorization: Bearer TOKEN" (an agent token from `hoard agent add`, or an API token)');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new RequestError('unauthenticated', 'the Authorization header must be "Bearer TOKEN"');
    const hash = hashToken(match[1]!);
    const holder = await this.tokens.holder(hash);
    if (!holder) throw new RequestError('unauthenticated', 'unknown or revoked token');
    return holder.kind === 'agent' ? { kind: 'agent', name: holder.name } : { kind: holder.kind, tokenId: tokenId(hash) };
  }

  close(): void {
    this.tokens.close();
  }
}

/** Who the caller is, in a refusal message. */
export function describePrincipal(who: Principal): string {
  return who.kind === 'agent' ? `agent ${who.name}` : `a token of role ${who.kind}`;
}
