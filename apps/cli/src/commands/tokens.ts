/**
 * Tokens, against the media server (admin):
 *
 *   hoard token add --role R --label L | list | revoke ID
 *       API tokens for people and scripts, each with a role (docs/operations.md, "Roles").
 *       The server keeps only a token's SHA-256 hash, so a token is shown once, by `add`;
 *       `list` and `revoke` name tokens by an id, a prefix of that hash.
 *   hoard agent rotate NAME
 *       a new token for an agent; its old one stops working at once.
 */
import { UsageError } from '../errors.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';
import { localTime } from '../time.js';

export const TOKEN_ROLES = ['admin', 'operator', 'viewer'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** What each role may do, one line each (the full table: docs/operations.md, "Roles"). */
const ROLE_SUMMARY: Record<TokenRole, string> = {
  admin: 'everything: agents, tokens, policies, runs, restores, maintenance',
  operator: 'lists and reports, run jobs now, cancel runs, restore, verify; no policy, agent or token changes, no prune or gc',
  viewer: 'lists and reports only; no runs, no restores (no data)',
};

export async function runTokenAdd(options: ServerOptions & { role?: string; label?: string; json?: boolean }, out: (line: string) => void): Promise<void> {
  const role = options.role as TokenRole | undefined;
  if (role === undefined || !TOKEN_ROLES.includes(role)) throw new UsageError(`--role ${options.role ?? '(none)'}: give one of ${TOKEN_ROLES.join(', ')}`);
  const label = options.label?.trim() ?? '';
  if (label === '') throw new UsageError('--label is required: who or what holds the token, e.g. --label "ci restore checks"');
  const client = await serverClient(options);
  const added = await client.api.addToken({ body: { role, label } });
  if (options.json) return out(JSON.stringify(added));
  out(`token ${added.id} added: role ${added.role} (${ROLE_SUMMARY[added.role]}), label "${added.label}".`);
  out('The token (shown once; the server keeps only its SHA-256 hash):');
  out(`  ${added.token}`);
  out('Store it now: it cannot be shown again. A lost token is revoked and replaced:');
  out(`  hoard token revoke ${added.id}`);
}

export async function runTokenList(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { tokens } = await client.api.listTokens();
  if (options.json) return out(JSON.stringify(tokens));
  if (tokens.length === 0) return out('no API tokens (`hoard token add --role operator --label NAME`)');
  out(
    renderTable(
      ['id', 'role', 'label', 'created (local)'],
      tokens.map((t) => [t.id, t.role, t.label === '' ? '-' : t.label, localTime(t.createdAt)]),
    ),
  );
}

export async function runTokenRevoke(id: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  if (!/^[0-9a-f]{8,64}$/.test(id))
    throw new UsageError(`token id ${id}: give the id \`hoard token list\` shows (8 to 64 lower-case hex digits), not the token itself`);
  const client = await serverClient(options);
  const revoked = await client.api.revokeToken({ params: { id } });
  out(options.json ? JSON.stringify(revoked) : `token ${revoked.id} revoked: the server refuses it from now on`);
}

export async function runAgentRotate(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const rotated = await client.api.rotateAgent({ params: { name } });
  if (options.json) return out(JSON.stringify(rotated));
  out(`agent ${rotated.name} has a new token; the old one stopped working now. The new token (shown once; the server keeps only a hash):`);
  out(`  ${rotated.token}`);
  out(
    `On the host: write it to the agent's --token-file (e.g. /etc/hoard/agent-token) and restart \`hoard agent start --server ${client.base} --token-file /etc/hoard/agent-token\``,
  );
}
