/**
 * `hoard agent add NAME | list | revoke NAME` (admin, against the server); the daemon,
 * `hoard agent start`, is agent-start.ts.
 */
import { replySchemas } from '@hoard/protocol/api';
import { withNulls } from '../json-output.js';
import { renderTable } from '../table.js';
import { serverClient, type ServerOptions } from '../server-client.js';

export async function runAgentAdd(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const added = await client.api.addAgent({ body: { name } });
  if (options.json) return out(JSON.stringify(added));
  out(`agent ${added.name} added. Its token (shown once; the server keeps only a hash):`);
  out(`  ${added.token}`);
  out(`On the host: hoard agent start --server ${client.base} --token-file /etc/hoard/agent-token`);
}

export async function runAgentList(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { agents } = await client.api.listAgents();
  if (options.json) return out(JSON.stringify(agents.map((a) => withNulls(replySchemas.AgentView, a))));
  if (agents.length === 0) return out('no agents yet (`hoard agent add NAME`)');
  out(
    renderTable(
      ['agent', 'host', 'last seen', 'state'],
      agents.map((a) => [a.name, a.hostname ?? '-', a.lastSeenAt ?? 'never', a.revokedAt ? `revoked ${a.revokedAt}` : 'active']),
    ),
  );
}

export async function runAgentRevoke(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const revoked = await client.api.revokeAgent({ params: { name } });
  out(options.json ? JSON.stringify(revoked) : `agent ${revoked.name} revoked: its token no longer works`);
}
