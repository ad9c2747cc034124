/**
 * `hoard agent start --server URL --token T`: the daemon on a hypervisor host. A module of
 * its own so the daemon's process never loads what the admin commands beside it need (the
 * routes' TypeBox schemas for `agent list --json`): an agent is a guest on a production host.
 */
import type { AgentLogLevel, FootprintText } from '@hoard/agent';
import { serverClient, type ServerOptions } from '../server-client.js';
import { UsageError } from '../errors.js';
import { untilStopSignal } from '../signals.js';

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
