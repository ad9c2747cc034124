/**
 * Delivery of one event to one target: SMTP mail (nodemailer), a webhook POST, or a
 * command with the event on stdin. Each resolves when the target took the event and
 * throws a DeliveryError saying why not; the outbox (notifier.ts) retries.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import type { ErrorCode } from '@hoard/errors';
import type { CommandTarget, NotificationEvent, SmtpTarget, TargetSettings, ValidityReport, WebhookTarget } from '@hoard/protocol';
import nodemailer from 'nodemailer';
import { renderValidityHtml } from '../validity-html.js';
import { mailText, subjectLine } from './render.js';

export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  readonly code: ErrorCode = 'notification_failed';
}

/** How long one attempt may take before it counts as failed. */
const WEBHOOK_TIMEOUT_MS = 15_000;
const SMTP_TIMEOUT_MS = 30_000;
const DEFAULT_COMMAND_TIMEOUT_S = 30;
/** What is kept of a failing command's stderr or a webhook's answer, for the error. */
const TAIL = 500;

export async function deliver(target: TargetSettings, event: NotificationEvent): Promise<void> {
  switch (target.kind) {
    case 'smtp':
      return sendMail(target, event);
    case 'webhook':
      return postWebhook(target, event);
    case 'command':
      return runCommand(target, event);
  }
}

async function sendMail(target: SmtpTarget, event: NotificationEvent): Promise<void> {
  const security = target.security ?? 'starttls';
  const port = target.port ?? (security === 'tls' ? 465 : security === 'none' ? 25 : 587);
  const transport = nodemailer.createTransport({
    host: target.host,
    port,
    secure: security === 'tls',
    requireTLS: security === 'starttls',
    ignoreTLS: security === 'none',
    auth: target.user !== undefined ? { user: target.user, pass: target.password ?? '' } : undefined,
    tls: target.insecureTls ? { rejectUnauthorized: false } : undefined,
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
  });
  try {
    await transport.sendMail({
      from: target.from,
      to: target.to,
      subject: subjectLine(event),
      text: mailText(event),
      headers: { 'X-Hoard-Event': event.kind, 'X-Hoard-Event-Id': event.id, 'X-Hoard-Status': event.status },
      attachments: attachmentsOf(event),
    });
  } catch (err) {
    throw new DeliveryError(`mail to ${target.host}:${port} failed: ${(err as Error).message}`);
  } finally {
    transport.close();
  }
}

/** The validity report travels as an HTML page (the mail's text is its summary). */
function attachmentsOf(event: NotificationEvent): { filename: string; content: string; contentType: string }[] {
  const report = event.kind === 'validity-report' ? (event.data?.report as ValidityReport | undefined) : undefined;
  if (!report) return [];
  return [{ filename: `backup-validity-${report.until.slice(0, 10)}.html`, content: renderValidityHtml(report), contentType: 'text/html; charset=utf-8' }];
}

/** `sha256=<hex>` of HMAC-SHA256(secret, body): what X-Hoard-Signature carries. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

async function postWebhook(target: WebhookTarget, event: NotificationEvent): Promise<void> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = {
    ...target.headers,
    'content-type': 'application/json',
    'user-agent': 'hoard-notify/1',
    'x-hoard-event': event.kind,
    'x-hoard-event-id': event.id,
  };
  if (target.secret !== undefined) headers['x-hoard-signature'] = webhookSignature(target.secret, body);
  let res: Response;
  try {
    res = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS), redirect: 'error' });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new DeliveryError(`POST ${redactUrl(target.url)} failed: ${cause ?? (err as Error).message}`);
  }
  const text = await res.text().catch(() => '');
  if (res.status < 200 || res.status > 299) throw new DeliveryError(`POST ${redactUrl(target.url)} answered ${res.status}: ${text.slice(0, TAIL)}`);
}

/** A URL for messages: without a password. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function runCommand(target: CommandTarget, event: NotificationEvent): Promise<void> {
  const [program, ...args] = target.command;
  const timeoutMs = (target.timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_S) * 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, args, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, HOARD_EVENT_KIND: event.kind, HOARD_EVENT_ID: event.id } });
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-TAIL);
    });
    // A program that does not read its stdin is not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${JSON.stringify(event)}\n`);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new DeliveryError(`command ${program} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = timedOut ? `was killed after ${timeoutMs / 1000} s` : signal ? `ended by ${signal}` : `exited with status ${code}`;
      reject(new DeliveryError(`command ${program} ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  });
}
