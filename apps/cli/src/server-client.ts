/**
 * `--server URL` and its token, for the commands that talk to a media server.
 *
 *   --server URL      or HOARD_SERVER
 *   --token TOKEN     or HOARD_TOKEN, or --token-file FILE (first line)
 */
import { readFile } from 'node:fs/promises';
import { Option } from 'commander';
import type { HoardClient } from '@hoard/protocol';
import { UsageError } from './errors.js';

export interface ServerOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
}

export const serverOption = (): Option => new Option('--server <url>', 'media server URL, e.g. http://backup:8420').env('HOARD_SERVER');
export const tokenOption = (): Option => new Option('--token <token>', 'the admin token (or an agent token for agent calls)').env('HOARD_TOKEN');
export const tokenFileOption = (): Option => new Option('--token-file <file>', 'read the token from the first line of this file');

export async function serverClient(options: ServerOptions): Promise<HoardClient> {
  if (!options.server) throw new UsageError('--server is required (or HOARD_SERVER): the media server URL, e.g. http://backup:8420');
  let token = options.token;
  if (!token && options.tokenFile) {
    const text = await readFile(options.tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read --token-file ${options.tokenFile}: ${err.code ?? err.message}`);
    });
    token = text.split(/\r?\n/, 1)[0]?.trim();
  }
  if (!token) throw new UsageError('a token is required: --token, HOARD_TOKEN or --token-file (the server prints the admin token at its first start)');
  // Loaded here, not at start: `hoard --help` and embedded commands do not need it.
  const { HoardClient } = await import('@hoard/protocol');
  try {
    return new HoardClient({ url: options.server, token });
  } catch (err) {
    throw new UsageError(`--server: ${(err as Error).message}`);
  }
}
