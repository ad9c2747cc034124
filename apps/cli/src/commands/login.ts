/**
 * `hoard login --server URL [--token-file F]` and `hoard logout`: a saved connection
 * (connection.ts) that the commands taking --server use when neither --server nor
 * HOARD_SERVER is given. The token is checked against the server before it is saved.
 */
import { readFile } from 'node:fs/promises';
import { connectionPath, readConnection, removeConnection, saveConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import { promptHidden } from '../prompt.js';

export interface LoginOptions {
  server?: string;
  tokenFile?: string;
  json?: boolean;
}

const firstLine = (text: string): string => text.split(/\r?\n/, 1)[0]?.trim() ?? '';

/** The token: --token-file's first line, else a prompt without echo on a terminal, else the first line of stdin. */
async function readToken(options: LoginOptions, server: string): Promise<string> {
  let token: string;
  if (options.tokenFile !== undefined) {
    const text = await readFile(options.tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read --token-file ${options.tokenFile}: ${err.code ?? err.message}`);
    });
    token = firstLine(text);
    if (!token) throw new UsageError(`--token-file ${options.tokenFile} is empty`);
    return token;
  }
  if (process.stdin.isTTY) token = (await promptHidden(`admin token for ${server}: `)).trim();
  else {
    const parts: Buffer[] = [];
    for await (const piece of process.stdin) parts.push(piece as Buffer);
    token = firstLine(Buffer.concat(parts).toString('utf8'));
  }
  if (!token) throw new UsageError('no token given: type it at the prompt, pipe it in (`hoard login --server URL < token-file`), or give --token-file FILE');
  return token;
}

export async function runLogin(options: LoginOptions, out: (line: string) => void): Promise<void> {
  if (!options.server) throw new UsageError('--server is required (or HOARD_SERVER): the media server URL, e.g. http://backup:8420');
  const { HoardClient, ServerError } = await import('@hoard/protocol/client');
  let client: InstanceType<typeof HoardClient>;
  try {
    client = new HoardClient({ url: options.server, token: 'x' });
  } catch (err) {
    throw new UsageError(`--server: ${(err as Error).message}`);
  }
  const token = await readToken(options, client.base);
  client = new HoardClient({ url: client.base, token });
  // Is it a hoard media server at all (an open route), and does it take this token (an admin route)?
  const health = await client.api.health().catch((err: Error) => {
    if (err instanceof SyntaxError) throw new UsageError(`${client.base} answered GET /v1/health, but not as a hoard media server; nothing was saved`);
    throw err;
  });
  // Another service may answer 200 with other JSON: the typed reply is what a hoard server sends.
  if ((health as { ok?: unknown } | null)?.ok !== true)
    throw new UsageError(`${client.base} answered GET /v1/health, but not as a hoard media server; nothing was saved`);
  try {
    await client.api.listJobs();
  } catch (err) {
    if (err instanceof ServerError) {
      const why =
        err.status === 401
          ? 'the server refused the token'
          : err.status === 403
            ? 'this token may not list jobs: log in with the admin token, not an agent token'
            : 'the token could not be checked';
      throw new ServerError(err.status, `${err.message}: ${why}; nothing was saved`, err.body);
    }
    throw err;
  }
  const path = await saveConnection({ server: client.base, token });
  if (options.json) return out(JSON.stringify({ server: client.base, path }));
  out(
    `logged in to ${client.base}; saved in ${path} (mode 0600). Commands that take --server use it when neither --server nor HOARD_SERVER is given; \`hoard logout\` removes it.`,
  );
}

export async function runLogout(options: { json?: boolean }, out: (line: string) => void): Promise<void> {
  const path = connectionPath();
  const saved = await readConnection(path).catch(() => undefined);
  const removed = await removeConnection(path);
  if (options.json) return out(JSON.stringify({ removed, server: saved?.server ?? null, path }));
  out(removed ? `removed the saved connection${saved ? ` to ${saved.server}` : ''} (${path})` : `no saved connection (${path}): nothing to do`);
}
