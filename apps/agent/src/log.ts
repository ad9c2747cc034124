/**
 * The agent's log: pino, one JSON line per entry on stderr (what a systemd journal or a
 * log shipper wants): `{"level":"warn","time":"<ISO 8601>","service":"hoard-agent",
 * "component":"daemon",...fields,"msg":"..."}`. Each part of the agent logs through a
 * child logger naming its component.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** The levels `hoard agent start --log-level` offers. */
export type AgentLogLevel = 'info' | 'warn' | 'error';

const levelLabel = { level: (label: string) => ({ level: label }) };

/** The agent's logger; `destination` defaults to stderr, written synchronously. */
export function agentLogger(level: AgentLogLevel = 'info', destination: DestinationStream = pino.destination({ dest: 2, sync: true })): Logger {
  return pino({ level, base: { service: 'hoard-agent' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: levelLabel }, destination);
}

/** Logs nothing: the daemon's logger when it is given none. */
export const silentLogger: Logger = pino({ enabled: false }, { write: () => undefined });
