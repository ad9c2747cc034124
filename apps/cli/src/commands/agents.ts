/**
 * `hoard agent add NAME | list | revoke NAME` (admin, against the server) and
 * `hoard agent start --server URL --token T` (the daemon on a hypervisor host).
 */
import type { AgentLogLevel, FootprintText } from '@hoard/agent';
import { replySchemas } from '@hoard/protocol/api';
import { withNulls } from '../json-output.js';
import { renderTable } from '../table.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { UsageError } from '../errors.js';
import { untilStopSignal } from '../signals.js';

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

export async function runAgentStart(options: ServerOptions & { logLevel?: string } & FootprintText, out: (line: string) => void): Promise<void> {
  const level = options.logLevel ?? 'info';
  if (!['info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level ${level}: use info, warn or error`);
  // The agent's modules (pino, the chunker workers, the sources) only for the command that runs one.
  const { AgentDaemon, agentLogger, describeFootprint, parseFootprint } = await import('@hoard/agent');
  // Checked before anything else: a typo in a unit file fails at once, naming the setting.
  const footprint = parseFootprint(options);
  const client = await serverClient(options);
  // JSON lines on stderr (pino): what a systemd journal or a log shipper wants.
  const agent = new AgentDaemon({ server: client.base, token: client.token, logger: agentLogger(level as AgentLogLevel), footprint });
  await agent.start();
  out(`hoard agent ${agent.name} connected to ${client.base} (${describeFootprint(footprint)}); waiting for runs`);
  await untilStopSignal();
  await agent.close();
}
