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

/**
 * @deprecated The message-first log shape that `hoard agent start` (apps/cli) still hands
 * the daemon, with a JSON writer of its own. Give AgentOptions.logger (agentLogger())
 * instead; this and fromAgentLog go once the CLI does.
 */
export interface AgentLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A pino logger whose entries go to an AgentLog as (message, fields); see AgentLog. */
export function fromAgentLog(log: AgentLog): Logger {
  return pino(
    { level: 'info', base: null, timestamp: false, formatters: levelLabel },
    {
      write(line: string): void {
        const { level, msg, ...fields } = JSON.parse(line) as { level: string; msg: string } & Record<string, unknown>;
        const write = level === 'info' ? log.info : level === 'warn' ? log.warn : log.error;
        write.call(log, msg, fields);
      },
    },
  );
}
