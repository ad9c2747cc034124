/**
 * The command-line definitions of `hoard notify ...` (their work is in commands/notify.ts,
 * loaded only when one of them runs).
 */
import { Option, type Command } from 'commander';
import { serverOption, tokenFileOption, tokenOption } from './server-client.js';

type Out = (line: string) => void;
const notify = () => import('./commands/notify.js');
const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
const withServer = (c: Command): Command => c.addOption(serverOption()).addOption(tokenOption()).addOption(tokenFileOption());
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `hoard notify ...`: where the server sends failed runs, missed schedules and other problems. */
export function registerNotifyCommands(program: Command, out: Out): Command {
  const group = program
    .command('notify')
    .description('notifications: mail, webhook or command targets for failed runs, missed schedules, damage, offline agents (admin)')
    .addHelpText(
      'after',
      `
Each problem is sent once when it starts and once when it clears ("resolved"); repeats in
between are counted, not sent. A target that is down gets every event later, in order.
docs/notifications.md lists the events and the webhook body.
${examples(
  'hoard notify target add ops-mail --smtp-host mail.example.org --from hoard@example.org --to ops@example.org --min-severity warning',
  'hoard notify target add chat --webhook https://hooks.example.org/hoard --secret-file /etc/hoard/webhook-secret --events "run-*,job-overdue"',
  'hoard notify target test ops-mail',
  'hoard notify conditions',
)}`,
    );
  const target = group
    .command('target')
    .description('notification targets: add, list, test, remove')
    .addHelpText(
      'after',
      examples(
        'hoard notify target add ops-mail --smtp-host mail.example.org --from hoard@example.org --to ops@example.org',
        'hoard notify target list',
        'hoard notify target test ops-mail',
        'hoard notify target remove ops-mail',
      ),
    );

  withServer(target.command('add').description('add or replace a target (SMTP mail, webhook or command) and what it receives'))
    .argument('<name>', 'a name for the target: letters, digits, ".", "_" or "-"')
    .option('--smtp-host <host>', 'send mail through this SMTP server')
    .option('--smtp-port <port>', 'its port (default 587, or 465 with --smtp-security tls, 25 with none)')
    .addOption(new Option('--smtp-security <mode>', 'tls (from the start), starttls (required upgrade) or none').choices(['tls', 'starttls', 'none']))
    .option('--smtp-user <user>', 'log in as this user')
    .option('--smtp-password-file <file>', 'the SMTP password: first line of this file')
    .option('--smtp-insecure-tls', "accept the mail server's certificate without a CA (a self-signed relay)")
    .option('--from <address>', 'From address of the mails, e.g. "hoard <backup@example.org>"')
    .option('--to <address>', 'a recipient (repeat for more)', collect)
    .option('--webhook <url>', 'POST each event as JSON to this http(s) URL')
    .option('--secret-file <file>', 'sign webhook bodies with the secret in this file: X-Hoard-Signature: sha256=HMAC')
    .option('--header <name=value>', 'an extra webhook header (repeat for more), e.g. "Authorization=Bearer ..."', collect)
    .option('--command <program...>', 'run this program with the event as JSON on stdin (no shell)')
    .option('--timeout <seconds>', 'a command is killed after this long (default 30)')
    .option('--events <kinds>', 'comma-separated event kinds or globs it receives (default all), e.g. "run-*,job-overdue"')
    .option('--jobs <globs>', 'comma-separated job names or globs (default all jobs and job-less events)')
    .option('--policies <globs>', 'comma-separated policy names or globs')
    .addOption(new Option('--min-severity <level>', 'only events at least this severe').choices(['info', 'warning', 'error']))
    .option('--json', 'print the saved target as JSON')
    .addHelpText(
      'after',
      `
Give one of --smtp-host, --webhook or --command. Secrets come from files (--smtp-password-file,
--secret-file), never from the command line; the server shows them as "(set)".
${examples(
  'hoard notify target add ops-mail --smtp-host mail.example.org --smtp-user hoard --smtp-password-file /etc/hoard/smtp-pass --from hoard@example.org --to ops@example.org --to dba@example.org',
  'hoard notify target add hooks --webhook https://hooks.example.org/hoard --secret-file /etc/hoard/webhook-secret --jobs "db-*"',
  'hoard notify target add pager --command /usr/local/bin/page-oncall --min-severity error',
)}`,
    )
    .action(async (name: string, opts) => (await notify()).runTargetAdd(name, opts, out));

  withServer(target.command('list').description('list targets, what each receives and what waits for delivery'))
    .option('--json', 'print the targets as JSON')
    .addHelpText('after', examples('hoard notify target list', 'hoard notify target list --json'))
    .action(async (opts) => (await notify()).runTargetList(opts, out));

  withServer(target.command('test').description('send a test event to a target now and say whether it arrived'))
    .argument('<name>', 'the target')
    .option('--json', 'print {name, delivered, error, ms, event} as JSON')
    .addHelpText('after', examples('hoard notify target test ops-mail'))
    .action(async (name: string, opts) => (await notify()).runTargetTest(name, opts, out));

  withServer(target.command('remove').description('remove a target; what waited for delivery to it is dropped'))
    .argument('<name>', 'the target')
    .option('--json', 'print {name, removed, dropped} as JSON')
    .addHelpText('after', examples('hoard notify target remove chat'))
    .action(async (name: string, opts) => (await notify()).runTargetRemove(name, opts, out));

  withServer(group.command('conditions').description('open problems: notified once, not cleared yet (viewers too)'))
    .option('--json', 'print the conditions as JSON')
    .addHelpText('after', examples('hoard notify conditions'))
    .action(async (opts) => (await notify()).runConditions(opts, out));
  return group;
}
