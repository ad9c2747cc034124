/**
 * API tokens for people and scripts, each with a role (docs/operations.md, "Roles"). The
 * token is shown once, in the answer that creates it; the catalog keeps only its hash.
 */
import { API_ROUTES as R, RequestError } from '@hoard/protocol';
import { hashToken, newToken, tokenId } from '../auth.js';
import type { Api } from '../http/api.js';
import type { MediaServer } from '../server.js';

export function tokenRoutes(api: Api, server: MediaServer): void {
  api.json(R.addToken, async ({ body }) => {
    const token = newToken(body.role);
    const hash = hashToken(token);
    await server.catalog.setAdminToken(hash, { label: body.label, role: body.role });
    server.log.info({ token: tokenId(hash), role: body.role, label: body.label }, 'API token created');
    return { id: tokenId(hash), role: body.role, label: body.label, token };
  });

  api.json(R.listTokens, async () => ({
    tokens: (await server.catalog.listAdminTokens()).map((t) => ({
      id: tokenId(t.hash),
      role: t.role ?? ('admin' as const),
      label: t.label ?? '',
      createdAt: t.createdAt,
    })),
  }));

  api.json(R.revokeToken, async ({ params, who }) => {
    const matches = (await server.catalog.listAdminTokens()).filter((t) => t.hash.startsWith(params.id));
    if (matches.length === 0) throw new RequestError('not_found', `no API token ${params.id} (\`hoard token list\` shows them)`);
    if (matches.length > 1) throw new RequestError('invalid_request', `token id ${params.id} matches ${matches.length} tokens; give more of it`);
    const token = matches[0]!;
    const admins = (await server.catalog.listAdminTokens()).filter((t) => (t.role ?? 'admin') === 'admin');
    // Revoking the last admin token would lock every admin out of the server for good.
    if ((token.role ?? 'admin') === 'admin' && admins.length === 1)
      throw new RequestError('conflict', 'this is the last admin token: create another admin token first (`hoard token add --role admin`)');
    await server.catalog.revokeAdminToken(token.hash);
    server.log.info({ token: tokenId(token.hash), by: who.kind === 'agent' ? who.name : who.tokenId }, 'API token revoked');
    return { id: tokenId(token.hash), revoked: true as const };
  });
}
