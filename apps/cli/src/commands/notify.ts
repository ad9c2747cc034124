/**
 * `hoard notify target add|list|test|remove` and `hoard notify conditions`, against the
 * media server (docs/notifications.md).
 */
import { readFile } from 'node:fs/promises';
import type { ErrorCode } from '@hoard/errors';
import { EVENT_KIND_NAMES, type EventMatch, type TargetSettings } from '@hoard/protocol/api';
import { UsageError } from '../errors.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';
import { localTime } from '../time.js';

export interface TargetAddOptions extends ServerOptions {
  smtpHost?: string;
  smtpPort?: string;
  smtpSecurity?: 'tls' | 'starttls' | 'none';
  smtpUser?: string;
  smtpPasswordFile?: string;
  smtpInsecureTls?: boolean;
  from?: string;
  to?: string[];
  webhook?: string;
  secretFile?: string;
  header?: string[];
  command?: string[];
  timeout?: string;
  events?: string;
  jobs?: string;
  policies?: string;
  minSeverity?: 'info' | 'warning' | 'error';
  json?: boolean;
}

/** The first line of a secret file. */
async function secretFrom(file: string, flag: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${flag} ${file}: ${err.code ?? err.message}`);
  });
  const line = text.split(/\r?\n/)[0]!.trim();
  if (line === '') throw new UsageError(`${flag} ${file}: its first line is empty; put the secret there`);
  return line;
}

const list = (text: string | undefined): string[] | undefined =>
  text === undefined
    ? undefined
    : text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');

function wholeNumber(text: string, flag: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new UsageError(`${flag} ${text}: give a whole number from 1 to ${max}`);
  return n;
}

/** The target's settings from the flags: exactly one kind, its required flags, the match. */
export async function targetSettings(o: TargetAddOptions): Promise<TargetSettings> {
  const kinds = [o.smtpHost !== undefined && '--smtp-host', o.webhook !== undefined && '--webhook', o.command !== undefined && '--command'].filter(Boolean);
  if (kinds.length !== 1)
    throw new UsageError(
      kinds.length === 0
        ? 'give the kind of target: --smtp-host HOST (mail), --webhook URL or --command PROGRAM'
        : `give one kind of target, not ${kinds.join(' and ')}`,
    );
  const match: EventMatch = {};
  const events = list(o.events);
  if (events !== undefined) {
    for (const e of events) {
      if (!/[*?[]/.test(e) && !EVENT_KIND_NAMES.includes(e as never))
        throw new UsageError(`--events: ${e} is not an event kind; kinds: ${EVENT_KIND_NAMES.join(', ')} (globs such as run-* work too)`);
    }
    match.kinds = events;
  }
  const jobs = list(o.jobs);
  if (jobs !== undefined) match.jobs = jobs;
  const policies = list(o.policies);
  if (policies !== undefined) match.policies = policies;
  if (o.minSeverity !== undefined) match.minSeverity = o.minSeverity;
  const withMatch = Object.keys(match).length > 0 ? { match } : {};

  if (o.smtpHost !== undefined) {
    if (o.from === undefined) throw new UsageError('--from is required with --smtp-host: the From address, e.g. --from hoard@example.org');
    if (!o.to || o.to.length === 0) throw new UsageError('--to is required with --smtp-host: a recipient (repeat --to for more)');
    return {
      kind: 'smtp',
      host: o.smtpHost,
      ...(o.smtpPort !== undefined ? { port: wholeNumber(o.smtpPort, '--smtp-port', 65535) } : {}),
      ...(o.smtpSecurity !== undefined ? { security: o.smtpSecurity } : {}),
      ...(o.smtpUser !== undefined ? { user: o.smtpUser } : {}),
      ...(o.smtpPasswordFile !== undefined ? { password: await secretFrom(o.smtpPasswordFile, '--smtp-password-file') } : {}),
      ...(o.smtpInsecureTls ? { insecureTls: true } : {}),
      from: o.from,
      to: o.to,
      ...withMatch,
    };
  }
  for (const [flag, given] of [
    ['--from', o.from],
    ['--to', o.to],
    ['--smtp-user', o.smtpUser],
  ] as const) {
    if (given !== undefined) throw new UsageError(`${flag} is for mail targets (--smtp-host)`);
  }
  if (o.webhook !== undefined) {
    if (!/^https?:\/\//.test(o.webhook)) throw new UsageError(`--webhook ${o.webhook}: give an http:// or https:// URL`);
    const headers: Record<string, string> = {};
    for (const h of o.header ?? []) {
      const at = h.indexOf('=');
      if (at < 1) throw new UsageError(`--header ${h}: give NAME=VALUE, e.g. --header "Authorization=Bearer abc"`);
      headers[h.slice(0, at).trim()] = h.slice(at + 1);
    }
    return {
      kind: 'webhook',
      url: o.webhook,
      ...(o.secretFile !== undefined ? { secret: await secretFrom(o.secretFile, '--secret-file') } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      ...withMatch,
    };
  }
  if (o.secretFile !== undefined || o.header !== undefined) throw new UsageError('--secret-file and --header are for webhook targets (--webhook)');
  return {
    kind: 'command',
    command: o.command!,
    ...(o.timeout !== undefined ? { timeoutSeconds: wholeNumber(o.timeout, '--timeout', 3600) } : {}),
    ...withMatch,
  };
}

export async function runTargetAdd(name: string, options: TargetAddOptions, out: (line: string) => void): Promise<void> {
  const settings = await targetSettings(options);
  const client = await serverClient(options);
  const saved = await client.api.putNotifyTarget({ params: { name }, body: settings });
  if (options.json) return out(JSON.stringify(saved));
  out(`notification target ${saved.name} saved (${settings.kind}, receives ${describeMatch(settings.match)}).`);
  out(`Try it: hoard notify target test ${saved.name}`);
}

function describeMatch(match: EventMatch | undefined): string {
  if (!match) return 'every event';
  const parts: string[] = [];
  parts.push(match.kinds ? `events ${match.kinds.join(', ')}` : 'every event');
  if (match.jobs) parts.push(`of jobs ${match.jobs.join(', ')}`);
  if (match.policies) parts.push(`of policies ${match.policies.join(', ')}`);
  if (match.minSeverity) parts.push(`at least ${match.minSeverity}`);
  return parts.join(' ');
}

function describeTarget(settings: Record<string, unknown>): string {
  switch (settings.kind) {
    case 'smtp':
      return `mail via ${settings.host} to ${(settings.to as string[]).join(', ')}`;
    case 'webhook':
      return `POST ${settings.url}${settings.secret ? ' (signed)' : ''}`;
    case 'command':
      return `run ${(settings.command as string[]).join(' ')}`;
    default:
      return String(settings.kind);
  }
}

export async function runTargetList(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { targets } = await client.api.listNotifyTargets();
  if (options.json) return out(JSON.stringify(targets));
  if (targets.length === 0) return out('no notification targets (`hoard notify target add NAME --smtp-host ... | --webhook URL | --command PROGRAM`)');
  out(
    renderTable(
      ['name', 'kind', 'sends', 'receives', 'waiting', 'last error'],
      targets.map((t) => [
        t.source === 'config' ? `${t.name} (config)` : t.name,
        String(t.settings.kind),
        describeTarget(t.settings),
        describeMatch(t.settings.match as EventMatch | undefined),
        String(t.pending),
        t.lastError === undefined ? '-' : `${t.lastError}${t.nextAttemptAt ? ` (next try ${localTime(t.nextAttemptAt)})` : ''}`,
      ]),
    ),
  );
}

export async function runTargetTest(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const result = await client.api.testNotifyTarget({ params: { name } });
  if (options.json) out(JSON.stringify(result));
  else if (result.delivered) out(`test event ${result.event.id} delivered to ${name} in ${result.ms} ms`);
  // Exit 1 for scripts; the reason on stderr.
  if (!result.delivered) throw new NotDeliveredError(`test event not delivered to ${name}: ${result.error}`);
}

class NotDeliveredError extends Error {
  override readonly name = 'NotDeliveredError';
  readonly code: ErrorCode = 'notification_failed';
}

export async function runTargetRemove(name: string, options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const removed = await client.api.deleteNotifyTarget({ params: { name } });
  if (options.json) return out(JSON.stringify(removed));
  out(`notification target ${removed.name} removed${removed.dropped > 0 ? `; ${removed.dropped} undelivered notification(s) dropped` : ''}`);
}

export async function runConditions(options: ServerOptions & { json?: boolean }, out: (line: string) => void): Promise<void> {
  const client = await serverClient(options);
  const { conditions } = await client.api.listNotifyConditions();
  if (options.json) return out(JSON.stringify(conditions));
  if (conditions.length === 0) return out('no open conditions: nothing notified is still wrong');
  out(
    renderTable(
      ['condition', 'since (local)', 'repeats', 'summary'],
      conditions.map((c) => [c.condition, localTime(c.openedAt), String(c.repeats), c.event.summary]),
    ),
  );
}
