/**
 * Bearer tokens. A token is 32 random bytes (base64url) behind a readable prefix; the
 * catalog stores only its SHA-256 (a token has 256 bits of entropy, so a fast hash is
 * enough: there is nothing to brute-force). Agents and admins each have their own tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Catalog } from '@hoard/catalog';
import { RequestError } from '@hoard/protocol';

export type Principal = { kind: 'admin' } | { kind: 'agent'; name: string };

export function newToken(kind: 'agent' | 'admin'): string {
  return `hoard_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class Authenticator {
  constructor(private readonly catalog: Catalog) {}

  async principal(req: IncomingMessage): Promise<Principal> {
    const header = req.headers.authorization;
    if (!header) throw new RequestError('unauthenticated', 'no token: send "Authorization: Bearer TOKEN" (an agent token from `hoard agent add`, or the admin token)');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new RequestError('unauthenticated', 'the Authorization header must be "Bearer TOKEN"');
    const hash = hashToken(match[1]!);
    if (await this.catalog.isAdminTokenHash(hash)) return { kind: 'admin' };
    const agent = await this.catalog.agentByTokenHash(hash);
    if (!agent || agent.revokedAt) throw new RequestError('unauthenticated', 'unknown or revoked token');
    return { kind: 'agent', name: agent.name };
  }
}

export function requireAdmin(who: Principal): void {
  if (who.kind !== 'admin') throw new RequestError('forbidden', `agent ${who.name} may not do this: it needs the admin token`);
}

export function requireAgent(who: Principal): { kind: 'agent'; name: string } {
  if (who.kind !== 'agent') throw new RequestError('forbidden', 'this call is for agents: use an agent token');
  return who;
}
