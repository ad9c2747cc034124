/** How an event reads as a mail (and as a command's or a log's one line). */
import type { NotificationEvent } from '@hoard/protocol';

/** `[hoard] RESOLVED job db1: backup run failed` / `[hoard] ERROR job db1: ...`. */
export function subjectLine(event: NotificationEvent): string {
  const tag = event.status === 'resolved' ? 'RESOLVED' : event.severity.toUpperCase();
  return `[hoard] ${tag} ${event.summary}`;
}

export function mailText(event: NotificationEvent): string {
  const lines = [event.status === 'resolved' ? `Resolved: ${event.summary}` : event.summary, ''];
  if (event.detail) lines.push(event.detail, '');
  const facts: [string, string | undefined][] = [
    ['event', event.kind],
    ['severity', event.severity],
    ['status', event.status],
    ['job', event.job],
    ['policy', event.policy],
    ['agent', event.agent],
    ['run', event.run],
    ['condition', event.condition],
    ['first seen', event.openedAt],
    ['repeats not sent', event.repeats === undefined ? undefined : String(event.repeats)],
    ['at', event.at],
    ['server', event.server],
    ['event id', event.id],
  ];
  for (const [name, value] of facts) if (value !== undefined) lines.push(`${name.padEnd(17)} ${value}`);
  // The validity report is attached as a page, not printed as data.
  if (event.data && Object.keys(event.data).length > 0 && event.kind !== 'validity-report') lines.push('', 'data:', JSON.stringify(event.data, null, 2));
  return `${lines.join('\n')}\n`;
}
