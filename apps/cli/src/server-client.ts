/**
 * `--server URL` and its token, for the commands that talk to a media server.
 *
 *   --server URL      or HOARD_SERVER
 *   --token TOKEN     or HOARD_TOKEN, or --token-file FILE (first line)
 *   neither           the connection `hoard login` saved (connection.ts)
 *
 * The command line beats the environment, which beats the saved connection. Commands that
 * take both --repo and --server refuse both at once (resolveTarget).
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { HoardClient } from '@hoard/protocol';
import { readConnection, sameServer } from './connection.js';
import { UsageError } from './errors.js';

export interface ServerOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
}

export const serverOption = (): Option => new Option('--server <url>', 'media server URL, e.g. http://backup:8420').env('HOARD_SERVER');
export const tokenOption = (): Option => new Option('--token <token>', 'the admin token (or an agent token for agent calls)').env('HOARD_TOKEN');
export const tokenFileOption = (): Option => new Option('--token-file <file>', 'read the token from the first line of this file');

/** Where an option's value came from: the command line or the environment (else nothing was given). */
function givenBy(command: Command, key: string): 'cli' | 'env' | undefined {
  if (command.getOptionValue(key) === undefined) return undefined;
  const source = command.getOptionValueSource(key);
  return source === 'cli' ? 'cli' : source === 'env' ? 'env' : undefined;
}

/**
 * Before a command runs: which of --repo and --server it works on, and the server and
 * token when neither is given. Both on the command line (or both from the environment,
 * HOARD_REPO and HOARD_SERVER) is a usage error; one on the command line beats the other
 * from the environment. With neither, a command that takes --server uses the saved
 * connection (`saved`: not for `agent start`, whose token is the agent's own). A token
 * given by --token, HOARD_TOKEN or --token-file wins; else the saved token goes with the
 * saved server only.
 */
export async function resolveTarget(command: Command, options: { saved: boolean }): Promise<void> {
  const takes = (key: string): boolean => command.options.some((o) => o.attributeName() === key);
  if (!takes('server')) return;
  // An empty value (HOARD_SERVER= in the environment) is no value.
  for (const key of ['repo', 'server', 'token', 'tokenFile'])
    if (command.getOptionValue(key) === '') command.setOptionValueWithSource(key, undefined, 'default');
  if (takes('repo')) {
    const repo = givenBy(command, 'repo');
    const server = givenBy(command, 'server');
    if (repo !== undefined && server !== undefined) {
      if (repo === server) {
        throw new UsageError(
          repo === 'cli'
            ? '--repo and --server were both given: --repo works on a repository directly, --server through a media server; give one of them'
            : 'HOARD_REPO and HOARD_SERVER are both set: give --repo or --server to choose, or unset one of them',
        );
      }
      command.setOptionValueWithSource(repo === 'env' ? 'repo' : 'server', undefined, 'default');
    }
    if (command.getOptionValue('repo') !== undefined) return;
  }
  // --token-file on the command line beats HOARD_TOKEN.
  if (givenBy(command, 'tokenFile') === 'cli' && givenBy(command, 'token') === 'env') command.setOptionValueWithSource('token', undefined, 'default');
  const tokenGiven = command.getOptionValue('token') !== undefined || command.getOptionValue('tokenFile') !== undefined;
  const server = command.getOptionValue('server') as string | undefined;
  if (!options.saved || (server !== undefined && tokenGiven)) return;
  const saved = await readConnection();
  if (!saved) return;
  if (server === undefined) command.setOptionValueWithSource('server', saved.server, 'config');
  if (!tokenGiven && sameServer(command.getOptionValue('server') as string, saved.server)) command.setOptionValueWithSource('token', saved.token, 'config');
}

export async function serverClient(options: ServerOptions): Promise<HoardClient> {
  if (!options.server)
    throw new UsageError('--server is required (or HOARD_SERVER, or a connection saved by `hoard login`): the media server URL, e.g. http://backup:8420');
  let token = options.token;
  if (!token && options.tokenFile) {
    const text = await readFile(options.tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read --token-file ${options.tokenFile}: ${err.code ?? err.message}`);
    });
    token = text.split(/\r?\n/, 1)[0]?.trim();
  }
  if (!token)
    throw new UsageError(
      'a token is required: --token, HOARD_TOKEN, --token-file, or `hoard login --server URL` to save one (the server prints the admin token at its first start)',
    );
  // Loaded here, not at start: `hoard --help` and embedded commands do not need it.
  const { HoardClient } = await import('@hoard/protocol/client');
  try {
    return new HoardClient({ url: options.server, token });
  } catch (err) {
    throw new UsageError(`--server: ${(err as Error).message}`);
  }
}
