/**
 * The command-line definitions of `hoard token add|list|revoke` and `hoard agent rotate`
 * (their work is in commands/tokens.ts, loaded only when one of them runs, as main.ts
 * loads every command).
 */
import { Option, type Command } from 'commander';
import { serverOption, tokenFileOption, tokenOption } from './server-client.js';

type Out = (line: string) => void;
const tokens = () => import('./commands/tokens.js');
const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
const withServer = (c: Command): Command => c.addOption(serverOption()).addOption(tokenOption()).addOption(tokenFileOption());

/** `hoard token ...`: API tokens with a role, for people and scripts (admin). */
export function registerTokenCommands(program: Command, out: Out): Command {
  const token = program
    .command('token')
    .description('API tokens for people and scripts, each with a role: admin, operator or viewer (admin)')
    .addHelpText(
      'after',
      `
Roles: admin may do everything; operator may list, run jobs now, cancel runs, restore and
verify; viewer may list and read reports only. docs/operations.md, "Roles", has the table.
The server keeps only the SHA-256 hash of each token: a token is shown once, by \`add\`.
${examples('hoard token add --role operator --label "on-call restores"', 'hoard token list', 'hoard token revoke 3f9a1c2b7d4e5f60')}`,
    );
  withServer(token.command('add').description('create an API token and print it (shown once)'))
    .addOption(
      new Option('--role <role>', 'what the token may do (docs/operations.md, "Roles")').choices(['operator', 'viewer', 'admin']).makeOptionMandatory(),
    )
    .requiredOption('--label <text>', 'who or what holds it (shown by `token list`), e.g. "ci restore checks"')
    .option('--json', 'print {id, role, label, token} as JSON')
    .addHelpText(
      'after',
      `
The token is printed once: store it now (a file of mode 0600, a secret store). The server
keeps only its hash; a lost token is revoked (\`hoard token revoke ID\`) and replaced.
${examples('hoard token add --role operator --label "on-call restores"', 'hoard token add --role viewer --label grafana --json | jq -r .token > /etc/hoard/viewer-token')}`,
    )
    .action(async (opts) => (await tokens()).runTokenAdd(opts, out));
  withServer(token.command('list').description('list API tokens: id, role, label, created (never the tokens themselves)'))
    .option('--json', 'print a JSON array of {id, role, label, createdAt}')
    .addHelpText('after', examples('hoard token list', 'hoard token list --json | jq -r \'.[] | select(.role == "viewer") | .id\''))
    .action(async (opts) => (await tokens()).runTokenList(opts, out));
  withServer(token.command('revoke').description('revoke an API token at once (the last admin token cannot be revoked)'))
    .argument('<id>', "the id `hoard token list` shows (a prefix of the token's hash, at least 8 hex digits)")
    .option('--json', 'print {id, revoked} as JSON')
    .addHelpText('after', examples('hoard token revoke 3f9a1c2b7d4e5f60', 'hoard token revoke 3f9a1c2b --json'))
    .action(async (id: string, opts) => (await tokens()).runTokenRevoke(id, opts, out));
  return token;
}

/** `hoard agent rotate NAME`: a new token for an agent, the old one refused from then on. */
export function registerAgentRotate(agent: Command, out: Out): Command {
  return withServer(agent.command('rotate').description('give an agent a new token (shown once); its old token stops working at once'))
    .argument('<name>', 'the agent')
    .option('--json', 'print {name, token} as JSON')
    .addHelpText(
      'after',
      `
The agent's jobs, runs and snapshots stay. A running \`hoard agent start\` with the old token
is refused from now on: put the new token in its --token-file and restart it.
${examples('hoard agent rotate kvm-01', 'hoard agent rotate kvm-01 --json | jq -r .token | ssh kvm-01 "umask 077; cat > /etc/hoard/agent-token"')}`,
    )
    .action(async (name: string, opts) => (await tokens()).runAgentRotate(name, opts, out));
}
